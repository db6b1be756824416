import Foundation
import Jobs
import Logging
import NIOConcurrencyHelpers

/// Follows the asset-change channel on Redis (``QueueKeys/assetChanges``) on a thread of its own and
/// calls `onChange` with each asset announced there: a worker announces every version it publishes,
/// the API every asset it deletes. While the subscription is down, messages may be missed, so
/// `onStatus` is told, and the origin falls back to re-reading the store every second.
public final class OriginInvalidation: Sendable {
    let url: RedisURL
    let channel: String
    let logger: Logger
    let onChange: @Sendable (String) -> Void
    let onStatus: @Sendable (_ listening: Bool) -> Void
    private let stopped = NIOLockedValueBox(false)
    private let listening = NIOLockedValueBox(false)
    private let finished = NIOLockedValueBox<[CheckedContinuation<Void, Never>]?>([])

    public init(
        url: RedisURL, channel: String, logger: Logger, onChange: @escaping @Sendable (String) -> Void,
        onStatus: @escaping @Sendable (_ listening: Bool) -> Void
    ) {
        self.url = url
        self.channel = channel
        self.logger = logger
        self.onChange = onChange
        self.onStatus = onStatus
    }

    /// Whether the subscription is up now.
    public var isListening: Bool { listening.withLockedValue { $0 } }

    public func start() {
        let thread = Thread { [self] in
            run()
            let waiters = finished.withLockedValue { waiters -> [CheckedContinuation<Void, Never>] in
                defer { waiters = nil }
                return waiters ?? []
            }
            waiters.forEach { $0.resume() }
        }
        thread.name = "streamgate-invalidation"
        thread.start()
    }

    /// Stops following the channel; returns once the thread has ended (within half a second).
    public func stop() async {
        stopped.withLockedValue { $0 = true }
        await withCheckedContinuation { continuation in
            let done = finished.withLockedValue { waiters -> Bool in
                guard waiters != nil else { return true }
                waiters!.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private var isStopped: Bool { stopped.withLockedValue { $0 } }

    private func setListening(_ value: Bool) {
        let changed = listening.withLockedValue { old -> Bool in
            defer { old = value }
            return old != value
        }
        if changed { onStatus(value) }
    }

    private func run() {
        var delay = 0.1
        while !isStopped {
            do {
                let connection = try RedisConnection(url: url, timeout: 2)
                _ = try connection.pipeline([["SUBSCRIBE", channel]])
                setListening(true)
                delay = 0.1
                logger.info("following asset changes", metadata: ["channel": "\(channel)"])
                while !isStopped {
                    guard let message = try connection.receive(waiting: 0.25) else { continue }
                    guard let parts = message.array, parts.count == 3, parts[0].text == "message", let asset = parts[2].text else { continue }
                    onChange(asset)
                }
            } catch {
                setListening(false)
                if isStopped { break }
                logger.warning("asset-change channel unavailable; re-reading the store every second", metadata: ["error": "\(error)"])
                // Sleep in short steps so a stop is seen at once.
                let until = Date().addingTimeInterval(delay)
                while !isStopped, Date() < until { usleep(50_000) }
                delay = min(delay * 2, 5)
            }
        }
        setListening(false)
    }
}
