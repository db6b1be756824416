import Foundation
import Jobs
import Logging
import Metrics
import NIOConcurrencyHelpers
import Processes

/// Runs N `streamgate worker` processes on this host and keeps N running.
///
/// N is the farm's desired count in Redis (`{sg}:farm:<name>:desired`), set at start and changed at
/// run time by `streamgate scale N`: the supervisor checks it every second. Scaling up starts
/// workers; scaling down sends SIGTERM to the newest ones, which finish their current job and exit
/// (a second SIGTERM, on a second stop, hands the job back). A worker that dies unexpectedly is
/// started again, with a backoff if it keeps dying.
public final class Supervisor: Sendable {
    public struct Configuration: Sendable {
        /// The farm's name: several farms can share one Redis.
        public var name: String
        /// The desired count to set at start; nil keeps the one stored in Redis (or 1).
        public var initialWorkers: Int?
        /// The `streamgate` binary and the arguments of `worker` (without `--id`).
        public var executable: String
        public var workerArguments: [String]
        public var environment: [String: String]
        /// Where each worker's output goes (`<name>-<slot>.log`), or nil to inherit.
        public var logDirectory: String?

        public init(
            name: String = "default", initialWorkers: Int?, executable: String, workerArguments: [String],
            environment: [String: String] = ProcessInfo.processInfo.environment, logDirectory: String? = nil
        ) {
            self.name = name
            self.initialWorkers = initialWorkers
            self.executable = executable
            self.workerArguments = workerArguments
            self.environment = environment
            self.logDirectory = logDirectory
        }
    }

    /// The most workers one farm runs.
    public static let maximumWorkers = JobQueue.maximumFarmWorkers

    public let configuration: Configuration
    private let queue: JobQueue
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// `streamgate_farm_worker_restarts_total{farm}`: workers that ended without being asked to
    /// (what a crash-looping alert watches).
    private let restarts: Counter

    private struct Member {
        var id: String
        var process: ChildProcess
        var started: Date
        var draining = false
    }

    private struct State {
        var members: [Member] = []
        var stopping = 0
        var restarts = 0
        var recentFailures: [Date] = []
    }

    public init(configuration: Configuration, queue: JobQueue, logger: Logger) {
        self.configuration = configuration
        self.queue = queue
        self.logger = logger
        restarts = Counter(label: "streamgate_farm_worker_restarts_total", dimensions: [("farm", configuration.name)])
    }

    /// Stop: the first call drains every worker, the second releases their jobs.
    public func stop() {
        let (count, members) = state.withLockedValue { state -> (Int, [Member]) in
            state.stopping += 1
            return (state.stopping, state.members)
        }
        logger.info(count == 1 ? "stopping: draining every worker" : "stopping now: workers release their jobs")
        // The first stop drains those not already draining (a scaled-down worker would take a
        // second SIGTERM as "release"); the second reaches every worker.
        for member in members where count > 1 || !member.draining { member.process.signal(SIGTERM) }
    }

    /// Workers running now (not counting those draining).
    public var activeWorkers: Int { state.withLockedValue { $0.members.filter { !$0.draining }.count } }

    /// Runs until stopped and every worker has exited.
    public func run() async throws {
        let key = queue.keys.desiredWorkers(farm: configuration.name)
        if let initial = configuration.initialWorkers {
            try await queue.redis.send(["SET", key, String(initial)])
        }
        logger.info("farm started", metadata: ["farm": "\(configuration.name)"])
        var desired = configuration.initialWorkers ?? 1
        var lastRead = Date.distantPast
        while true {
            let stopping = state.withLockedValue { $0.stopping } > 0
            reap(stopping: stopping)
            if stopping {
                if state.withLockedValue({ $0.members.isEmpty }) { break }
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            if Date().timeIntervalSince(lastRead) >= 1 {
                lastRead = Date()
                if let stored = try? await queue.redis.send(["GET", key]).int {
                    desired = min(Self.maximumWorkers, max(0, Int(stored)))
                }
                _ = try? await queue.redis.pipeline([
                    ["SADD", queue.keys.farms, configuration.name],
                    ["HSET", queue.keys.farmStatus(farm: configuration.name), "running", String(activeWorkers), "desired", String(desired),
                     "host", WorkerConfiguration.hostName(), "pid", String(getpid()),
                     "restarts", String(state.withLockedValue { $0.restarts })],
                    ["EXPIRE", queue.keys.farmStatus(farm: configuration.name), "10"],
                ])
            }
            reconcile(desired: desired)
            try? await Task.sleep(for: .milliseconds(200))
        }
        logger.info("farm stopped", metadata: ["farm": "\(configuration.name)"])
    }

    /// Starts or drains workers so that `desired` are active.
    private func reconcile(desired: Int) {
        let active = activeWorkers
        if active < desired {
            // A worker that keeps dying at once must not be restarted in a tight loop.
            let recent = state.withLockedValue { state -> Int in
                state.recentFailures.removeAll { Date().timeIntervalSince($0) > 30 }
                return state.recentFailures.count
            }
            if recent >= 5 {
                if state.withLockedValue({ $0.recentFailures.last.map { Date().timeIntervalSince($0) < 5 } ?? false }) { return }
            }
            for _ in active..<desired { start() }
        } else if active > desired {
            let victims = state.withLockedValue { state -> [Member] in
                var chosen: [Member] = []
                for index in state.members.indices.reversed() where !state.members[index].draining && chosen.count < active - desired {
                    state.members[index].draining = true
                    chosen.append(state.members[index])
                }
                return chosen
            }
            for victim in victims {
                logger.info("scaling down: draining a worker", metadata: ["worker": "\(victim.id)"])
                victim.process.signal(SIGTERM)
            }
        }
    }

    private func start() {
        let slot = WorkerConfiguration.randomSuffix()
        let id = "\(configuration.name)-\(WorkerConfiguration.hostName())-\(slot)"
        let output: ChildProcess.Stream = configuration.logDirectory.map { .file("\($0)/\(id).log") } ?? .inherit
        do {
            let process = try ChildProcess(
                executable: configuration.executable, arguments: ["worker", "--id", id] + configuration.workerArguments,
                environment: configuration.environment, stdout: output, stderr: output,
                // Its own process group: a Ctrl-C at the terminal reaches the supervisor only, which
                // then decides what each worker gets. A supervisor that dies takes its workers with
                // it; their jobs go back to the queue when their leases run out.
                processGroup: true, deathSignal: SIGKILL
            )
            state.withLockedValue { $0.members.append(Member(id: id, process: process, started: Date())) }
            logger.info("started a worker", metadata: ["worker": "\(id)", "pid": "\(process.pid)"])
        } catch {
            state.withLockedValue { $0.recentFailures.append(Date()) }
            logger.error("cannot start a worker", metadata: ["error": "\(error)"])
        }
    }

    /// Removes workers that exited; an unexpected exit counts toward the restart backoff.
    private func reap(stopping: Bool) {
        let ended = state.withLockedValue { state -> [(Member, ExitStatus)] in
            var ended: [(Member, ExitStatus)] = []
            state.members.removeAll { member in
                guard let status = member.process.exitStatus else { return false }
                ended.append((member, status))
                return true
            }
            for (member, status) in ended where !member.draining && !stopping {
                state.restarts += 1
                restarts.increment()
                if status != .exited(0) || Date().timeIntervalSince(member.started) < 5 { state.recentFailures.append(Date()) }
            }
            return ended
        }
        for (member, status) in ended {
            if member.draining || stopping {
                logger.info("worker exited", metadata: ["worker": "\(member.id)", "status": "\(status)"])
            } else {
                logger.error("worker died; starting another", metadata: ["worker": "\(member.id)", "status": "\(status)"])
            }
        }
    }
}
