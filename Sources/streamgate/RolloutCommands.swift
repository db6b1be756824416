import ArgumentParser
import Foundation
import Jobs
import Redis

/// `streamgate rollout`: canary rollouts of workers (docs/jobs.md, "Tracks and rollouts").
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Canary rollouts of workers: start one, change its share, judge it, promote or abort it.",
        discussion: """
        Workers started with --track canary take at most the rollout's share of the job attempts; \
        stable workers take everything else. `status` compares both tracks since the rollout started.
        """,
        subcommands: [Start.self, SetShare.self, Status.self, Promote.self, Abort.self],
        defaultSubcommand: Status.self
    )

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a rollout: canary workers take --share of the attempts from now on.")
        @OptionGroup var queueOptions: QueueOptions
        @Option(help: "The canary's share of job attempts, 0…1.") var share: Double
        @Option(help: "A label for the canary's version (an image tag), shown by `status`.") var canaryVersion: String?
        @Option(help: "A label for the stable workers' version.") var stableVersion: String?

        func run() async throws {
            let queue = try queueOptions.queue(connections: 1)
            let record = try await rolloutCall { try await queue.startRollout(share: share, canaryVersion: canaryVersion, stableVersion: stableVersion) }
            print("rollout \(record.id) started: canary workers take at most \(RolloutText.percent(record.share)) of the attempts\(RolloutText.versions(record))")
            print("follow it with `streamgate rollout status`; change the share with `streamgate rollout set-share`")
            if try await RolloutText.liveTracks(queue)[.canary, default: 0] == 0 {
                FileHandle.standardError.write(Data("streamgate: no canary worker is running: start some with `streamgate worker --track canary`\n".utf8))
            }
        }
    }

    struct SetShare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-share", abstract: "Change the running rollout's share (it counts from now on).")
        @OptionGroup var queueOptions: QueueOptions
        @Argument(help: "The canary's share of job attempts, 0…1 (0 pauses the canary).") var share: Double

        func run() async throws {
            let queue = try queueOptions.queue(connections: 1)
            let previous = try await rolloutCall { try await queue.setRolloutShare(share) }
            print("canary share \(RolloutText.percent(share)) (was \(RolloutText.percent(previous)))")
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End the rollout as promoted, and say how to roll the stable workers to the canary's version.")
        @OptionGroup var queueOptions: QueueOptions

        func run() async throws {
            let record = try await rolloutCall { try await queueOptions.queue(connections: 1).endRollout(promoted: true) }
            print("rollout \(record.id) promoted. \(RolloutText.tally(record))")
            print("""
            Next: roll the stable workers to the canary's version\(record.canaryVersion.map { " (\($0))" } ?? ""), then scale the canary workers to 0.
            Until then canary workers take jobs like stable ones. On Kubernetes:
              kubectl -n streamgate set image deployment/streamgate-worker worker=IMAGE   (or newTag in kustomization.yaml)
              kubectl -n streamgate rollout status deployment/streamgate-worker
              kubectl -n streamgate scale deployment/streamgate-worker-canary --replicas 0
            """)
        }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End the rollout as aborted: canary workers take no more jobs; say how to remove them.")
        @OptionGroup var queueOptions: QueueOptions

        func run() async throws {
            let record = try await rolloutCall { try await queueOptions.queue(connections: 1).endRollout(promoted: false) }
            print("rollout \(record.id) aborted. \(RolloutText.tally(record))")
            print("""
            Canary workers take no new job from now on (until the next `rollout start`); the ones they run finish.
            Next: scale the canary workers to 0 (or give them the stable version). On Kubernetes:
              kubectl -n streamgate scale deployment/streamgate-worker-canary --replicas 0
            """)
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare canary against stable since the rollout started: promote (exit 0), rollback (1) or wait (3).",
            discussion: "The failure ratio is attempts failed, retried or dead-lettered over those that succeeded or failed; "
                + "the speed, media seconds per wall second of the transcodes. Before --min-attempts the answer is wait, "
                + "unless the canary's failures alone already break --max-failure-delta at that many attempts (rollback). "
                + "Exit 4: no rollout is running."
        )
        @OptionGroup var queueOptions: QueueOptions
        @Option(help: "Canary attempts (succeeded or failed) needed before promote.") var minAttempts: Int = 20
        @Option(help: "How much higher the canary's failure ratio may be than stable's (0.02: 2 points).") var maxFailureDelta: Double = 0.02
        @Option(help: "The lowest canary speed allowed, as a fraction of stable's.") var minSpeedRatio: Double = 0.9
        @Flag(help: "JSON output.") var json = false

        struct Report: Encodable {
            var verdict: RolloutVerdict
            var reasons: [String]
            var failureDelta: Double?
            var speedRatio: Double?
            var criteria: RolloutCriteria
            var rollout: RolloutRecord
            var workers: [String: Int]

            enum CodingKeys: String, CodingKey {
                case verdict, reasons, failureDelta = "failure_delta", speedRatio = "speed_ratio", criteria, rollout, workers
            }
        }

        func run() async throws {
            guard minAttempts >= 0, maxFailureDelta >= 0, minSpeedRatio >= 0 else {
                throw CommandFailure(message: "--min-attempts, --max-failure-delta and --min-speed-ratio must not be negative", code: 64)
            }
            let queue = try queueOptions.queue(connections: 1)
            guard let record = try await queue.rollout() else {
                let last = try await queue.lastRollout()
                if json {
                    printJSON(["rollout": nil, "last": last] as [String: RolloutRecord?])
                } else {
                    print("no rollout is running" + (last.map { "; the last, \($0.id), was \($0.ended ?? "ended")" } ?? ""))
                }
                throw ExitCode(4)
            }
            let criteria = RolloutCriteria(minAttempts: minAttempts, maxFailureDelta: maxFailureDelta, minSpeedRatio: minSpeedRatio)
            let judgement = RolloutJudgement.judge(canary: record.canary, stable: record.stable, criteria: criteria)
            let tracks = try await RolloutText.liveTracks(queue)
            if json {
                printJSON(Report(
                    verdict: judgement.verdict, reasons: judgement.reasons, failureDelta: judgement.failureDelta,
                    speedRatio: judgement.speedRatio, criteria: criteria, rollout: record,
                    workers: Dictionary(uniqueKeysWithValues: WorkerTrack.allCases.map { ($0.rawValue, tracks[$0, default: 0]) })
                ))
            } else {
                print(RolloutText.report(record, judgement: judgement, tracks: tracks))
            }
            if judgement.verdict != .promote { throw ExitCode(judgement.verdict.exitCode) }
        }
    }
}

/// A rollout call whose refusal (a bad share, none running, one already running) is one line and an exit code.
private func rolloutCall<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as RolloutError {
        if case .badShare = error { throw CommandFailure(message: error.description, code: 64) }
        throw CommandFailure(message: error.description, code: 1)
    }
}

/// How `rollout` prints its numbers.
enum RolloutText {
    static func percent(_ value: Double) -> String { String(format: "%g %%", (value * 1000).rounded() / 10) }

    static func versions(_ record: RolloutRecord) -> String {
        let parts = [record.canaryVersion.map { "canary \($0)" }, record.stableVersion.map { "stable \($0)" }].compactMap { $0 }
        return parts.isEmpty ? "" : " (\(parts.joined(separator: ", ")))"
    }

    static func tally(_ record: RolloutRecord) -> String {
        func one(_ name: String, _ track: TrackOutcomes) -> String { "\(name) \(track.judged) attempts, \(track.failures) failed" }
        return "\(one("canary", record.canary)); \(one("stable", record.stable))."
    }

    /// Live workers by track, from their heartbeats (a worker from before tracks counts as stable).
    static func liveTracks(_ queue: JobQueue) async throws -> [WorkerTrack: Int] {
        var counts: [WorkerTrack: Int] = [:]
        for worker in try await queue.liveWorkers() { counts[WorkerTrack(rawValue: worker.track) ?? .stable, default: 0] += 1 }
        return counts
    }

    static func report(_ record: RolloutRecord, judgement: RolloutJudgement, tracks: [WorkerTrack: Int]) -> String {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let age = record.startedAt.map { " started \(ProgressBar.clock(Double(now - $0) / 1000)) ago;" } ?? ""
        var lines = [
            "rollout \(record.id),\(age) canary share \(percent(record.share))\(versions(record))",
            "live workers: \(tracks[.canary, default: 0]) canary, \(tracks[.stable, default: 0]) stable",
            "",
            "TRACK   STARTED  SUCCEEDED  FAILED  RETRIED  DEAD  FAILURE    SPEED",
        ]
        for (name, track) in [("canary", record.canary), ("stable", record.stable)] {
            let failure = track.failureRatio.map { String(format: "%.1f %%", $0 * 100) } ?? "-"
            let speed = track.speed.map { String(format: "%.2f×", $0) } ?? "-"
            lines.append(
                name.padding(toLength: 8, withPad: " ", startingAt: 0) + column(track.started, 7) + column(track.succeeded, 11)
                    + column(track.failed, 8) + column(track.retried, 9) + column(track.dead, 6)
                    + String(repeating: " ", count: max(1, 9 - failure.count)) + failure
                    + String(repeating: " ", count: max(1, 9 - speed.count)) + speed
            )
        }
        lines.append("")
        lines.append("verdict: \(judgement.verdict.rawValue)")
        lines += judgement.reasons.map { "  - \($0)" }
        return lines.joined(separator: "\n")
    }

    private static func column(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: " ", count: max(1, width - text.count)) + text
    }
}
