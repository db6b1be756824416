import Foundation
import Logging
import NIOConcurrencyHelpers
import Origin
import Redis
import TestSupport
import Testing

/// The origin's announcement listener behind Sentinel: a primary, two replicas and three
/// sentinels on loopback, the primary SIGKILLed.
@Suite("announcements across a sentinel failover", .serialized)
struct InvalidationFailoverTests {
    @Test("the listener subscribes again on the new primary; announcements after the failover arrive")
    func resubscribes() async throws {
        try await withSentinelRedis { ha in
            let client = ha.client()
            let keys = Keyspace()
            let received = NIOLockedValueBox<[String]>([])
            let ups = NIOLockedValueBox(0)
            let listener = OriginInvalidation(
                url: ha.url, channels: [keys.assetChanges], logger: Logger(label: "test.invalidation"),
                onMessage: { _, message in received.withLockedValue { $0.append(message) } },
                onStatus: { listening in if listening { ups.withLockedValue { $0 += 1 } } }
            )
            listener.start()
            try await withCleanup {
                // Announced until heard: the subscription may still be on its way.
                func announceUntilHeard(_ asset: String) async throws {
                    let deadline = Date().addingTimeInterval(20)
                    while !received.withLockedValue({ $0.contains(asset) }) {
                        guard Date() < deadline else { throw RedisError.connect(endpoint: "test", reason: "'\(asset)' never arrived") }
                        _ = try? await client.announceAssetChange(asset, in: keys)
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                try await announceUntilHeard("before-failover")
                ha.kill()
                _ = try await ha.failover(from: ha.primaryPort)
                try await announceUntilHeard("after-failover")
                #expect(ups.withLockedValue { $0 } >= 2, "the listener came up again after the failover")
            } cleanup: {
                await listener.stop()
            }
        }
    }
}
