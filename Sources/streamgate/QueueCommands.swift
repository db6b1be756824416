import ArgumentParser
import Farm
import Foundation
import Jobs
import Hummingbird
import Logging
import Origin
import Store
import Vault
import Redis

/// Where the queue is: shared by every command that talks to Redis.
struct QueueOptions: ParsableArguments {
    @Option(help: "Redis URL: redis://[:password@]host:port/db (a cluster node will do), redis+sentinel://host:port,host:port/service[/db] or unix:///path (default: $STREAMGATE_REDIS_URL, else redis://127.0.0.1:6379).")
    var redis: String?

    @Option(help: "The hash tag every key shares (several deployments can share one Redis).")
    var prefix: String = "sg"

    /// The queue at ``redis``. `wait` (``RedisWaitOptions``, on the commands that write jobs): enqueue
    /// and finish are acknowledged only once that many replicas have the write; none by default.
    func queue(connections: Int = 4, wait: ReplicaWait = ReplicaWait()) throws -> JobQueue {
        let text = redis ?? ProcessInfo.processInfo.environment["STREAMGATE_REDIS_URL"] ?? "redis://127.0.0.1:6379"
        do {
            let client = wait.client(url: try RedisURL(text), connections: connections)
            return JobQueue(redis: client, keys: Keyspace(prefix: prefix))
        } catch {
            throw CommandFailure(message: "\(error)", code: 78)
        }
    }
}

/// Counts SIGTERM/SIGINT and calls back with the count (1 = drain, 2 = release).
final class SignalCounter: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var count = 0

    init(_ onSignal: @escaping @Sendable (Int) -> Void) {
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                lock.lock()
                count += 1
                let seen = count
                lock.unlock()
                onSignal(seen)
            }
            source.resume()
            sources.append(source)
        }
    }
}

struct Enqueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Enqueue a transcode of FILE (as the workers see that path).")

    @OptionGroup var queueOptions: QueueOptions

    @OptionGroup(title: "Redis durability") var redisWait: RedisWaitOptions

    @Argument(help: "The source file.")
    var file: String

    @Option(help: "Profile name (looked up by the workers) or path.")
    var profile: String = "default"

    @Option(help: "The asset id; random when omitted.")
    var assetID: String?

    @Option(help: "high or normal.")
    var priority: String = "normal"

    @Option(help: "An idempotency key: enqueueing the same key again returns the first job.")
    var idempotencyKey: String?

    @Option(help: "Attempts before the job is dead-lettered.")
    var maxAttempts: Int?

    @Flag(help: "Wait for the job to end, with a progress bar; print the playback URL.")
    var wait = false

    @Option(help: "The origin that serves the store, for the playback URL.")
    var origin: String = "http://127.0.0.1:8080"

    func run() async throws {
        guard let priority = JobPriority(rawValue: priority) else {
            throw CommandFailure(message: "--priority must be high or normal, got '\(self.priority)'", code: 64)
        }
        let source = StorePath.absolute(file)
        let queue = try queueOptions.queue(connections: 2, wait: redisWait.replicaWait)
        let enqueued: JobQueue.Enqueued
        do {
            enqueued = try await queue.enqueue(JobSpec(
                source: source, profile: profile, assetID: assetID, priority: priority,
                idempotencyKey: idempotencyKey, maxAttempts: maxAttempts
            ))
        } catch {
            throw CommandFailure(error)
        }
        print("job \(enqueued.jobID) asset \(enqueued.assetID ?? "-")\(enqueued.created ? "" : " (already enqueued)")")
        guard wait else { return }
        let record = try await JobWatcher(queue: queue).watch(enqueued.jobID)
        if record.state == .succeeded, let asset = record.assetID {
            print("play: \(origin)/v/\(asset)/master.m3u8")
        } else {
            throw CommandFailure(message: "job \(record.id) \(record.state.rawValue): \(record.error ?? "no reason recorded")", code: 1)
        }
    }
}

/// Follows a job until it ends, drawing a progress bar on a terminal.
struct JobWatcher {
    let queue: JobQueue

    func watch(_ id: String) async throws -> JobRecord {
        let bar = isatty(STDERR_FILENO) == 1 ? ProgressBar() : nil
        var lastState: JobState?
        while true {
            guard let record = try await queue.job(id) else {
                throw CommandFailure(message: "no job \(id)", code: 1)
            }
            if record.state != lastState, bar == nil {
                FileHandle.standardError.write(Data("job \(id): \(record.state.rawValue)\(record.error.map { " (\($0))" } ?? "")\n".utf8))
            }
            lastState = record.state
            if let bar, record.state == .running {
                bar.draw(fraction: (record.progress ?? 0) / 100, fps: record.fps ?? 0, speed: record.speed ?? 0, eta: record.etaSeconds)
            }
            if record.state.isTerminal {
                bar?.finish()
                return record
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List recent jobs, show one, watch one, or cancel one.",
        subcommands: [List.self, Show.self, Watch.self, Cancel.self, DeadLetters.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The most recent jobs.")
        @OptionGroup var queueOptions: QueueOptions
        @Option(help: "How many.") var limit: Int = 20
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let jobs = try await queueOptions.queue().recentJobs(limit: limit)
            if json { return printJSON(jobs) }
            // As wide as the longest id (a chunk's is its parent's and `-cN`), and a space.
            let width = max(22, (jobs.map(\.id.count).max() ?? 0) + 1)
            print("JOB".padding(toLength: width, withPad: " ", startingAt: 0) + "STATE       ATTEMPTS  PROGRESS  ASSET                 ERROR")
            for job in jobs {
                let progress = job.progress.map { String(format: "%5.1f%%", $0) } ?? "    -"
                print(
                    job.id.padding(toLength: width, withPad: " ", startingAt: 0)
                        + job.state.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
                        + "\(job.attempts)/\(job.maxAttempts)".padding(toLength: 10, withPad: " ", startingAt: 0)
                        + progress.padding(toLength: 10, withPad: " ", startingAt: 0)
                        + (job.assetID ?? "-").padding(toLength: 22, withPad: " ", startingAt: 0)
                        + (job.error ?? "")
                )
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One job's record, as JSON.")
        @OptionGroup var queueOptions: QueueOptions
        @Argument var id: String

        func run() async throws {
            guard let job = try await queueOptions.queue().job(id) else { throw CommandFailure(message: "no job \(id)", code: 1) }
            printJSON(job)
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Follow a job with a progress bar until it ends.")
        @OptionGroup var queueOptions: QueueOptions
        @Argument var id: String

        func run() async throws {
            let record = try await JobWatcher(queue: try queueOptions.queue()).watch(id)
            print("job \(record.id) \(record.state.rawValue)\(record.error.map { ": \($0)" } ?? "")")
            if record.state != .succeeded { throw ExitCode(1) }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a job (a running one stops within a second).")
        @OptionGroup var queueOptions: QueueOptions
        @Argument var id: String

        func run() async throws {
            let result = try await queueOptions.queue().cancel(id)
            print("job \(id): \(result.rawValue)")
            if result == .missing { throw ExitCode(1) }
        }
    }

    struct DeadLetters: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dead", abstract: "The newest dead letters and why.")
        @OptionGroup var queueOptions: QueueOptions
        @Option(help: "How many.") var limit: Int = 20

        func run() async throws {
            for letter in try await queueOptions.queue().deadLetters(limit: limit) {
                let what = letter.fields["job"].map { "job \($0)" } ?? "entry \(letter.fields["entry"] ?? letter.id)"
                print("\(letter.id)  \(what)  \(letter.fields["reason"] ?? "")")
            }
        }
    }
}

struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue", abstract: "Queue depth, lag, pending, oldest age and workers.")
    @OptionGroup var queueOptions: QueueOptions
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        let stats = try await queueOptions.queue().stats()
        if json { return printJSON(stats) }
        for priority in JobPriority.readOrder {
            guard let figures = stats.priorities[priority.rawValue] else { continue }
            let oldest = figures.oldestWaitingSeconds.map { String(format: "%.1f s", $0) } ?? "-"
            print("\(priority.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) waiting \(figures.lag)  running \(figures.pending)  oldest \(oldest)")
        }
        print("retrying \(stats.delayed)  dead \(stats.dead)  workers \(stats.workers)")
        if !stats.totals.isEmpty {
            print("totals " + stats.totals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "  "))
        }
    }
}

struct Workers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Live workers: id, state, track, jobs done, uptime, current jobs.")
    @OptionGroup var queueOptions: QueueOptions

    func run() async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        print("WORKER                              STATE      TRACK   JOBS DONE  UPTIME  CURRENT")
        for worker in try await queueOptions.queue().liveWorkers() {
            let uptime = (worker.startedAt ?? now).distance(to: now) / 1000
            let columns: [(String, Int)] = [
                (worker.id, 36), (worker.state, 11), (worker.track, 8), (String(worker.jobsDone), 11), (ProgressBar.clock(Double(uptime)), 8),
            ]
            let current = worker.jobs.isEmpty ? "-" : worker.jobs.joined(separator: ",")
            print(columns.map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined() + current)
        }
    }
}

func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    if let data = try? encoder.encode(value) { print(String(decoding: data, as: UTF8.self)) }
}

struct Scale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Change how many workers a running farm runs (no restart).")

    @OptionGroup var queueOptions: QueueOptions

    @Argument(help: "The number of workers.")
    var workers: Int

    @Option(help: "The farm's name.")
    var farm: String = "default"

    func run() async throws {
        guard (0...Supervisor.maximumWorkers).contains(workers) else {
            throw CommandFailure(message: "the number of workers must be 0…\(Supervisor.maximumWorkers), got \(workers)", code: 64)
        }
        let queue = try queueOptions.queue(connections: 1)
        let previous = try await queue.setDesiredWorkers(workers, farm: farm)
        if try await queue.farm(farm).running == nil {
            FileHandle.standardError.write(Data("streamgate: no farm '\(farm)' is running now; it will start \(workers) workers\n".utf8))
        }
        print("farm \(farm): \(workers) workers (was \(previous.map(String.init) ?? "unset"))")
    }
}

/// `bench/queue`'s StreamGate side: enqueue latency, then end-to-end throughput of no-op jobs
/// through the workers that are running. Prints one JSON line.
struct BenchQueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-queue", abstract: "Measure the queue with no-op jobs.", shouldDisplay: false)

    @OptionGroup var queueOptions: QueueOptions

    @OptionGroup(title: "Redis durability") var redisWait: RedisWaitOptions

    @Option(help: "No-op jobs for the throughput run.")
    var jobs: Int = 20_000

    @Option(help: "Single enqueues timed one by one, for the latency figures.")
    var latencySamples: Int = 2_000

    @Option(help: ArgumentHelp("How long to wait for the workers to finish.", valueName: "duration"))
    var timeout = DurationValue(seconds: 300)

    func run() async throws {
        let queue = try queueOptions.queue(connections: 4, wait: redisWait.replicaWait)
        try await queue.ensureGroups()
        let before = try await queue.stats().totals["succeeded"] ?? 0

        var latencies: [Double] = []
        latencies.reserveCapacity(latencySamples)
        for _ in 0..<latencySamples {
            let started = ContinuousClock.now
            _ = try await queue.enqueue(JobSpec(kind: .noop))
            latencies.append((ContinuousClock.now - started).seconds * 1000)
        }
        try await waitFor(queue, succeeded: before + latencySamples)

        let started = ContinuousClock.now
        _ = try await queue.enqueueNoops(count: jobs)
        let enqueued = (ContinuousClock.now - started).seconds
        try await waitFor(queue, succeeded: before + latencySamples + jobs)
        let elapsed = (ContinuousClock.now - started).seconds

        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        let result: [String: Double] = [
            "jobs": Double(jobs), "seconds": elapsed, "jobs_per_s": Double(jobs) / elapsed,
            "enqueue_only_jobs_per_s": Double(jobs) / enqueued,
            "enqueue_p50_ms": percentile(0.5), "enqueue_p99_ms": percentile(0.99),
        ]
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    private func waitFor(_ queue: JobQueue, succeeded target: Int) async throws {
        let deadline = ContinuousClock.now + timeout.duration
        while ContinuousClock.now < deadline {
            let done = Int(try await queue.redis.send(["HGET", queue.keys.stats, "succeeded"]).int ?? 0)
            if done >= target { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw CommandFailure(message: "the workers did not finish \(target) jobs within \(timeout) (is a worker running?)", code: 1)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
