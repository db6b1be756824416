import Foundation
import Logging
import NIOConcurrencyHelpers
import Redis

/// Follows announcement channels on Redis on a thread of its own and calls `onMessage` with each
/// `(channel, message)`: asset changes (``Keyspace/assetChanges``: a worker announces every version
/// it publishes, the API every asset it deletes or whose policy it changes) and revoked playback
/// tokens. While the subscription is down, messages may be missed, so `onStatus` is told (also each
/// time it comes up, after which state that may have missed messages is reloaded).
public final class OriginInvalidation: Sendable {
    let url: RedisURL
    let channels: [String]
    let logger: Logger
    let onMessage: @Sendable (_ channel: String, _ message: String) -> Void
    let onStatus: @Sendable (_ listening: Bool) -> Void
    private let stopped = NIOLockedValueBox(false)
    private let listening = NIOLockedValueBox(false)
    private let finished = NIOLockedValueBox<[CheckedContinuation<Void, Never>]?>([])

    public init(
        url: RedisURL, channels: [String], logger: Logger,
        onMessage: @escaping @Sendable (_ channel: String, _ message: String) -> Void,
        onStatus: @escaping @Sendable (_ listening: Bool) -> Void
    ) {
        self.url = url
        self.channels = channels
        self.logger = logger
        self.onMessage = onMessage
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
                _ = try connection.pipeline([["SUBSCRIBE"] + channels])
                setListening(true)
                delay = 0.1
                logger.info("following announcements", metadata: ["channels": "\(channels.joined(separator: ", "))"])
                while !isStopped {
                    guard let message = try connection.receive(waiting: 0.25) else { continue }
                    guard let parts = message.array, parts.count == 3, parts[0].text == "message",
                          let channel = parts[1].text, let text = parts[2].text
                    else { continue }
                    onMessage(channel, text)
                }
            } catch {
                setListening(false)
                if isStopped { break }
                logger.warning("announcements unavailable; re-reading the store every second", metadata: ["error": "\(error)"])
                // Sleep in short steps so a stop is seen at once.
                let until = Date().addingTimeInterval(delay)
                while !isStopped, Date() < until { usleep(50_000) }
                delay = min(delay * 2, 5)
            }
        }
        setListening(false)
    }
}
