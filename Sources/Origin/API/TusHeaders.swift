import Foundation

/// The tus 1.0 request headers StreamGate reads, parsed strictly: they are untrusted bytes (fuzzed
/// as `tus-headers`). Every refusal is a ``TusHeaderError`` naming the header and the reason.
public enum TusHeaders {
    /// The protocol version spoken, in `Tus-Resumable` and `Tus-Version`.
    public static let version = "1.0.0"
    /// The extensions `OPTIONS` announces.
    public static let extensions = "creation,creation-with-upload,termination,expiration,checksum"
    /// `Upload-Checksum` algorithms, as `Tus-Checksum-Algorithm` lists them.
    public static let checksumAlgorithms = ["sha1", "sha256"]
    /// The content type of every PATCH (and of a creation POST that carries bytes).
    public static let offsetContentType = "application/offset+octet-stream"

    /// The longest `Upload-Metadata` read, and the most pairs in it.
    public static let maximumMetadataBytes = 4096
    public static let maximumMetadataPairs = 32

    /// `Tus-Resumable` must be exactly `1.0.0` (tus answers 412 otherwise).
    public static func checkResumable(_ value: String?) throws(TusHeaderError) {
        guard let value else { throw TusHeaderError("Tus-Resumable", "is required (1.0.0)") }
        guard value == version else { throw TusHeaderError("Tus-Resumable", "must be \(version), got '\(value.prefix(40))'") }
    }

    /// `Upload-Offset` and `Upload-Length`: a non-negative decimal integer, digits only, at most 18
    /// of them (so it fits an Int with room to add).
    public static func parseSize(_ value: String?, header: String) throws(TusHeaderError) -> Int {
        guard let value else { throw TusHeaderError(header, "is required") }
        let bytes = Array(value.utf8)
        guard !bytes.isEmpty, bytes.count <= 18, bytes.allSatisfy({ (48...57).contains($0) }), let number = Int(value) else {
            throw TusHeaderError(header, "must be a non-negative whole number of at most 18 digits, got '\(value.prefix(40))'")
        }
        return number
    }

    /// `Upload-Metadata`: comma-separated pairs `key base64value` (the value may be left out, which
    /// is an empty value). Keys are unique, non-empty ASCII with no space or comma; values are
    /// strict base64 (padded) of UTF-8 text.
    public static func parseMetadata(_ value: String) throws(TusHeaderError) -> [String: String] {
        let header = "Upload-Metadata"
        guard value.utf8.count <= maximumMetadataBytes else { throw TusHeaderError(header, "is over \(maximumMetadataBytes) bytes") }
        var pairs: [String: String] = [:]
        guard !value.allSatisfy({ $0 == " " || $0 == "\t" }) else { return pairs }
        for item in value.split(separator: ",", omittingEmptySubsequences: false) {
            let words = item.trimmingCharacters(in: CharacterSet(charactersIn: " \t")).split(separator: " ", omittingEmptySubsequences: false)
            guard (1...2).contains(words.count), let keyWord = words.first, !keyWord.isEmpty else {
                throw TusHeaderError(header, "each pair must be 'key base64value' (got '\(item.prefix(40))')")
            }
            let key = String(keyWord)
            guard key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ",") }) else {
                throw TusHeaderError(header, "key '\(key.prefix(40))' must be printable ASCII without spaces or commas")
            }
            guard pairs[key] == nil else { throw TusHeaderError(header, "key '\(key)' appears twice") }
            guard pairs.count < maximumMetadataPairs else { throw TusHeaderError(header, "has more than \(maximumMetadataPairs) pairs") }
            var text = ""
            if words.count == 2 {
                guard let decoded = decodeBase64(words[1]) else {
                    throw TusHeaderError(header, "the value of '\(key)' is not base64")
                }
                guard let utf8 = String(validating: decoded, as: UTF8.self) else {
                    throw TusHeaderError(header, "the value of '\(key)' is not UTF-8 text")
                }
                text = utf8
            }
            pairs[key] = text
        }
        return pairs
    }

    /// `Upload-Checksum`: `algorithm base64digest`, with an algorithm of ``checksumAlgorithms`` and
    /// a digest of that algorithm's length. An unknown algorithm is reported as such (tus: 400).
    public static func parseChecksum(_ value: String) throws(TusHeaderError) -> (algorithm: String, digest: [UInt8]) {
        let header = "Upload-Checksum"
        let words = value.split(separator: " ", omittingEmptySubsequences: false)
        guard words.count == 2 else { throw TusHeaderError(header, "must be 'algorithm base64digest'") }
        let algorithm = String(words[0])
        guard let length = ["sha1": 20, "sha256": 32][algorithm] else {
            throw TusHeaderError(header, "algorithm '\(algorithm.prefix(20))' is not supported (\(checksumAlgorithms.joined(separator: ", ")))")
        }
        guard let digest = decodeBase64(words[1]), digest.count == length else {
            throw TusHeaderError(header, "the digest must be the base64 of \(length) bytes for \(algorithm)")
        }
        return (algorithm, digest)
    }

    /// Strict base64 (RFC 4648 §4, padded, no whitespace); nil otherwise.
    static func decodeBase64(_ text: Substring) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard bytes.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 4 * 3)
        var index = 0
        while index < bytes.count {
            var values: [UInt8] = []
            var padding = 0
            for position in 0..<4 {
                let byte = bytes[index + position]
                if byte == UInt8(ascii: "=") {
                    // Padding only at the end of the last quantum, at most two.
                    guard index + 4 == bytes.count, position >= 2 else { return nil }
                    padding += 1
                    continue
                }
                guard padding == 0, let value = base64Value(byte) else { return nil }
                values.append(value)
            }
            let bits = values.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (18 - 6 * UInt32($1.offset)) }
            let produced = [UInt8(bits >> 16 & 0xff), UInt8(bits >> 8 & 0xff), UInt8(bits & 0xff)]
            // Bits beyond the last byte must be zero: one text per value.
            if padding == 1, bits & 0xff != 0 { return nil }
            if padding == 2, bits & 0xffff != 0 { return nil }
            out += produced.prefix(3 - padding)
            index += 4
        }
        return out
    }

    private static func base64Value(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}

/// A tus header StreamGate refuses: which one and why.
public struct TusHeaderError: Error, CustomStringConvertible, Sendable, Equatable {
    public let header: String
    public let reason: String

    public init(_ header: String, _ reason: String) {
        self.header = header
        self.reason = reason
    }

    public var description: String { "\(header) \(reason)" }
}
