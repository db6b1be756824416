/// The files of a version being written, stored one after another as they are reported whole
/// (``VersionStaging/stored(_:)``) while the transcode goes on: a worker reports what its child
/// says, `streamgate transcode` what its own staging writes. Reporting never waits.
///
/// A growing version's `playable` moment is reported in the same line (``reportPlayable()``), so
/// `onPlayable` runs only once every file reported before it is stored.
public final class StoredFiles: Sendable {
    private enum Step {
        case file(String)
        case playable
    }

    private let continuation: AsyncStream<Step>.Continuation
    private let storing: Task<Void, any Error>

    /// `afterStoring` hears each file once it is stored (a worker announces a growing version's
    /// playlists then).
    public init(
        into staging: any VersionStaging, afterStoring: @escaping @Sendable (String) async -> Void = { _ in },
        onPlayable: @escaping @Sendable () async -> Void = {}
    ) {
        let (steps, continuation) = AsyncStream.makeStream(of: Step.self)
        self.continuation = continuation
        storing = Task {
            for await step in steps {
                switch step {
                case .file(let file):
                    try await staging.stored(file)
                    await afterStoring(file)
                case .playable: await onPlayable()
                }
            }
        }
    }

    /// `relative` is whole: store it after the ones reported before it.
    public func report(_ relative: String) {
        continuation.yield(.file(relative))
    }

    /// Every rendition has a segment and the multivariant playlist is written: once what was
    /// reported so far is stored, `onPlayable` runs.
    public func reportPlayable() {
        continuation.yield(.playable)
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
