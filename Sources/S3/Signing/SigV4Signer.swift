import Foundation
import Vault

/// AWS Signature Version 4 (`AWS4-HMAC-SHA256`), as S3 checks it: the canonical request, the
/// string to sign, the signing key and the `Authorization` header, and presigned URLs (query
/// authentication).
///
/// The signer is a pure function of its inputs (no clock, no I/O), so every step can be held
/// against AWS's published vectors; `S3Client` gives it the time and the request.
public struct SigV4Signer: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// `x-amz-content-sha256` for a body that is not hashed (a streamed upload).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// The hex SHA-256 of no bytes: the payload hash of a GET, HEAD or DELETE.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public let credentials: S3Credentials
    public let region: String
    /// `s3` for S3; AWS's generic test suite signs for `service`.
    public let service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// What is signed of one request. `path` is the request's path as sent, already encoded (see
    /// ``S3URIEncoding/encodePath(_:)``): S3 signs it as it is, without normalising or encoding it
    /// again. `query` holds decoded names and values; `headers` every header to sign, `host` among
    /// them (names in any case, a name twice joins its values with commas).
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(name: String, value: String)]
        public var headers: [(name: String, value: String)]
        /// The hex SHA-256 of the body, ``SigV4Signer/unsignedPayload`` or ``SigV4Signer/emptyPayloadHash``.
        public var payloadHash: String

        public init(method: String, path: String, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    /// The headers to add to a request, `Authorization` last.
    public struct SignedHeaders: Sendable {
        public var headers: [(name: String, value: String)]
        public var canonicalRequest: String
        public var stringToSign: String
        public var signature: String
        public var authorization: String { headers.first { $0.name == "authorization" }?.value ?? "" }
    }

    /// Signs `request` in an `Authorization` header. Adds `x-amz-date`, `x-amz-security-token`
    /// when the credentials are temporary and, with `contentSHA256Header` (what S3 requires),
    /// `x-amz-content-sha256` carrying the payload hash; each is signed too.
    public func sign(_ request: Request, at date: Date, contentSHA256Header: Bool = true) -> SignedHeaders {
        let stamp = SigV4Timestamp(date)
        var added: [(name: String, value: String)] = []
        if contentSHA256Header { added.append(("x-amz-content-sha256", request.payloadHash)) }
        added.append(("x-amz-date", stamp.dateTime))
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        var signing = request
        signing.headers += added
        let canonical = Self.canonicalRequest(signing)
        let toSign = stringToSign(canonicalRequest: canonical.text, timestamp: stamp)
        let signature = signature(of: toSign, day: stamp.day)
        let authorization = "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope(stamp)), SignedHeaders=\(canonical.signedHeaders), Signature=\(signature)"
        return SignedHeaders(headers: added + [("authorization", authorization)], canonicalRequest: canonical.text, stringToSign: toSign, signature: signature)
    }

    /// The query of a presigned URL for `request` (whose `query` it extends): valid for `expires`
    /// seconds (1 to 604,800) from `date`. Only the request's headers are signed (at least
    /// `host`); S3 takes ``unsignedPayload`` as the payload hash of a presigned request.
    public func presignedQuery(_ request: Request, at date: Date, expires: Int) -> [(name: String, value: String)] {
        precondition((1...604_800).contains(expires), "a presigned URL lasts 1 s to 7 days")
        let stamp = SigV4Timestamp(date)
        let signedHeaderNames = Self.canonicalHeaders(request.headers).names
        var query = request.query
        query.append(("X-Amz-Algorithm", Self.algorithm))
        query.append(("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(stamp))"))
        query.append(("X-Amz-Date", stamp.dateTime))
        query.append(("X-Amz-Expires", String(expires)))
        if let token = credentials.sessionToken { query.append(("X-Amz-Security-Token", token)) }
        query.append(("X-Amz-SignedHeaders", signedHeaderNames))
        var signing = request
        signing.query = query
        let canonical = Self.canonicalRequest(signing).text
        query.append(("X-Amz-Signature", signature(of: stringToSign(canonicalRequest: canonical, timestamp: stamp), day: stamp.day)))
        return query
    }

    /// The hex HMAC-SHA256 of the string to sign under the day's signing key.
    func signature(of stringToSign: String, day: String) -> String {
        Digest.hex(Digest.hmacSHA256(key: signingKey(day: day), message: Array(stringToSign.utf8)))
    }

    /// The canonical request: method, path, sorted query, sorted canonical headers, the signed
    /// header names and the payload hash, one a line.
    public static func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        let headers = canonicalHeaders(request.headers)
        let text = [request.method, request.path, canonicalQuery(request.query), headers.block, headers.names, request.payloadHash]
            .joined(separator: "\n")
        return (text, headers.names)
    }

    /// Names and values encoded, then sorted by encoded name and then value, byte by byte.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        query.map { (S3URIEncoding.encode($0.name), S3URIEncoding.encode($0.value)) }
            .sorted { $0.0 == $1.0 ? $0.1.utf8.lexicographicallyPrecedes($1.1.utf8) : $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// `name:value\n` for each header (names lower-cased, values trimmed with inner runs of spaces
    /// folded to one, a repeated name's values joined with commas in their order), sorted by name,
    /// and the names joined with `;`.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (block: String, names: String) {
        var values: [String: [String]] = [:]
        for header in headers {
            values[header.name.lowercased(), default: []].append(foldSpaces(header.value))
        }
        let names = values.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let block = names.map { "\($0):\(values[$0]!.joined(separator: ","))\n" }.joined()
        return (block, names.joined(separator: ";"))
    }

    /// `AWS4-HMAC-SHA256`, the timestamp, the scope and the hex SHA-256 of the canonical request.
    public func stringToSign(canonicalRequest: String, timestamp: SigV4Timestamp) -> String {
        [Self.algorithm, timestamp.dateTime, scope(timestamp), Digest.hex(Digest.sha256(Array(canonicalRequest.utf8)))]
            .joined(separator: "\n")
    }

    /// HMAC-SHA256 chained over the day (`yyyyMMdd`), the region, the service and `aws4_request`,
    /// starting from `AWS4` + the secret key.
    public func signingKey(day: String) -> [UInt8] {
        var key = Array(("AWS4" + credentials.secretAccessKey).utf8)
        for part in [day, region, service, "aws4_request"] {
            key = Digest.hmacSHA256(key: key, message: Array(part.utf8))
        }
        return key
    }

    func scope(_ timestamp: SigV4Timestamp) -> String {
        "\(timestamp.day)/\(region)/\(service)/aws4_request"
    }

    /// Trims the value and folds each run of spaces or tabs inside it into one space.
    private static func foldSpaces(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        var pendingSpace = false
        for character in value.unicodeScalars {
            if character == " " || character == "\t" || character == "\n" || character == "\r" {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.unicodeScalars.append(" ") }
                pendingSpace = false
                out.unicodeScalars.append(character)
            }
        }
        return out
    }
}

/// The two forms of the signing time: `yyyyMMdd'T'HHmmss'Z'` (`x-amz-date`) and `yyyyMMdd` (the scope's day).
public struct SigV4Timestamp: Sendable, Equatable {
    public let dateTime: String
    public var day: String { String(dateTime.prefix(8)) }

    public init(_ date: Date) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : String(value) }
        dateTime = String(parts.tm_year + 1900) + two(parts.tm_mon + 1) + two(parts.tm_mday)
            + "T" + two(parts.tm_hour) + two(parts.tm_min) + two(parts.tm_sec) + "Z"
    }
}
