/// The files of a version being written, stored one after another as they are reported whole
/// (``VersionStaging/stored(_:)``) while the transcode goes on: a worker reports what its child
/// says, `streamgate transcode` what its own staging writes. Reporting never waits.
public final class StoredFiles: Sendable {
    private let continuation: AsyncStream<String>.Continuation
    private let storing: Task<Void, any Error>

    public init(into staging: any VersionStaging) {
        let (files, continuation) = AsyncStream.makeStream(of: String.self)
        self.continuation = continuation
        storing = Task {
            for await file in files { try await staging.stored(file) }
        }
    }

    /// `relative` is whole: store it after the ones reported before it.
    public func report(_ relative: String) {
        continuation.yield(relative)
    }

    /// Waits until every reported file is stored; throws the first failure (after which nothing
    /// more was stored).
    public func finish() async throws {
        continuation.finish()
        try await storing.value
    }

    /// Stops storing: what was not stored yet never will be.
    public func cancel() {
        continuation.finish()
        storing.cancel()
    }
}
