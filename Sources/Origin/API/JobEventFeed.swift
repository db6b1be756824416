import Foundation
import Jobs
import Logging
import NIOConcurrencyHelpers

/// Job changes as they happen, for every live feed (`GET /v1/events`) of this origin: one reader
/// of the queue's events stream, started by the first subscriber and stopped after the last, so a
/// hundred open consoles cost Redis one blocked connection, not a hundred.
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
        var reader: Task<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())
    private let queue: JobQueue
    private let logger: Logger

    init(queue: JobQueue, logger: Logger) {
        self.queue = queue
        self.logger = logger
    }

    /// A new subscriber's updates, or nil when the origin serves its maximum already. A client that
    /// reads slowly loses its oldest updates, never the server's memory.
    func subscribe() -> (id: Int, updates: AsyncStream<Update>)? {
        let (updates, continuation) = AsyncStream.makeStream(of: Update.self, bufferingPolicy: .bufferingNewest(256))
        let id = state.withLockedValue { state -> Int? in
            guard state.subscribers.count < Self.maximumSubscribers else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = continuation
            if state.reader == nil { state.reader = Task { await self.read() } }
            return id
        }
        guard let id else { return nil }
        return (id, updates)
    }

    func unsubscribe(_ id: Int) {
        let stopped = state.withLockedValue { state -> Task<Void, Never>? in
            state.subscribers.removeValue(forKey: id)?.finish()
            guard state.subscribers.isEmpty else { return nil }
            defer { state.reader = nil }
            return state.reader
        }
        stopped?.cancel()
    }

    private func broadcast(_ update: Update) {
        for continuation in state.withLockedValue({ Array($0.subscribers.values) }) { continuation.yield(update) }
    }

    /// Follows the events stream from now on; each batch's jobs are read in one round trip and
    /// sent whole, so a client never has to ask again.
    private func read() async {
        var after = "$"
        var lastPing = ContinuousClock.now
        while !Task.isCancelled {
            do {
                let events = try await queue.events(after: after, block: 5)
                if let last = events.last {
                    after = last.id
                    var seen = Set<String>()
                    let ids = events.compactMap { $0.fields["job"] }.filter { seen.insert($0).inserted }
                    for record in try await queue.jobs(ids) { broadcast(.job(record)) }
                }
            } catch {
                logger.warning("job event feed: cannot read events", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
            if ContinuousClock.now - lastPing >= Self.pingInterval {
                lastPing = .now
                broadcast(.ping)
            }
        }
    }
}
