import Foundation

/// One object in a listing.
public struct S3ObjectSummary: Sendable, Equatable {
    public var key: String
    public var size: Int64
    public var eTag: String?
    /// As S3 wrote it (ISO 8601).
    public var lastModified: String?
}

/// One page of `ListObjectsV2`.
public struct S3ObjectList: Sendable, Equatable {
    public var objects: [S3ObjectSummary]
    /// With a delimiter: the "folders" under the prefix.
    public var commonPrefixes: [String]
    public var isTruncated: Bool
    /// What to pass to get the next page; nil on the last one.
    public var nextContinuationToken: String?

    /// Reads a `<ListBucketResult>`; keys and prefixes are decoded when it says `<EncodingType>url`.
    public static func parse(_ body: some Collection<UInt8>, maxBytes: Int = 4 << 20) throws(S3XMLError) -> S3ObjectList {
        let root = try S3XMLDocument.parse(body, root: "ListBucketResult", maxBytes: maxBytes)
        let encoded = root.text(of: "EncodingType")?.lowercased() == "url"
        func name(_ text: String, _ element: String) throws(S3XMLError) -> String {
            guard encoded else { return text }
            guard let decoded = S3URIEncoding.decode(text, plusIsSpace: true) else { throw .invalid(element: element, value: text) }
            return decoded
        }
        var objects: [S3ObjectSummary] = []
        for content in root.children("Contents") {
            guard let key = content.text(of: "Key") else { throw .missing(element: "Key", in: "Contents") }
            let sizeText = content.text(of: "Size") ?? ""
            guard let size = Int64(sizeText), size >= 0 else { throw .invalid(element: "Size", value: sizeText) }
            objects.append(S3ObjectSummary(key: try name(key, "Key"), size: size, eTag: content.text(of: "ETag"), lastModified: content.text(of: "LastModified")))
        }
        var prefixes: [String] = []
        for common in root.children("CommonPrefixes") {
            guard let prefix = common.text(of: "Prefix") else { throw .missing(element: "Prefix", in: "CommonPrefixes") }
            prefixes.append(try name(prefix, "Prefix"))
        }
        let truncatedText = root.text(of: "IsTruncated") ?? "false"
        guard let truncated = Bool(truncatedText.lowercased()) else { throw .invalid(element: "IsTruncated", value: truncatedText) }
        let token = root.text(of: "NextContinuationToken").flatMap { $0.isEmpty ? nil : $0 }
        if truncated && token == nil { throw .missing(element: "NextContinuationToken", in: "ListBucketResult") }
        return S3ObjectList(objects: objects, commonPrefixes: prefixes, isTruncated: truncated, nextContinuationToken: truncated ? token : nil)
    }
}

/// The `<InitiateMultipartUploadResult>` of CreateMultipartUpload: the upload's id.
public enum S3MultipartAnswers {
    public static func uploadID(_ body: some Collection<UInt8>, maxBytes: Int = 1 << 20) throws(S3XMLError) -> String {
        let root = try S3XMLDocument.parse(body, root: "InitiateMultipartUploadResult", maxBytes: maxBytes)
        guard let id = root.text(of: "UploadId"), !id.isEmpty else { throw .missing(element: "UploadId", in: root.name) }
        return id
    }

    /// The `<CompleteMultipartUploadResult>`'s ETag. S3 may answer 200 and still fail, with an
    /// `<Error>` body: that is returned as the error it names.
    public static func completed(_ body: some Collection<UInt8>, maxBytes: Int = 1 << 20) throws(S3XMLError) -> Result<String, S3ErrorBody> {
        let root = try S3XMLDocument.parse(body, maxBytes: maxBytes)
        if root.name == "Error" { return .failure(S3ErrorBody(root)) }
        guard root.name == "CompleteMultipartUploadResult" else { throw .unexpectedRoot(expected: "CompleteMultipartUploadResult", found: root.name) }
        guard let eTag = root.text(of: "ETag"), !eTag.isEmpty else { throw .missing(element: "ETag", in: root.name) }
        return .success(eTag)
    }

    /// The body of CompleteMultipartUpload: each part's number and ETag, in order.
    public static func completionBody(_ parts: [S3CompletedPart]) -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts {
            xml += "<Part><PartNumber>\(part.partNumber)</PartNumber><ETag>\(escape(part.eTag))</ETag></Part>"
        }
        return xml + "</CompleteMultipartUpload>"
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}

/// A part uploaded to a multipart upload, as CompleteMultipartUpload names it.
public struct S3CompletedPart: Sendable, Equatable {
    public var partNumber: Int
    public var eTag: String

    public init(partNumber: Int, eTag: String) {
        self.partNumber = partNumber
        self.eTag = eTag
    }
}

/// What an S3 `<Error>` body says.
public struct S3ErrorBody: Error, Sendable, Equatable {
    public var code: String?
    public var message: String?
    public var requestID: String?

    public init(code: String? = nil, message: String? = nil, requestID: String? = nil) {
        self.code = code
        self.message = message
        self.requestID = requestID
    }

    init(_ element: S3XMLElement) {
        self.init(code: element.text(of: "Code"), message: element.text(of: "Message"), requestID: element.text(of: "RequestId"))
    }

    /// Reads an `<Error>`; nil for an empty body (HEAD, some proxies).
    public static func parse(_ body: some Collection<UInt8>, maxBytes: Int = 1 << 20) throws(S3XMLError) -> S3ErrorBody? {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return nil }
        return S3ErrorBody(try S3XMLDocument.parse(body, root: "Error", maxBytes: maxBytes))
    }
}
