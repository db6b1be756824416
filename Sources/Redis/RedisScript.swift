import Vault

/// A Lua script, sent by its SHA1 and loaded on first use (or after a server restart).
public struct RedisScript: Sendable {
    public let source: String
    public let sha: String

    public init(_ source: String) {
        self.source = source
        sha = Digest.sha1Hex(Array(source.utf8))
    }
}
