/// The Redis keys of one StreamGate deployment: the queue's (added by `Jobs`), the gate's
/// policies and revocations, the origins' shared cache and the announcements between them.
///
/// Every key carries the same hash tag (`{sg}` by default), so all of them live in one slot and the
/// Lua scripts that move state between them work on Redis Cluster too.
public struct Keyspace: Sendable, Equatable {
    /// The hash tag's content, `sg` by default.
    public let prefix: String

    public init(prefix: String = "sg") {
        self.prefix = prefix
    }

    /// `{prefix}`: what every key starts with.
    public var tag: String { "{\(prefix)}" }

    /// The pub/sub channel announcing that an asset was republished or deleted (the message is the
    /// asset id); every origin drops what it cached of that asset.
    public var assetChanges: String { "\(tag):assets:changed" }
    /// The pub/sub channel announcing a revoked playback token (the message is the token id).
    public var tokenRevocations: String { "\(tag):tokens:revoked" }
    /// An asset's access policy (JSON); an asset without one is public.
    public func policy(_ asset: String) -> String { "\(tag):policy:\(asset)" }
    /// The origins' shared cache (L2): one object's key. Every L2 key shares one hash slot with its
    /// index, so the byte budget is kept by one script.
    public func cacheObject(_ name: String) -> String { "\(tag):l2:o:\(name)" }
    /// L2's index: object keys scored by when they expire (ms).
    public var cacheIndex: String { "\(tag):l2:index" }
    /// L2's object sizes, by object key.
    public var cacheSizes: String { "\(tag):l2:sizes" }
    /// L2's total bytes.
    public var cacheBytes: String { "\(tag):l2:bytes" }
}
