/// Runs `body`, then `cleanup`, whether `body` returned or threw: a `defer` that may `await`.
///
/// The scoped fixtures (`withRedis`, `withOrigin`…) end through here, so a failed `#require` or a
/// thrown error still stops their servers and processes.
public func withCleanup<T>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: () async throws -> T,
    cleanup: () async -> Void
) async throws -> T {
    let value: T
    do {
        value = try await body()
    } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    return value
}
