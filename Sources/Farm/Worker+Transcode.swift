import Foundation
import Jobs
import Logging
import NIOConcurrencyHelpers
import Processes
import Redis
import S3
import Store
import Traces
import Tracing

// One transcode attempt: its staging, its child, the files stored as the child finishes them,
// the publish, and what the attempt's end means for the job.

extension Worker {
    /// Runs the transcode child; nil when there is nothing to record now: the lease was lost, or
    /// the job split its source and its coordinator (``coordinateSplit(_:)``) records its end.
    func runTranscode(lease: Lease, spec: JobSpec) async -> Outcome? {
        guard let sourceName = spec.source else { return .failed("field 'source' is required") }
        let profilePath: String
        let id: AssetID
        switch jobTarget(lease: lease, spec: spec) {
        case .success(let target): (profilePath, id) = target
        case .failure(let refusal): return refusal.outcome
        }
        let versions = try? await configuration.storage.versions(of: id)
        if let current = versions?.current, !current.isGrowing, versions?.publisher == lease.jobID {
            logger.info("already published by an earlier attempt of this job", metadata: ["job": "\(lease.jobID)", "version": "\(current.version)"])
            return .succeeded(version: current.version)
        }
        // A split an earlier attempt began goes on where it was: its chunks are jobs already.
        do {
            if let recorded = try await recordedSplit(of: lease.jobID) {
                return await resumeSplit(recorded, profilePath: profilePath, asset: id, lease: lease, spec: spec)
            }
        } catch let error as SplitRecordError {
            return .failed("\(error)")
        } catch {
            return retryOrDead(lease: lease, spec: spec, reason: "cannot read the job's record: \(error)")
        }
        // Shown while it grows only in place of nothing (or of this job's own growth, an earlier
        // attempt's that died): a published asset is replaced only by a whole version.
        let growing = versions.map { $0.current == nil || ($0.current!.isGrowing && $0.publisher == lease.jobID) } ?? false

        let input: TranscodeSource
        switch await transcodeSource(sourceName) {
        case .success(let found): input = found
        case .failure(let refusal): return refusal.outcome
        }
        defer { input.reader?.close() }
        // This attempt owns its staging, the child only writes into it: removed when the attempt
        // ends, however it ends (a published one has already become the store's).
        let staging: any VersionStaging
        do {
            staging = try await configuration.storage.stage(id, heldBy: lease.jobID, spool: configuration.spool)
        } catch {
            return postponeForStore(reason: "\(error)")
        }
        let shown = NIOLockedValueBox(false)
        // Files the child reports finished go to the store while it works, in the order written.
        let storing = StoredFiles(into: staging, afterStoring: { [self] file in
            // A shown version's playlist grew: origins drop their copy now rather than in a second.
            guard file.hasSuffix(".m3u8"), shown.withLockedValue({ $0 }) else { return }
            _ = try? await queue.redis.announcePlaylistsGrew(staging.asset.rawValue, in: queue.keys)
        }, onPlayable: { [self] in
            if await show(staging, lease: lease, spec: spec) { shown.withLockedValue { $0 = true } }
        })
        let options = ["--may-split"] + (growing ? ["--growing"] : []) + (spec.posterTime.map { ["--poster-time", String($0)] } ?? [])
        let end = await runChild(input, profilePath: profilePath, into: staging, options: options, storing: storing, lease: lease, spec: spec)
        var outcome: Outcome?
        switch end {
        case .finished(let run):
            do {
                let published = try await Traces.span("publish") { _ in
                    try await staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: lease.jobID)
                }
                transcodeSucceeded(run, lease: lease)
                outcome = .succeeded(version: published.version)
            } catch {
                outcome = postponeForStore(reason: "\(error)")
            }
        case .split(let plan):
            await staging.discard()
            return await startSplit(plan, source: input, profilePath: profilePath, asset: id, lease: lease, spec: spec)
        case .ended(let ended):
            outcome = ended
        }
        await staging.discard()
        if case .succeeded? = outcome {} else if shown.withLockedValue({ $0 }) {
            // Withdrawn with the attempt (the discard above): origins must stop showing it now.
            _ = try? await queue.redis.announceAssetChange(id.rawValue, in: queue.keys)
        }
        return outcome
    }

    /// The job's profile file and asset, or why it cannot run.
    func jobTarget(lease: Lease, spec: JobSpec) -> Result<(profilePath: String, asset: AssetID), SourceRefusal> {
        let profileName = spec.profile ?? "default"
        let profilePath = profileName.contains("/") || profileName.hasSuffix(".yaml")
            ? profileName : "\(configuration.profilesDirectory)/\(profileName).yaml"
        guard FileManager.default.fileExists(atPath: profilePath) else {
            return .failure(SourceRefusal(outcome: .failed("unknown profile '\(profileName)' (no \(profilePath))")))
        }
        guard let asset = lease.assetID ?? spec.assetID else { return .failure(SourceRefusal(outcome: .failed("field 'asset_id' is required"))) }
        do {
            return .success((profilePath, try AssetID(asset)))
        } catch {
            return .failure(SourceRefusal(outcome: .failed("field 'asset_id': \(error)")))
        }
    }

    /// A job's source as the child gets it: a local path it opens, or an object in a bucket this
    /// worker reads for it (the child has no network).
    struct TranscodeSource {
        let name: String
        let reader: S3ObjectReader?
    }

    /// Why a source cannot be transcoded, as the job's outcome.
    struct SourceRefusal: Error {
        let outcome: Outcome
    }

    /// The source checked against this worker's roots and opened; a missing or refused source
    /// fails the job, a bucket that does not answer postpones it.
    func transcodeSource(_ source: String) async -> Result<TranscodeSource, SourceRefusal> {
        if let remote = BucketSource(source) {
            if let problem = remote.problem(storage: configuration.storage, roots: configuration.sourceRoots) {
                return .failure(SourceRefusal(outcome: .failed("field 'source': \(problem)")))
            }
            do {
                guard let reader = try await remote.open(in: configuration.storage) else {
                    return .failure(SourceRefusal(outcome: .failed("field 'source': \(remote.url) does not exist")))
                }
                return .success(TranscodeSource(name: remote.url, reader: reader))
            } catch {
                return .failure(SourceRefusal(outcome: postponeForStore(reason: "\(error)")))
            }
        }
        let uploads = configuration.storage.uploads
        switch SourcePolicy(roots: configuration.sourceRoots.filter { !$0.hasPrefix("s3://") }, uploads: uploads.hasPrefix("/") ? uploads : nil).resolve(source) {
        case .success(let path): return .success(TranscodeSource(name: path, reader: nil))
        case .failure(let problem): return .failure(SourceRefusal(outcome: .failed("field 'source': \(problem)")))
        }
    }

    /// A child that finished: what it reported, and for the metrics how long it took and how fast.
    struct FinishedRun {
        let summary: TranscodeSummary
        let started: Date
        let speed: Double?
    }

    /// How one child run ended.
    enum ChildEnd {
        /// Every file is written, and every file it reported is stored.
        case finished(FinishedRun)
        /// It planned a split (`--may-split`) and transcoded nothing.
        case split(SplitPlan)
        /// The attempt's outcome; nil when the lease was lost (nothing must be recorded).
        case ended(Outcome?)
    }

    /// Runs one `streamgate transcode` child writing into `staging`, with `options` after the
    /// common arguments, under the job's lease: each file it reports goes to `storing`, and it is
    /// stopped when the job is cancelled, released, out of time or taken over.
    func runChild(
        _ source: TranscodeSource, profilePath: String, into staging: any VersionStaging, options: [String], storing: StoredFiles,
        lease: Lease, spec: JobSpec
    ) async -> ChildEnd {
        defer { storing.cancel() }
        // The child opens the store its staging folder is in.
        let localRoot = AssetStore.root(ofStaging: staging.folder)
        let arguments = [
            "transcode", source.name, "--profile", profilePath, "--out", localRoot, "--asset-id", staging.asset.rawValue,
            "--events", "--quiet", "--keyring-stdin", "--memory-limit-mib", String(configuration.memoryLimitMiB),
            "--staging", staging.folder,
        ] + options + configuration.transcodeArguments
        let started = Date()
        // A job may ask for less time than the worker allows, never more.
        let timeLimit = min(spec.timeoutSeconds ?? configuration.jobTimeoutSeconds, configuration.jobTimeoutSeconds)
        var sandbox = configuration.sandbox
        // CPU time adds up over the encoder's threads: the wall limit on every core, and a margin.
        sandbox.cpuSeconds = Int(timeLimit) * ProcessInfo.processInfo.activeProcessorCount + 60
        var childLogger = logger
        childLogger[metadataKey: "job"] = "\(lease.jobID)"
        // The child's stages join the job's trace under this span; the child, having no sockets,
        // says them on its pipe and this process records them.
        let ran: (ChildEnd?, TranscodeChild?, StopReason?, ExitStatus) = await Traces.span("transcode") { span in
            let parent = InstrumentationContext.current
            let child: TranscodeChild
            do {
                child = try TranscodeChild(
                    executable: configuration.executable, arguments: arguments + (span != nil ? ["--stages"] : []),
                    secrets: configuration.keyring.handoff(), sandbox: sandbox, logger: childLogger, source: source.reader, sourceName: source.name,
                    onStored: { storing.report($0) }, onPlayable: { storing.reportPlayable() },
                    onStage: { stage in parent.map { Self.record(stage, under: $0) } }
                )
            } catch {
                span?.setStatus(SpanStatus(code: .error, message: "\(error)"))
                return (.ended(retryOrDead(lease: lease, spec: spec, reason: "\(error)")), nil, nil, .signaled(SIGKILL))
            }
            span?.attributes["process.pid"] = Int(child.process.pid)
            let stopReason = await supervise(child, lease: lease, timeLimit: timeLimit, started: started)
            let exit = await child.process.exited() ?? .signaled(SIGKILL)
            child.drainOutput()
            span?.attributes["streamgate.child.exit"] = "\(exit)"
            if stopReason != nil || TranscodeExit(exit) != .succeeded { span?.setStatus(SpanStatus(code: .error, message: child.failed?.reason ?? "\(exit)")) }
            return (nil, child, stopReason, exit)
        }
        if let ended = ran.0 { return ended }
        let (child, stopReason, exit) = (ran.1!, ran.2, ran.3)

        switch stopReason {
        case .leaseLost?:
            logger.warning("lease lost; the job belongs to another worker now", metadata: ["job": "\(lease.jobID)"])
            return .ended(nil)
        case .cancel?: return .ended(.cancelled)
        case .release?: return .ended(.release)
        case .timeout(let limit)?:
            return .ended(retryOrDead(lease: lease, spec: spec, reason: "timed out after \(Int(limit)) s and was killed"))
        case nil:
            guard TranscodeExit(exit) == .succeeded else { return .ended(outcome(of: child, exit: exit, lease: lease, spec: spec)) }
            if let plan = child.splitPlan { return .split(plan) }
            guard let summary = child.finished else { return .ended(outcome(of: child, exit: exit, lease: lease, spec: spec)) }
            do {
                try await storing.finish()
            } catch {
                return .ended(postponeForStore(reason: "\(error)"))
            }
            return .finished(FinishedRun(summary: summary, started: started, speed: child.progress?.speed))
        }
    }

    /// A stage the child measured, as a span under the child's.
    static func record(_ stage: TranscodeStage, under parent: InstrumentationContext) {
        var attributes: SpanAttributes = [:]
        if let rendition = stage.rendition { attributes["streamgate.rendition"] = rendition }
        if let busy = stage.busySeconds { attributes["streamgate.busy_s"] = busy }
        if let frames = stage.frames { attributes["streamgate.frames"] = frames }
        let name = stage.rendition.map { "\(stage.name.rawValue) \($0)" } ?? stage.name.rawValue
        Traces.record(name, parent: parent, startNanoseconds: stage.startNanoseconds, endNanoseconds: stage.endNanoseconds, attributes: attributes)
    }

    /// A transcode reached the store: the metrics hear of it, a store pause ends, and its timing
    /// waits for the attempt's end to be recorded (a rollout compares the tracks' speed).
    func transcodeSucceeded(_ run: FinishedRun, lease: Lease) {
        let wall = Date().timeIntervalSince(run.started)
        WorkerMetrics.transcoded(seconds: wall, speed: run.speed)
        state.withLockedValue {
            $0.storeFailures = 0
            $0.storePausedUntil = nil
            $0.timings[lease.token] = AttemptTiming(mediaSeconds: run.summary.durationSeconds, wallSeconds: wall)
        }
    }

    /// Holds the lease while the child runs: renews it, reports progress, and stops the child
    /// when the job is cancelled, released, out of time or taken over. Returns why it stopped
    /// the child; nil when the child ended on its own.
    private func supervise(_ child: TranscodeChild, lease: Lease, timeLimit: Double, started: Date) async -> StopReason? {
        var lastRenew = Date()
        var lastReport = Date.distantPast
        var reported: TranscodeEvent.Progress?
        var stopReason: StopReason?
        while child.process.isRunning {
            try? await Task.sleep(for: .milliseconds(100))
            if stopReason == nil {
                if isReleasing { stopReason = .release }
                if Date().timeIntervalSince(started) > timeLimit { stopReason = .timeout(timeLimit) }
            }
            var status: LeaseStatus?
            let progress = child.progress
            if stopReason == nil, let progress, progress != reported, Date().timeIntervalSince(lastReport) >= 0.5 {
                lastReport = Date()
                reported = progress
                // A progress report renews the lease too (same script), so it counts as a renewal.
                status = try? await queue.report(lease, consumer: configuration.id, progress: JobProgress(
                    percent: progress.percent, stage: "transcoding", fps: progress.fps, speed: progress.speed,
                    etaSeconds: progress.etaSeconds
                ))
                if status != nil { lastRenew = Date() }
            }
            if stopReason == nil, Date().timeIntervalSince(lastRenew) >= min(0.5, configuration.leaseSeconds / 3) {
                status = try? await queue.renew(lease, consumer: configuration.id)
                if status != nil { lastRenew = Date() }
            }
            switch status {
            case .lost?: stopReason = .leaseLost
            case .cancelRequested?: if stopReason == nil { stopReason = .cancel }
            default: break
            }
            if let stopReason {
                await stop(child, because: stopReason)
                return stopReason
            }
        }
        return nil
    }

    /// What a child that ended on its own without finishing means for the job, decided from its
    /// exit status; its `failed` event gives the reason.
    private func outcome(of child: TranscodeChild, exit: ExitStatus, lease: Lease, spec: JobSpec) -> Outcome {
        let status = TranscodeExit(exit)
        let failed = child.failed
        if let failed, failed.status != status {
            logger.error("the transcode child's failed event disagrees with its exit status", metadata: [
                "job": "\(lease.jobID)", "event_status": "\(failed.status)", "exit": "\(exit)",
            ])
        }
        let reason = failed?.reason ?? "transcode \(exit)"
        switch status {
        case .succeeded?:
            return retryOrDead(lease: lease, spec: spec, reason: "transcode \(exit) without saying it finished")
        case .storeUnavailable?:
            return postponeForStore(reason: failed?.reason ?? "the store failed")
        case .badInput?, .configuration?:
            // Another attempt would fail the same way.
            return .failed(reason)
        case .cancelled?:
            return .cancelled
        case .outOfMemory?:
            // Worth another try (another worker, a calmer moment), then a dead letter that says why.
            return retryOrDead(lease: lease, spec: spec, reason: reason)
        case .internalFailure?, .usage?, nil:
            if case .signaled = exit {
                logger.error("transcode crashed", metadata: [
                    "job": "\(lease.jobID)", "status": "\(exit)", "stderr": "\(child.errorOutput.suffix(1500))",
                ])
            }
            let detail = failed.map { ": \($0.reason)" } ?? ""
            return retryOrDead(lease: lease, spec: spec, reason: "transcode \(exit)\(detail)")
        }
    }

    /// The store failed (full, unwritable, unreachable), not the job: postponed, the attempt not
    /// counted, and no job taken for a while.
    func postponeForStore(reason: String) -> Outcome {
        pauseForStore(reason: reason)
        let delay = configuration.retryDelay(afterAttempt: 1)
        return .postpone(reason, at: Int64((Date().timeIntervalSince1970 + delay) * 1000))
    }

    private enum StopReason {
        case cancel, release, leaseLost
        case timeout(Double)
    }

    /// Asks the child to stop, then kills its process group; its staging is the attempt's to
    /// remove once it has gone.
    private func stop(_ child: TranscodeChild, because reason: StopReason) async {
        switch reason {
        case .leaseLost, .timeout:
            child.process.signalGroup(SIGKILL)
        case .cancel, .release:
            child.process.signalGroup(SIGTERM)
            if await child.process.exited(timeout: 1.5) == nil { child.process.signalGroup(SIGKILL) }
        }
        if await child.process.exited(timeout: 5) == nil { child.process.signalGroup(SIGKILL) }
    }

    /// Shows the growing version (every file the child reported before saying `playable` is
    /// stored): the job records it, origins hear of it, the callback is told. A store that refuses
    /// costs nothing but the early start: the version is published whole at the end. True when shown.
    private func show(_ staging: any VersionStaging, lease: Lease, spec: JobSpec) async -> Bool {
        let version: PublishedVersion
        do {
            guard let shown = try await staging.show(requiredFiles: PublishedVersion.requiredFilesToShow, publisher: lease.jobID) else { return false }
            version = shown
        } catch {
            logger.warning("cannot show the growing version; it is published whole at the end", metadata: ["job": "\(lease.jobID)", "error": "\(error)"])
            return false
        }
        logger.info("playable while it grows", metadata: ["job": "\(lease.jobID)", "asset": "\(version.asset)", "version": "\(version.version)"])
        _ = try? await queue.playable(lease, consumer: configuration.id, version: version.version)
        notify(spec: spec, lease: lease, state: "playable", version: version.version)
        return true
    }

    /// Takes no job for a while after a store failure: 1 s, doubling with each failure in a row up
    /// to 30 s (with jitter), until a transcode publishes again.
    private func pauseForStore(reason: String) {
        let seconds = state.withLockedValue { state -> Double in
            state.storeFailures += 1
            let seconds = min(30, pow(2, Double(min(state.storeFailures - 1, 5)))) * Double.random(in: 0.75...1)
            state.storePausedUntil = Date().addingTimeInterval(seconds)
            return seconds
        }
        logger.warning("the store failed; taking no job for a while", metadata: [
            "error": "\(reason)", "pause_s": "\(String(format: "%.1f", seconds))",
        ])
    }

    func retryOrDead(lease: Lease, spec: JobSpec, reason: String) -> Outcome {
        let maxAttempts = spec.maxAttempts ?? JobSpec.defaultMaxAttempts
        guard lease.attempt < maxAttempts else {
            return .dead("gave up after \(lease.attempt) attempts: \(reason)")
        }
        let delay = configuration.retryDelay(afterAttempt: lease.attempt)
        return .retry(reason, at: Int64((Date().timeIntervalSince1970 + delay) * 1000))
    }
}
