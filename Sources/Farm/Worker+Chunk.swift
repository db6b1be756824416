import Foundation
import Jobs
import Store

// One chunk of a split transcode: the video renditions of its stretch of the source, written
// into the version its parent shares, and its manifest recorded on its job for the parent.

extension Worker {
    /// Runs a chunk's child; nil when the lease was lost.
    func runChunk(lease: Lease, spec: JobSpec) async -> Outcome? {
        guard let sourceName = spec.source, let share = spec.share, let start = spec.chunkStart else {
            return .failed("a chunk needs 'source', 'share' and 'chunk_start'")
        }
        let profilePath: String
        let asset: AssetID
        switch jobTarget(lease: lease, spec: spec) {
        case .success(let target): (profilePath, asset) = target
        case .failure(let refusal): return refusal.outcome
        }
        guard let storage = configuration.storage as? any SplitStorage else { return .failed("the store cannot hold a split transcode") }
        // Written only into the version its split job still assembles: not after that job ended,
        // nor anywhere a job of kind chunk names that is not its parent's share.
        if let parent = spec.parent, let values = try? await queue.fields(["state", JobQueue.SplitField.share.rawValue], ofJobs: [parent]).first {
            guard let state = values[0].flatMap(JobState.init(rawValue:)), !state.isTerminal else {
                return .failed("its split job \(parent) has ended (\(values[0] ?? "no record"))")
            }
            guard values[1] == share else { return .failed("field 'share' is not where its split job \(parent) assembles its version") }
        }
        let input: TranscodeSource
        switch await transcodeSource(sourceName) {
        case .success(let found): input = found
        case .failure(let refusal): return refusal.outcome
        }
        defer { input.reader?.close() }
        var staging: (any VersionStaging)?
        var failure: (any Error)?
        // Three tries: a folder store's shared staging moves when its version is shown, and the
        // link that leads to its new place follows a moment later.
        for attempt in 0..<3 where staging == nil {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(200)) }
            do { staging = try await storage.stagePart(asset, of: share, heldBy: lease.jobID, spool: configuration.spool) } catch { failure = error }
        }
        guard let staging else {
            // Its parent's version is gone (the parent failed or was cancelled), or never was.
            return .failed("field 'share': \(failure.map { "\($0)" } ?? "cannot be opened")")
        }
        let stretch = "video:\(start):\(spec.chunkEnd.map { "\($0)" } ?? "")"
        let options = ["--part", stretch] + (spec.posterTime.map { ["--poster-time", String($0)] } ?? [])
        let end = await runChild(input, profilePath: profilePath, into: staging, options: options, storing: StoredFiles(into: staging), lease: lease, spec: spec)
        // Drops this worker's local copy only: what the chunk stored is its parent's version's.
        await staging.discard()
        switch end {
        case .finished(let run):
            guard let manifest = run.summary.part, case .success(let checked) = manifest.validated() else {
                return .failed("the chunk's manifest is missing or malformed")
            }
            switch try? await queue.record([.part: checked.json()], lease: lease, consumer: configuration.id) {
            case .lost?: return nil
            case nil: return retryOrDead(lease: lease, spec: spec, reason: "cannot record the chunk's manifest")
            default:
                transcodeSucceeded(run, lease: lease)
                return .succeeded(version: nil)
            }
        case .split: return .failed("a chunk's child planned a split")
        case .ended(let outcome): return outcome
        }
    }
}
