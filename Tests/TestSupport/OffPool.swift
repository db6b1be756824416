import Foundation

/// Runs `work` on a thread of its own and awaits its result.
///
/// Swift's concurrency pool has one thread per core (two on the CI machine), and the tests run in
/// parallel on it. A test that transcoded, waited for a child process or slept on one of those
/// threads would stall every other test for as long: timeouts would fire in tests that did nothing
/// wrong. Whatever blocks goes through here instead.
public func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
