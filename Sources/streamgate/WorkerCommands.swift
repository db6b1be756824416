import ArgumentParser
import Farm
import Foundation
import Hummingbird
import Logging
import Origin
import Store
import Vault

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Take jobs from the queue and transcode them, each in a child process.",
        discussion: "SIGTERM or SIGINT once: finish the running jobs, take no new ones. Twice: hand them back to the queue now.\n\n" + unitsHelp
    )

    @OptionGroup var queueOptions: QueueOptions

    @OptionGroup var workerOptions: WorkerOptions

    @OptionGroup(title: "Redis durability") var redisWait: RedisWaitOptions

    @Option(help: "This worker's id (default: host-pid-random).")
    var id: String?

    @OptionGroup(title: "Metrics") var metrics: MetricsEndpointOptions

    func run() async throws {
        try await TraceExport.run(service: "streamgate-worker") { try await work() }
    }

    private func work() async throws {
        let options = workerOptions
        // Refuse to start without a master key: every job would fail on it.
        let keyring: Keyring
        do {
            keyring = try Keyring.load(keyFile: options.masterKeyFile)
        } catch {
            throw CommandFailure(error)
        }
        _ = try options.limits.limits()
        let storage = try options.store.storage(creating: true) { problem in
            FileHandle.standardError.write(Data("streamgate: the store is not usable yet (\(problem)); jobs wait for it\n".utf8))
        }
        let configuration = WorkerConfiguration(
            id: id ?? WorkerConfiguration.defaultID(), concurrency: options.concurrency, storage: storage,
            spool: options.spool.map(StorePath.absolute) ?? NSTemporaryDirectory() + "streamgate-spool",
            profilesDirectory: options.profiles, executable: Self.executablePath(), leaseSeconds: options.lease.seconds,
            jobTimeoutSeconds: options.jobTimeout.seconds, memoryLimitMiB: options.memoryLimitMib.mebibytes, keyring: keyring,
            transcodeArguments: options.limits.arguments, sourceRoots: options.sourceRoot.map(StorePath.absolute),
            drainTimeoutSeconds: options.drainTimeout?.seconds, webhookPolicy: try options.webhooks.policy(),
            track: try options.resolvedTrack()
        )
        var logger = Logger(label: "streamgate.worker")
        logger.logLevel = .info
        logger[metadataKey: "worker"] = "\(configuration.id)"
        let worker = Worker(
            // Finishing is the worker's durable write; the fetcher only reads and takes leases.
            configuration: configuration, queue: try queueOptions.queue(wait: redisWait.replicaWait),
            fetcher: try queueOptions.queue(connections: 1), logger: logger
        )
        let signals = SignalCounter { count in count == 1 ? worker.drain() : worker.release() }
        let metricsServer = metrics.start(store: storage, logger: logger)
        try await worker.run()
        metricsServer?.cancel()
        withExtendedLifetime(signals) {}
    }

    /// The running binary, for the children.
    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if length > 0 { return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return CommandLine.arguments[0]
    }
}

struct FarmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "farm",
        abstract: "Run N worker processes on this host and keep N running; `streamgate scale` changes N live.",
        discussion: "SIGTERM or SIGINT once: every worker finishes its job and exits. Twice: they hand their jobs back.\n\n" + unitsHelp
    )

    @OptionGroup var queueOptions: QueueOptions
    @OptionGroup var workerOptions: WorkerOptions
    @OptionGroup(title: "Redis durability") var redisWait: RedisWaitOptions

    @Option(help: "Workers to run (stored in Redis as the farm's desired count; omit to keep the stored one).")
    var workers: Int?

    @Option(help: "The farm's name, for `scale --farm`.")
    var name: String = "default"

    @Option(help: "A folder for each worker's log (default: this process's output).")
    var logs: String?

    @OptionGroup(title: "Metrics") var metrics: MetricsEndpointOptions

    func run() async throws {
        if let workers, !(0...Supervisor.maximumWorkers).contains(workers) {
            throw CommandFailure(message: "--workers must be 0…\(Supervisor.maximumWorkers), got \(workers)", code: 64)
        }
        do {
            _ = try Keyring.load(keyFile: workerOptions.masterKeyFile)
        } catch {
            throw CommandFailure(error)
        }
        // A bad allow-list or track fails here, once, rather than in every worker the farm restarts.
        _ = try workerOptions.webhooks.policy()
        _ = try workerOptions.resolvedTrack()
        var environment = ProcessInfo.processInfo.environment
        if let redis = queueOptions.redis { environment["STREAMGATE_REDIS_URL"] = redis }
        if let logs { try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true) }
        var logger = Logger(label: "streamgate.farm")
        logger.logLevel = .info
        let supervisor = Supervisor(
            configuration: .init(
                name: name, initialWorkers: workers, executable: WorkerCommand.executablePath(),
                workerArguments: workerArguments, environment: environment,
                logDirectory: logs
            ),
            queue: try queueOptions.queue(connections: 2), logger: logger
        )
        let signals = SignalCounter { _ in supervisor.stop() }
        let metricsServer = metrics.start(store: nil, logger: logger)
        try await supervisor.run()
        metricsServer?.cancel()
        withExtendedLifetime(signals) {}
    }

    /// What each worker the farm starts is given after `worker --id ID` (the Redis URL goes in the
    /// environment): the worker options, the prefix and the replica wait.
    var workerArguments: [String] {
        workerOptions.arguments + ["--prefix", queueOptions.prefix] + redisWait.arguments
    }
}

/// `--metrics-port`: `/metrics` and `/healthz` of a process with no HTTP server of its own (a
/// worker, a farm's supervisor).
struct MetricsEndpointOptions: ParsableArguments {
    @Option(help: "Serve /metrics and /healthz on this port (loopback unless --metrics-host).")
    var metricsPort: Int?

    @Option(help: "The address for --metrics-port.")
    var metricsHost: String = "127.0.0.1"

    /// The server's task, when a port is given.
    func start(store: (any AssetStorage)?, logger: Logger) -> Task<Void, Error>? {
        guard let metricsPort else { return nil }
        let router = Router()
        HealthRoutes(store: store, queue: nil, metrics: Telemetry.render).register(on: router)
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(metricsHost, port: metricsPort), serverName: "StreamGate"),
            logger: logger
        )
        return Task { try await app.run() }
    }
}
