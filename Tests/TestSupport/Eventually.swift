import Foundation

/// Polls `check` every 50 ms until it returns true or `seconds` pass; the last look is made after
/// the deadline, so a condition that became true just then still counts.
public func eventually(within seconds: Double = 10, _ check: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await check() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await check()
}
