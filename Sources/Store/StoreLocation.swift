/// Where a store is, as the command line names it: a folder, or `s3://bucket/prefix`.
public enum StoreLocation: Sendable, Equatable, CustomStringConvertible {
    case folder(String)
    /// A bucket and the key prefix every object of the store starts with (empty, or ending in `/`).
    case bucket(name: String, prefix: String)

    /// `s3://bucket`, `s3://bucket/prefix` (a trailing slash optional), or anything else as a folder.
    public init(_ text: String) throws(StoreError) {
        guard text.hasPrefix("s3://") else {
            guard !text.isEmpty else { throw StoreError("the store is empty: give a folder or s3://bucket/prefix") }
            self = .folder(text)
            return
        }
        let rest = text.dropFirst("s3://".count)
        let bucket = rest.prefix { $0 != "/" }
        guard Self.isBucketName(bucket) else {
            throw StoreError("\(text): '\(bucket)' is not a bucket name (3 to 63 of a-z, 0-9, '.', '-', starting and ending with a letter or digit)")
        }
        var prefix = String(rest.dropFirst(bucket.count).drop { $0 == "/" })
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard prefix.isEmpty || StorePath.isSafeRelative(prefix) else {
            throw StoreError("\(text): the prefix '\(prefix)' must be plain path components of [A-Za-z0-9._-], none starting with '.'")
        }
        self = .bucket(name: String(bucket), prefix: prefix.isEmpty ? "" : prefix + "/")
    }

    public var description: String {
        switch self {
        case .folder(let path): path
        case .bucket(let name, let prefix): "s3://\(name)/\(prefix)"
        }
    }

    /// S3's bucket naming rules, the ones every compatible service shares.
    private static func isBucketName<S: StringProtocol>(_ name: S) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return false }
        func isLetterOrDigit(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        guard isLetterOrDigit(bytes.first!), isLetterOrDigit(bytes.last!) else { return false }
        return bytes.allSatisfy { isLetterOrDigit($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }
}
