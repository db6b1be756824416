import ArgumentParser
import Foundation
import Hummingbird
import Jobs
import Logging
import Origin
import Store
import Vault

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve published assets (playlists, encrypted segments, keys) and, with --redis, the job API.",
        discussion: "API keys: --api-key-file FILE (one per line) or STREAMGATE_API_KEYS (comma-separated)."
    )

    @Option(help: "The store folder to serve.")
    var store: String

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port: Int = 8080

    @Option(help: "A file holding the master key (base64 or 32 raw bytes); else STREAMGATE_MASTER_KEY.")
    var masterKeyFile: String?

    @Option(help: "Redis URL: enables the job API (/v1/…); redis://host:port/db or unix:///path.")
    var redis: String?

    @Option(help: "The hash tag every queue key shares.")
    var prefix: String = "sg"

    @Option(help: "A file with the accepted API keys, one per line.")
    var apiKeyFile: String?

    @Option(help: "A folder whose files jobs may name as their source (repeatable); uploads are always allowed.")
    var sourceRoot: [String] = []

    @Option(help: "The largest upload accepted, bytes.")
    var maxUploadBytes: Int = 8 << 30

    @Option(help: "The in-process cache (L1) budget for playlists and segments, bytes; 0 turns it off.")
    var l1Bytes: Int = 256 << 20

    func run() async throws {
        let server = try ServerSetup(
            store: store, masterKeyFile: masterKeyFile, redis: redis, prefix: prefix, apiKeyFile: apiKeyFile,
            sourceRoots: sourceRoot, maxUploadBytes: maxUploadBytes, cacheBytes: l1Bytes
        )
        let metrics = server.queue.map { queue in Task { await QueueMetrics.run(queue: queue) } }
        defer { metrics?.cancel() }
        try await server.application(host: host, port: port).runService()
    }
}

/// Everything `serve` (and `dev`) puts together: the store, the keyring, the queue and the routes.
struct ServerSetup {
    let assets: AssetStore
    let keyring: Keyring
    let queue: JobQueue?
    let api: JobAPI?
    let logger: Logger
    let cacheBytes: Int

    init(
        store: String, masterKeyFile: String?, redis: String?, prefix: String, apiKeyFile: String?,
        sourceRoots: [String], maxUploadBytes: Int, cacheBytes: Int = 256 << 20, apiKeys extraKeys: [String] = []
    ) throws {
        self.cacheBytes = cacheBytes
        var logger = Logger(label: "streamgate.serve")
        logger.logLevel = .info
        self.logger = logger
        do {
            keyring = try Keyring.load(keyFile: masterKeyFile)
            assets = try AssetStore(readingFrom: store)
        } catch {
            throw CommandFailure(error)
        }
        guard let redis else {
            queue = nil
            api = nil
            return
        }
        let keys = try Self.apiKeys(file: apiKeyFile) + extraKeys
        guard !keys.isEmpty else {
            throw CommandFailure(message: "the job API needs API keys: --api-key-file FILE or STREAMGATE_API_KEYS", code: 78)
        }
        let url: RedisURL
        do { url = try RedisURL(redis) } catch { throw CommandFailure(message: "\(error)", code: 78) }
        let queue = JobQueue(redis: RedisClient(url: url, connections: 8), keys: QueueKeys(prefix: prefix))
        self.queue = queue
        api = JobAPI(
            configuration: .init(
                apiKeys: keys, sourceRoots: sourceRoots.map(StorePath.absolute),
                uploadsDirectory: assets.root + "/uploads", maxUploadBytes: maxUploadBytes
            ),
            queue: queue, keyring: keyring, logger: logger
        )
    }

    static func apiKeys(file: String?) throws -> [String] {
        var keys = (ProcessInfo.processInfo.environment["STREAMGATE_API_KEYS"] ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CommandFailure(message: "\(file): cannot read the API key file", code: 78)
            }
            keys += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        }
        let usable = keys.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        if let short = usable.first(where: { $0.utf8.count < 16 }) {
            throw CommandFailure(message: "an API key of \(short.utf8.count) characters is too short (16 at least)", code: 78)
        }
        return usable
    }

    func application(host: String, port: Int) -> some ApplicationProtocol {
        let keyring = self.keyring
        let origin = OriginRoutes(
            store: assets,
            unwrapKey: { asset, keyID, stored in
                let wrapped = try WrappedKey(serialized: stored)
                guard wrapped.keyID == keyID else {
                    throw VaultError("keys/\(keyID).key of \(asset) holds key \(wrapped.keyID)")
                }
                return try keyring.unwrap(wrapped, context: asset.rawValue).bytes
            },
            logger: logger, cacheBytes: cacheBytes
        )
        return buildServerApplication(
            configuration: OriginConfiguration(host: host, port: port), origin: origin, api: api,
            health: HealthRoutes(store: assets, queue: queue, metrics: Telemetry.render), logger: logger
        )
    }
}
