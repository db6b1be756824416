import NIOConcurrencyHelpers

/// Coalesces concurrent loads of one key: the first caller runs the load, every caller that asks
/// while it runs waits for the same result. Nothing waits on a timer (a slow load is waited for, not
/// duplicated), and a failed load is not remembered: the next caller tries again.
public final class SingleFlight<Value: Sendable>: Sendable {
    private let inFlight = NIOLockedValueBox<[String: Task<Value, Error>]>([:])
    private let coalescedCount = NIOLockedValueBox(0)

    private let onJoin: (@Sendable () -> Void)?

    /// - Parameter onJoin: called each time a caller joins another's load (for metrics).
    public init(onJoin: (@Sendable () -> Void)? = nil) {
        self.onJoin = onJoin
    }

    /// Callers that joined another caller's load instead of starting their own.
    public var coalesced: Int { coalescedCount.withLockedValue { $0 } }

    /// - Parameter counted: whether joining counts in ``coalesced`` (read-aheads do not).
    public func value(for key: String, counted: Bool = true, load: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let (task, joined) = inFlight.withLockedValue { flights -> (Task<Value, Error>, Bool) in
            if let running = flights[key] { return (running, true) }
            let task = Task { try await load() }
            flights[key] = task
            return (task, false)
        }
        if joined {
            if counted {
                coalescedCount.withLockedValue { $0 += 1 }
                onJoin?()
            }
            return try await task.value
        }
        defer { _ = inFlight.withLockedValue { $0.removeValue(forKey: key) } }
        return try await task.value
    }
}
