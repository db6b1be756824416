import Foundation
import Jobs
import Logging
import NIOConcurrencyHelpers
import Redis

/// Job changes as they happen, for every live feed (`GET /v1/events`) of this origin: one reader
/// of the queue's events stream, so a hundred open consoles cost Redis one blocked connection,
/// not a hundred. The reader blocks on a connection of its own (never one the API, L2 or the
/// gate need), runs while anyone listens and stops itself after a read that finds no one.
final class JobEventFeed: Sendable {
    enum Update: Sendable {
        case job(JobRecord)
        /// Sent every ``pingInterval`` so proxies and the connection's idle deadline see bytes.
        case ping
    }

    /// Feeds one origin serves at once; more are refused (429), not queued.
    static let maximumSubscribers = 100
    static let pingInterval: Duration = .seconds(15)

    private struct State {
        var subscribers: [Int: AsyncStream<Update>.Continuation] = [:]
        var nextID = 0
        var reading = false
        /// The blocking reads' own client, made with the first subscriber.
        var blocking: JobQueue?
    }

    private let state = NIOLockedValueBox(State())
    private let queue: JobQueue
    private let logger: Logger

    init(queue: JobQueue, logger: Logger) {
        self.queue = queue
        self.logger = logger
    }

    /// Whether another subscriber would be taken now.
    var hasRoom: Bool { state.withLockedValue { $0.subscribers.count < Self.maximumSubscribers } }

    /// A new subscriber's updates, or nil when the origin serves its maximum already. A client that
    /// reads slowly loses its oldest updates, never the server's memory.
    func subscribe() -> (id: Int, updates: AsyncStream<Update>)? {
        let (updates, continuation) = AsyncStream.makeStream(of: Update.self, bufferingPolicy: .bufferingNewest(256))
        let started = state.withLockedValue { state -> (id: Int, reader: JobQueue?)? in
            guard state.subscribers.count < Self.maximumSubscribers else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = continuation
            guard !state.reading else { return (id, nil) }
            state.reading = true
            if state.blocking == nil {
                state.blocking = JobQueue(redis: RedisClient(url: queue.redis.url, connections: 1), keys: queue.keys)
            }
            return (id, state.blocking)
        }
        guard let started else { return nil }
        if let blocking = started.reader { Task { await self.read(blocking) } }
        return (started.id, updates)
    }

    func unsubscribe(_ id: Int) {
        state.withLockedValue { $0.subscribers.removeValue(forKey: id) }?.finish()
    }

    /// The subscribers now; none ends the reading (decided under the lock, so a new subscriber
    /// either sees the reader running or starts the next one).
    private func listenersOrStop() -> [AsyncStream<Update>.Continuation] {
        state.withLockedValue { state in
            if state.subscribers.isEmpty { state.reading = false }
            return Array(state.subscribers.values)
        }
    }

    /// Follows the events stream from now on; each batch's jobs are read in one round trip and
    /// sent whole, so a client never has to ask again.
    private func read(_ blocking: JobQueue) async {
        var after = "$"
        var lastPing = ContinuousClock.now
        while true {
            var records: [JobRecord] = []
            do {
                let events = try await blocking.events(after: after, block: 5)
                if let last = events.last {
                    after = last.id
                    var seen = Set<String>()
                    records = try await queue.jobs(events.compactMap { $0.fields["job"] }.filter { seen.insert($0).inserted })
                }
            } catch {
                logger.warning("job event feed: cannot read events", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
            let listeners = listenersOrStop()
            if listeners.isEmpty { return }
            for record in records { for listener in listeners { listener.yield(.job(record)) } }
            if ContinuousClock.now - lastPing >= Self.pingInterval {
                lastPing = .now
                for listener in listeners { listener.yield(.ping) }
            }
        }
    }
}
