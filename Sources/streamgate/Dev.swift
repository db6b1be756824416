import ArgumentParser
import Farm
import Foundation
import Gate
import Hummingbird
import Jobs
import Logging
import Origin
import Store
import Vault
import Redis
import LocalChain

struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The whole stack on this machine: redis-server, the HTTP server (playback, job API, metrics) and a farm of workers.",
        discussion: """
        Everything lives in the data folder: the master key (generated the first time), an API key, Redis's \
        socket and AOF, the store and the workers' logs. Ctrl-C stops it: the server first, then the workers \
        (they finish their jobs; a second Ctrl-C hands them back), then Redis.

        \(unitsHelp)
        """
    )

    @Option(help: "The data folder.")
    var data: String = ".data"

    @Option(help: "The HTTP server's address.")
    var host: String = "127.0.0.1"

    @Option(help: "The HTTP server's port.")
    var port: Int = 8080

    @Option(help: "Workers in the farm.")
    var workers: Int = 2

    @Option(help: "Folder of ladder profiles.")
    var profiles: String = "profiles"

    @Option(help: "Transcode this file once the stack is up and print its playback URL.")
    var sample: String?

    @Option(help: "The profile for --sample.")
    var sampleProfile: String = "default"

    @OptionGroup(title: "Connections") var connections: ConnectionOptions

    @Flag(inversion: .prefixedNo, help: "Start the local EVM (fixtures/chain) and gate keys on NFT ownership (needs scripts/python-env.sh).")
    var chain = true

    @OptionGroup(title: "Webhooks") var webhooks: WebhookOptions

    @OptionGroup(title: "Sign-in limits") var signInLimits: SignInLimitOptions

    @OptionGroup(title: "Redis durability") var redisWait: RedisWaitOptions

    @OptionGroup(title: "Viewer analytics") var analytics: AnalyticsOptions

    func run() async throws {
        // The embedded server's spans; the workers it starts inherit the environment and export their own.
        try await TraceExport.run(service: "streamgate-server", playbackRatio: 0.01) { try await runStack() }
    }

    private func runStack() async throws {
        // dev's redis-server listens on a Unix socket only: no replica can follow it, so a WAIT for
        // one would fail every enqueue. Said at once rather than on the first job.
        if redisWait.redisWaitReplicas > 0 {
            throw CommandFailure(
                message: "--redis-wait-replicas \(redisWait.redisWaitReplicas): dev's redis-server has no replicas (Unix socket only); use serve and farm with a replicated Redis",
                code: 64
            )
        }
        let webhookPolicy = try webhooks.policy()
        let root = StorePath.absolute(data)
        let devFolder = root + "/dev"
        let storeFolder = root + "/store"
        let keyFile = root + "/master.key"
        let apiKeyFile = devFolder + "/api.key"
        for folder in [root, devFolder, storeFolder, devFolder + "/logs"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        if !FileManager.default.fileExists(atPath: keyFile) {
            try Self.writeSecret(Data(try SecureRandom.bytes(32)).base64EncodedString() + "\n", to: keyFile)
            FileHandle.standardError.write(Data("""
            dev: generated a DEVELOPMENT master key in \(keyFile). It protects every content key in \(storeFolder):
                 keep it, and never use it in production (set STREAMGATE_MASTER_KEY or --master-key-file there).

            """.utf8))
        }
        if !FileManager.default.fileExists(atPath: apiKeyFile) {
            try Self.writeSecret("dev-" + Digest.hex(try SecureRandom.bytes(16)) + "\n", to: apiKeyFile)
        }
        let apiKey = try String(contentsOfFile: apiKeyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "STREAMGATE_MASTER_KEY")

        var logger = Logger(label: "streamgate.dev")
        logger.logLevel = .info
        let redis: RedisServerProcess
        do {
            redis = try RedisServerProcess(directory: devFolder + "/redis", appendOnly: true)
        } catch {
            throw CommandFailure(message: "cannot start redis-server: \(error)", code: 69)
        }
        // The local chain, so gated assets can be tried end to end: sign in with one of its funded
        // accounts, mint with sg_mint721 (see fixtures/chain/README.md).
        var localChain: LocalChainProcess?
        var gating: GateCommandOptions?
        if chain {
            do {
                let started = try LocalChainProcess()
                localChain = started
                let secretFile = devFolder + "/token.secret"
                if !FileManager.default.fileExists(atPath: secretFile) {
                    try Self.writeSecret(Data(try SecureRandom.bytes(32)).base64EncodedString() + "\n", to: secretFile)
                }
                var options = try GateCommandOptions.parse([
                    "--siwe-domain", "localhost:\(port)", "--siwe-uri", "http://localhost:\(port)/",
                    "--rpc", "\(started.chainID)=\(started.rpcURL)", "--token-secret-file", secretFile,
                ])
                if let multicall = started.contracts["multicall3"] { options.multicall = ["\(started.chainID)=\(multicall.checksummed)"] }
                options.signInLimits = signInLimits
                gating = options
            } catch {
                say("dev: no local chain (\(error)); NFT gating is off. `scripts/python-env.sh` installs what it needs.")
            }
        }
        let storage: any AssetStorage
        do { storage = try AssetStore(readingFrom: storeFolder) } catch { throw CommandFailure(error) }
        let server = try ServerSetup(
            storage: storage, masterKeyFile: keyFile, redis: redis.urlString, prefix: "sg", apiKeyFile: apiKeyFile,
            sourceRoots: [FileManager.default.currentDirectoryPath], maxUploadBytes: 8 << 30, gating: gating,
            webhookPolicy: webhookPolicy, connections: try connections.limits(),
            replicaWait: redisWait.replicaWait, analytics: analytics
        )
        let queue = server.queue!
        environment["STREAMGATE_REDIS_URL"] = redis.urlString
        let supervisor = Supervisor(
            configuration: .init(
                name: "dev", initialWorkers: workers, executable: WorkerCommand.executablePath(),
                workerArguments: [
                    "--store", storeFolder, "--profiles", StorePath.absolute(profiles), "--master-key-file", keyFile,
                    "--source-root", FileManager.default.currentDirectoryPath,
                ] + webhooks.arguments + redisWait.arguments,
                environment: environment, logDirectory: devFolder + "/logs"
            ),
            queue: JobQueue(redis: RedisClient(url: redis.url, connections: 2)), logger: logger
        )
        let base = "http://\(host == "0.0.0.0" ? "127.0.0.1" : host):\(port)"
        // The chain's sign-in is bound to localhost:PORT: the viewer's page must be opened there.
        let consoleBase = ["0.0.0.0", "127.0.0.1", "localhost"].contains(host) ? "http://localhost:\(port)" : base
        say("""
        StreamGate dev stack
          HTTP     \(base)   playback /v/{asset}/master.m3u8 · API /v1 · /metrics · /readyz
          console  \(consoleBase)/console/   (sign in with the API key; /watch/{asset} plays an asset, a gated one after a wallet signs in)
          API key  \(apiKey)   (\(apiKeyFile))
          Redis    \(redis.urlString)
          workers  \(workers)   (streamgate scale N --farm dev --redis \(redis.urlString))
          logs     \(devFolder)/logs
          chain    \(localChain.map { "\($0.rpcURL) (chain \($0.chainID); sign in at /v1/auth/nonce, /v1/auth/siwe)" } ?? "off")
          webhooks \(webhookPolicy.isPublicOnly ? "public addresses only (--webhook-allow 127.0.0.1 for a receiver on this machine)" : "public addresses and \(webhookPolicy.entries.joined(separator: ", "))")
        try:
          curl -H 'Authorization: Bearer \(apiKey)' --data-binary @clip.mp4 '\(base)/v1/uploads?profile=fast'
          streamgate enqueue clip.mp4 --profile fast --redis \(redis.urlString) --origin \(base) --wait
        """)

        // Stopping runs in order: the HTTP server, then the workers (they finish their jobs; a second
        // Ctrl-C hands them back), then Redis, which the workers need until they are done.
        let (stops, signals) = AsyncStream<Int>.makeStream()
        let counter = SignalCounter { count in signals.yield(count) }
        let farm = Task { try await supervisor.run() }
        let http = Task { try await server.run(host: host, port: port, handlingSignals: false) }
        let metrics = Task { await QueueMetrics.run(queue: queue) }
        let sampling = Task { await Self.transcodeSample(sample, profile: sampleProfile, queue: queue, base: base) }
        let stopping = Task {
            for await count in stops {
                if count == 1 {
                    say("dev: stopping (Ctrl-C again to hand running jobs back to the queue)")
                    http.cancel()
                    metrics.cancel()
                    sampling.cancel()
                }
                supervisor.stop()
            }
        }
        _ = try? await farm.value
        stopping.cancel()
        http.cancel()
        _ = try? await http.value
        redis.stop()
        localChain?.stop()
        withExtendedLifetime(counter) {}
        say("dev: stopped")
    }

    /// `--sample`: enqueues one file once the stack is up and prints where to play it.
    static func transcodeSample(_ file: String?, profile: String, queue: JobQueue, base: String) async {
        guard let file else { return }
        do {
            let enqueued = try await queue.enqueue(JobSpec(source: StorePath.absolute(file), profile: profile, assetID: "sample"))
            say("sample: job \(enqueued.jobID) transcoding \(file) as asset \(enqueued.assetID ?? "sample")…")
            while !Task.isCancelled {
                if let record = try await queue.job(enqueued.jobID), record.state.isTerminal {
                    if record.state == .succeeded {
                        say("play: ffplay \(base)/v/\(record.assetID ?? "sample")/master.m3u8   (or open it in any HLS player)")
                    } else {
                        say("sample: job \(record.state.rawValue): \(record.error ?? "")")
                    }
                    return
                }
                try await Task.sleep(for: .milliseconds(250))
            }
        } catch {
            say("sample: \(error)")
        }
    }

    /// Writes a secret readable by its owner only.
    static func writeSecret(_ text: String, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw CommandFailure(message: "\(path): \(String(cString: strerror(errno)))", code: 73) }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
            throw CommandFailure(message: "\(path): cannot write", code: 73)
        }
    }
}


/// Writes a line to standard output at once (unbuffered), so a log file or a pipe shows it as it happens.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
