/// How an ``OwnershipService`` caches and batches.
public struct OwnershipConfiguration: Sendable {
    /// How long a grant is reused (without a follower, also the longest a sold token keeps
    /// working).
    public var grantTTL: Duration
    /// How long a denial is reused (how long a buyer waits at most without a follower).
    public var denialTTL: Duration
    /// Most answers in this process's cache.
    public var maxL1Entries: Int
    /// Evaluations that miss the caches within this window go to the chain together: one JSON-RPC
    /// batch or one `aggregate3` for all of them.
    public var coalescingWindow: Duration
    /// Most evaluations in one round trip.
    public var maxEvaluationsPerRound: Int
    /// Most vaults looked at per `delegate` condition (the registry may list up to 256).
    public var maxVaultsPerDelegate: Int
    /// The hash tag of the Redis keys: `{sg}:gate:own:…`.
    public var redisPrefix: String
    /// A follower's head older than this is not trusted: evaluations read `latest` instead.
    public var followerStaleness: Duration

    public init(
        grantTTL: Duration = .seconds(60),
        denialTTL: Duration = .seconds(10),
        maxL1Entries: Int = 100_000,
        coalescingWindow: Duration = .milliseconds(2),
        maxEvaluationsPerRound: Int = 256,
        maxVaultsPerDelegate: Int = 16,
        redisPrefix: String = "sg",
        followerStaleness: Duration = .seconds(10)
    ) {
        self.grantTTL = grantTTL
        self.denialTTL = denialTTL
        self.maxL1Entries = max(1, maxL1Entries)
        self.coalescingWindow = coalescingWindow
        self.maxEvaluationsPerRound = max(1, maxEvaluationsPerRound)
        self.maxVaultsPerDelegate = max(1, maxVaultsPerDelegate)
        self.redisPrefix = redisPrefix
        self.followerStaleness = followerStaleness
    }
}
