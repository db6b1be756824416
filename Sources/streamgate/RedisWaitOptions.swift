import ArgumentParser
import Redis

/// How durable a job write must be before it is acknowledged: the `WAIT` options of every command
/// that enqueues or finishes jobs (`serve`, `dev`, `worker`, `farm`, `enqueue`, `bench-queue`).
struct RedisWaitOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Replicas each enqueue and finish must reach (Redis WAIT) before it is acknowledged, so a failover loses no acknowledged job; 0: no wait.",
        valueName: "n"
    ))
    var redisWaitReplicas: Int = 0

    @Option(help: ArgumentHelp("How long WAIT waits for --redis-wait-replicas before the write fails as not replicated.", valueName: "duration"))
    var redisWaitTimeout = DurationValue(seconds: 1)

    func validate() throws {
        guard redisWaitReplicas >= 0 else {
            throw ValidationError("--redis-wait-replicas must be 0 or more, got \(redisWaitReplicas)")
        }
        // WAIT 0 would wait for ever; below a millisecond it cannot be said to Redis.
        guard redisWaitTimeout.nanoseconds >= 1_000_000 else {
            throw ValidationError("--redis-wait-timeout must be positive (1ms at least), got \(redisWaitTimeout)")
        }
    }

    /// The validated values, as plain data (a parsed option group cannot be built outside parsing).
    var replicaWait: ReplicaWait { ReplicaWait(replicas: redisWaitReplicas, timeoutSeconds: redisWaitTimeout.seconds) }

    /// The same options for a child process (a farm's or dev's workers); none when they are the defaults.
    var arguments: [String] {
        guard redisWaitReplicas > 0 else { return [] }
        return ["--redis-wait-replicas", String(redisWaitReplicas), "--redis-wait-timeout", redisWaitTimeout.description]
    }
}

/// ``RedisClient/waitReplicas`` and ``RedisClient/waitTimeout`` as the command line set them.
struct ReplicaWait: Sendable, Equatable {
    var replicas = 0
    var timeoutSeconds: Double = 1

    func client(url: RedisURL, connections: Int) -> RedisClient {
        RedisClient(url: url, connections: connections, waitReplicas: replicas, waitTimeout: timeoutSeconds)
    }
}
