import Foundation
import Jobs
import Logging
import Store
import Traces

// A split transcode, on the worker that took the upload's job: the chunks enqueued as jobs any
// worker takes, the audio encoded here once for the whole source, then a coordinator that holds
// the job's lease without a slot, follows the chunks, and assembles and publishes the version
// once every chunk is sealed. The job's record keeps the plan, where the parts write and the
// audio's manifest, so an attempt that follows a dead worker's resumes rather than starts again.

extension Worker {
    /// What a split transcode's job carries from one step (and one attempt) to the next.
    struct SplitRun: Sendable {
        let lease: Lease
        let spec: JobSpec
        let plan: SplitPlan
        let staging: any SharedStaging
        let profileName: String
        var audio: PartManifest?
        let started: Date
        /// The version may be shown while it grows (the asset has none, or this job's growth).
        var growable = false
        /// It is shown, growing: its playlists end as EVENT playlists.
        var shown = false
        /// Leading chunks its growing playlists list.
        var shownChunks = 0

        var chunkIDs: [String] { plan.chunks.indices.map { JobQueue.chunkID(parent: lease.jobID, index: $0) } }
    }

    /// A split recorded on the job by an earlier attempt.
    struct RecordedSplit {
        let plan: SplitPlan
        let share: String
        let audio: PartManifest?
    }

    /// The split recorded on the job, nil when there is none. A queue that does not answer throws:
    /// a job must never start its split over only because its record could not be read.
    func recordedSplit(of jobID: String) async throws -> RecordedSplit? {
        let names = [JobQueue.SplitField.plan, .share, .audio].map(\.rawValue)
        guard let values = try await queue.fields(names, ofJobs: [jobID]).first, let planText = values[0] else { return nil }
        guard let share = values[1], let plan = try? JSONDecoder().decode(SplitPlan.self, from: Data(planText.utf8)),
              case .success(let checked) = plan.validated()
        else { throw SplitRecordError(reason: "the job's recorded split is unreadable") }
        let audio = values[2].flatMap { try? PartManifest.parse($0).get() }
        return RecordedSplit(plan: checked, share: share, audio: audio)
    }

    struct SplitRecordError: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// The child planned a split: the shared version is staged, the plan recorded, the chunks
    /// enqueued, then the audio encoded and the coordinator started.
    func startSplit(_ plan: SplitPlan, source: TranscodeSource, profilePath: String, asset: AssetID, lease: Lease, spec: JobSpec) async -> Outcome? {
        guard let storage = configuration.storage as? any SplitStorage else { return .failed("the store cannot hold a split transcode") }
        let staging: any SharedStaging
        do {
            staging = try await storage.stageShared(asset, heldBy: lease.jobID, spool: configuration.spool, resuming: nil)
        } catch {
            return postponeForStore(reason: "\(error)")
        }
        let planText = String(decoding: (try? JSONEncoder().encode(plan)) ?? Data(), as: UTF8.self)
        switch try? await queue.record([.plan: planText, .share: staging.share], lease: lease, consumer: configuration.id) {
        case .held?, .cancelRequested?: break
        case .lost?:
            await staging.leave()  // the attempt that took the job over starts its own split
            return nil
        case nil:
            // The record may have landed: left for the next attempt, which resumes it or, finding
            // none, removes it before staging its own.
            await staging.leave()
            return retryOrDead(lease: lease, spec: spec, reason: "cannot record the split plan: the queue did not answer")
        }
        logger.info("splitting the source", metadata: [
            "job": "\(lease.jobID)", "chunks": "\(plan.chunks.count)", "duration_s": "\(String(format: "%.1f", plan.duration))",
        ])
        var run = SplitRun(lease: lease, spec: spec, plan: plan, staging: staging, profileName: spec.profile ?? "default", audio: nil, started: Date())
        (run.growable, run.shown) = await growth(of: asset, by: lease.jobID)
        return await continueSplit(run, source: source, profilePath: profilePath)
    }

    /// An attempt after a dead (or released) one: the recorded split goes on.
    func resumeSplit(_ recorded: RecordedSplit, profilePath: String, asset: AssetID, lease: Lease, spec: JobSpec) async -> Outcome? {
        guard let storage = configuration.storage as? any SplitStorage else { return .failed("the store cannot hold a split transcode") }
        let staging: any SharedStaging
        do {
            staging = try await storage.stageShared(asset, heldBy: lease.jobID, spool: configuration.spool, resuming: recorded.share)
        } catch {
            await cancelChunks(of: lease.jobID, count: recorded.plan.chunks.count)
            return .failed("cannot resume the split transcode: \(error)")
        }
        logger.info("resuming a split transcode", metadata: ["job": "\(lease.jobID)", "chunks": "\(recorded.plan.chunks.count)"])
        var run = SplitRun(
            lease: lease, spec: spec, plan: recorded.plan, staging: staging, profileName: spec.profile ?? "default", audio: recorded.audio, started: Date()
        )
        (run.growable, run.shown) = await growth(of: asset, by: lease.jobID)
        guard recorded.plan.audio, recorded.audio == nil else { return await continueSplit(run, source: nil, profilePath: profilePath) }
        switch await transcodeSource(spec.source ?? "") {
        case .success(let source):
            defer { source.reader?.close() }
            return await continueSplit(run, source: source, profilePath: profilePath)
        case .failure(let refusal):
            return await endSplit(run, refusal.outcome)
        }
    }

    /// Whether the version may be shown while it grows (as for a whole transcode: in place of
    /// nothing, or of this job's own growth), and whether an earlier attempt of it shows it now.
    private func growth(of asset: AssetID, by jobID: String) async -> (growable: Bool, shown: Bool) {
        guard let versions = try? await configuration.storage.versions(of: asset) else { return (false, false) }
        guard let current = versions.current else { return (true, false) }
        let own = current.isGrowing && versions.publisher == jobID
        return (own, own)
    }

    /// Enqueues the chunks (those an earlier attempt enqueued are left as they are), encodes the
    /// audio when it is not yet, and hands the job to a coordinator: nil, since the coordinator
    /// records its end.
    private func continueSplit(_ run: SplitRun, source: TranscodeSource?, profilePath: String) async -> Outcome? {
        var run = run
        do {
            for index in run.plan.chunks.indices { try await queue.enqueueChunk(chunkSpec(run, index: index)) }
        } catch {
            return await endSplit(run, retryOrDead(lease: run.lease, spec: run.spec, reason: "cannot enqueue the chunks: \(error)"))
        }
        if run.plan.audio, run.audio == nil, let source {
            let storing = StoredFiles(into: run.staging)
            switch await runChild(source, profilePath: profilePath, into: run.staging, options: ["--part", "audio"], storing: storing, lease: run.lease, spec: run.spec) {
            case .finished(let finished):
                guard let manifest = finished.summary.part, case .success(let audio) = manifest.validated() else {
                    return await endSplit(run, .failed("the audio part's manifest is missing or malformed"))
                }
                switch try? await queue.record([.audio: audio.json()], lease: run.lease, consumer: configuration.id) {
                case .lost?: return await endSplit(run, nil)
                case nil: return await endSplit(run, retryOrDead(lease: run.lease, spec: run.spec, reason: "cannot record the audio part"))
                default: run.audio = audio
                }
            case .split: return await endSplit(run, .failed("the audio part planned a split"))
            case .ended(let outcome): return await endSplit(run, outcome)
            }
        }
        let coordinated = run
        // By lease: a worker that takes its own job back starts a second coordinator beside the first's end.
        state.withLockedValue { $0.coordinators[run.lease.token] = Task { await self.coordinateSplit(coordinated) } }
        return nil
    }

    /// The spec of chunk `index`: the upload's, with the chunk's stretch and the shared version.
    private func chunkSpec(_ run: SplitRun, index: Int) -> JobSpec {
        let chunk = run.plan.chunks[index]
        var spec = JobSpec(
            id: JobQueue.chunkID(parent: run.lease.jobID, index: index), kind: .chunk, source: run.spec.source, profile: run.spec.profile,
            assetID: run.staging.asset.rawValue, priority: run.spec.priority, maxAttempts: run.spec.maxAttempts,
            timeoutSeconds: run.spec.timeoutSeconds, sourceEncrypted: run.spec.sourceEncrypted, keepSource: true, posterTime: run.plan.posterTime
        )
        spec.parent = run.lease.jobID
        spec.chunk = index
        spec.chunkStart = chunk.start
        spec.chunkEnd = chunk.end
        spec.share = run.staging.share
        // A chunk's attempts join the trace under the attempt that split the upload.
        spec.trace = TraceContext.current()
        return spec
    }

    /// Ends this attempt of a split: a final outcome cancels the chunks and removes the shared
    /// version; any other leaves both for the next attempt.
    private func endSplit(_ run: SplitRun, _ outcome: Outcome?) async -> Outcome? {
        if let outcome, outcome.isFinal {
            await cancelChunks(of: run.lease.jobID, count: run.plan.chunks.count)
            await run.staging.discard()
            // Shown while it grew: withdrawn with it, and origins must stop showing it now.
            if run.shown { _ = try? await queue.redis.announceAssetChange(run.staging.asset.rawValue, in: queue.keys) }
        } else {
            await run.staging.leave()
        }
        return outcome
    }

    /// Cancels every chunk, then waits (a few seconds at most) for the running ones to stop, so
    /// the shared version is removed under no child still writing into it.
    func cancelChunks(of parent: String, count: Int) async {
        let ids = (0..<count).map { JobQueue.chunkID(parent: parent, index: $0) }
        for id in ids { _ = try? await queue.cancel(id) }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let states = (try? await queue.fields(["state"], ofJobs: ids)) ?? []
            if states.allSatisfy({ $0[0].flatMap(JobState.init(rawValue:))?.isTerminal ?? true }) { return }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// A split job that ended with no worker running it (cancelled while queued, dead-lettered
    /// when reclaimed): its chunks are cancelled and the version they shared is removed.
    func abandonSplit(of delivery: Delivery) async {
        guard let spec = delivery.spec, spec.kind == .transcode, let asset = spec.assetID.flatMap({ try? AssetID($0) }),
              let storage = configuration.storage as? any SplitStorage else { return }
        let id = spec.id ?? delivery.entry
        guard let recorded = try? await recordedSplit(of: id) else { return }
        await cancelChunks(of: id, count: recorded.plan.chunks.count)
        // Published before its end was recorded: the version is the asset's, not to be removed.
        if let versions = try? await configuration.storage.versions(of: asset), let current = versions.current,
           !current.isGrowing, versions.publisher == id { return }
        if let staging = try? await storage.stageShared(asset, heldBy: id, spool: configuration.spool, resuming: recorded.share) {
            await staging.discard()
        }
        logger.warning("cancelled the chunks of a split job that ended without its worker", metadata: ["job": "\(id)"])
    }

    /// Holds the job while its chunks run elsewhere: renews its lease with their progress, stops
    /// them when it is cancelled, fails when one fails for good, and publishes once all are sealed.
    func coordinateSplit(_ started: SplitRun) async {
        var run = started
        defer { _ = state.withLockedValue { $0.coordinators.removeValue(forKey: run.lease.token) } }
        let ids = run.chunkIDs
        var unanswered = Date()
        while true {
            try? await Task.sleep(for: .milliseconds(250))
            if isDraining {
                _ = await endSplit(run, .release)
                return await conclude(lease: run.lease, spec: run.spec, outcome: .release)
            }
            guard let records = try? await queue.fields(["state", "progress", "error"], ofJobs: ids) else {
                if Date().timeIntervalSince(unanswered) > configuration.leaseSeconds { _ = await endSplit(run, nil); return }
                continue
            }
            let done = records.filter { $0[0] == JobState.succeeded.rawValue }.count
            let percent = records.map { $0[0] == JobState.succeeded.rawValue ? 100 : ($0[1].flatMap(Double.init) ?? 0) }.reduce(0, +) / Double(ids.count)
            let status = try? await queue.report(run.lease, consumer: configuration.id, progress: JobProgress(
                percent: min(99, percent), stage: "chunks \(done)/\(ids.count)", fps: nil, speed: nil, etaSeconds: nil
            ))
            switch status {
            case nil:
                if Date().timeIntervalSince(unanswered) > configuration.leaseSeconds { _ = await endSplit(run, nil); return }
                continue
            case .lost?:
                logger.warning("lease lost; the split transcode belongs to another worker now", metadata: ["job": "\(run.lease.jobID)"])
                _ = await endSplit(run, nil)
                return
            case .cancelRequested?:
                _ = await endSplit(run, .cancelled)
                return await conclude(lease: run.lease, spec: run.spec, outcome: .cancelled)
            case .held?:
                unanswered = Date()
            }
            for (index, record) in records.enumerated() {
                switch record[0].flatMap(JobState.init(rawValue:)) {
                case nil:
                    // Gone (expired, or never enqueued): enqueued again.
                    _ = try? await queue.enqueueChunk(chunkSpec(run, index: index))
                case .failed?, .dead?, .cancelled?:
                    let chunk = run.plan.chunks[index]
                    let stretch = String(format: "%.0f–", chunk.start) + (chunk.end.map { String(format: "%.0f s", $0) } ?? "end")
                    let outcome = Outcome.failed("chunk \(index) (\(stretch)) \(record[0]!): \(record[2] ?? "no reason given")")
                    _ = await endSplit(run, outcome)
                    return await conclude(lease: run.lease, spec: run.spec, outcome: outcome)
                default: break
                }
            }
            let leading = records.prefix { $0[0] == JobState.succeeded.rawValue }.count
            if run.growable, leading > run.shownChunks, leading < ids.count, !run.plan.audio || run.audio != nil {
                if let parts = try? await queue.fields([JobQueue.SplitField.part.rawValue], ofJobs: Array(ids.prefix(leading))) {
                    await grow(&run, manifests: parts.map { $0[0] })
                }
            }
            guard done == ids.count else { continue }
            guard let parts = try? await queue.fields([JobQueue.SplitField.part.rawValue, "spec"], ofJobs: ids) else { continue }
            let outcome = await assemble(run, manifests: parts.map { $0[0] }, specs: parts.map { $0[1] })
            // Published, the version is the store's; else it is removed, or kept for the next attempt.
            if case .succeeded = outcome {} else { _ = await endSplit(run, outcome) }
            return await conclude(lease: run.lease, spec: run.spec, outcome: outcome)
        }
    }

    /// Every chunk is sealed: the playlists and `asset.json` are written and the version published.
    private func assemble(_ run: SplitRun, manifests: [String?], specs: [String?]) async -> Outcome {
        var chunks: [PartManifest] = []
        for (index, text) in specs.enumerated() where text.flatMap({ try? JobSpec.parse($0) })?.share != run.staging.share {
            // A chunk of an earlier split of this job (its record lost) wrote somewhere else.
            return .failed("chunk \(index) wrote into another version than this job's")
        }
        for (index, text) in manifests.enumerated() {
            switch text.map(PartManifest.parse) {
            case .success(let manifest)?: chunks.append(manifest)
            case .failure(let problem)?: return .failed("chunk \(index)'s manifest \(problem)")
            case nil: return .failed("chunk \(index) succeeded without recording its manifest")
            }
        }
        let files: [(name: String, bytes: [UInt8])]
        do {
            files = try SplitAssembly(asset: run.staging.asset, profile: run.profileName, chunks: chunks, audio: run.audio)
                .files(wallSeconds: Date().timeIntervalSince(run.started), form: run.shown ? .grown : .whole)
        } catch {
            return .failed("the chunks do not make one version: \(error)")
        }
        do {
            try await write(files, into: run.staging)
            let published = try await run.staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: run.lease.jobID)
            logger.info("published a split transcode", metadata: [
                "job": "\(run.lease.jobID)", "version": "\(published.version)", "chunks": "\(chunks.count)",
            ])
            return .succeeded(version: published.version)
        } catch {
            return postponeForStore(reason: "\(error)")
        }
    }

    /// The leading chunks are done: the growing playlists list them, and the first time the
    /// version is shown. A store that refuses costs the early start only.
    private func grow(_ run: inout SplitRun, manifests: [String?]) async {
        let chunks = manifests.compactMap { $0.flatMap { try? PartManifest.parse($0).get() } }
        guard chunks.count == manifests.count,
              let files = try? SplitAssembly(asset: run.staging.asset, profile: run.profileName, chunks: chunks, audio: run.audio)
                .files(wallSeconds: 0, form: .growing)
        else {
            run.growable = false  // the final assembly says what is wrong
            return
        }
        do {
            try await write(files, into: run.staging)
            run.shownChunks = chunks.count
            if run.shown {
                _ = try? await queue.redis.announcePlaylistsGrew(run.staging.asset.rawValue, in: queue.keys)
                return
            }
            guard let version = try await run.staging.show(requiredFiles: PublishedVersion.requiredFilesToShow, publisher: run.lease.jobID) else {
                run.growable = false
                return
            }
            run.shown = true
            logger.info("playable while it grows", metadata: ["job": "\(run.lease.jobID)", "version": "\(version.version)", "chunks": "\(chunks.count)"])
            _ = try? await queue.playable(run.lease, consumer: configuration.id, version: version.version)
            notify(spec: run.spec, lease: run.lease, state: "playable", version: version.version)
        } catch {
            logger.warning("cannot show the growing split version; it is published whole at the end", metadata: [
                "job": "\(run.lease.jobID)", "error": "\(error)",
            ])
            run.growable = false
        }
    }

    /// Writes the assembler's files into the shared version, each whole in one rename (a shown
    /// version's playlists are read as they change), and stores them in that order.
    private func write(_ files: [(name: String, bytes: [UInt8])], into staging: any SharedStaging) async throws {
        for file in files {
            let path = staging.folder + "/" + file.name
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(file.bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
            try await staging.stored(file.name)
        }
    }
}
