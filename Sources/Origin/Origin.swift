import Foundation
import Hummingbird
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Store

/// Where the origin listens.
public struct OriginConfiguration: Sendable {
    public var host: String
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// Turns a stored, wrapped content key into the 16 key bytes: `(asset, key id, stored bytes)`.
/// It throws when the stored key does not unwrap (wrong master key, tampering).
public typealias KeyUnwrapper = @Sendable (AssetID, String, [UInt8]) throws -> [UInt8]

/// The origin application: ``OriginRoutes`` on an HTTP/1.1 server.
public func buildOriginApplication(
    configuration: OriginConfiguration,
    store: AssetStore,
    unwrapKey: @escaping KeyUnwrapper,
    logger: Logger
) -> some ApplicationProtocol {
    buildServerApplication(
        configuration: configuration, origin: OriginRoutes(store: store, unwrapKey: unwrapKey, logger: logger),
        api: nil, health: HealthRoutes(store: store, queue: nil, metrics: nil), logger: logger
    )
}

/// The whole HTTP server: playback, and when a queue is configured the job API, plus health and
/// metrics.
public func buildServerApplication(
    configuration: OriginConfiguration,
    origin: OriginRoutes,
    api: JobAPI?,
    health: HealthRoutes,
    logger: Logger
) -> some ApplicationProtocol {
    let router = Router()
    origin.register(on: router)
    api?.register(on: router)
    health.register(on: router)
    return Application(
        router: router,
        configuration: ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: "StreamGate"
        ),
        logger: logger
    )
}

/// The playback routes, served straight from the store's published versions:
///
/// - `GET|HEAD /v/{asset}/master.m3u8`
/// - `GET|HEAD /v/{asset}/{rendition}/index.m3u8` and `/v/{asset}/{rendition}/{segment}`
/// - `GET|HEAD /v/{asset}/keys/{key_id}`: the content key, unwrapped; never cached by anyone.
///
/// Every name is checked against the store's grammar before any file is touched, so `..`, encoded
/// dots, absolute paths and NUL bytes are simply not found. Segments are served exactly as stored:
/// encrypted.
public struct OriginRoutes: Sendable {
    let store: AssetStore
    let unwrapKey: KeyUnwrapper
    let logger: Logger
    let threadPool: NIOThreadPool
    /// L1: playlists and segments of published versions (immutable, so never stale). Keys are
    /// never cached.
    public let cache: ByteCache<ByteBuffer>
    /// One store read per object however many requests miss it at once.
    let flights = SingleFlight<ByteBuffer>()
    let counters = NIOLockedValueBox(Counters())

    /// What the origin did, for tests and `/metrics`.
    public struct Counters: Sendable, Equatable {
        public var l1Hits = 0
        public var storeReads = 0
        public var coalesced = 0
    }

    /// - Parameter cacheBytes: the L1 budget (0 turns it off).
    public init(
        store: AssetStore, unwrapKey: @escaping KeyUnwrapper, logger: Logger, threadPool: NIOThreadPool = .singleton,
        cacheBytes: Int = 256 << 20
    ) {
        self.store = store
        self.unwrapKey = unwrapKey
        self.logger = logger
        self.threadPool = threadPool
        // Segments run to a few MB; about 500 kB an object sizes the frequency sketch.
        cache = ByteCache(capacity: cacheBytes, expectedEntries: max(64, cacheBytes / 500_000))
    }

    public var statistics: Counters {
        var counts = counters.withLockedValue { $0 }
        counts.coalesced = flights.coalesced
        return counts
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        for method in [HTTPRequest.Method.get, .head] {
            router.on("/v/{asset}/master.m3u8", method: method) { request, context in
                try await self.serveFile(request: request, asset: context.parameters.get("asset"), relative: "master.m3u8")
            }
            router.on("/v/{asset}/{folder}/{name}", method: method) { request, context in
                let folder = context.parameters.get("folder") ?? ""
                let name = context.parameters.get("name") ?? ""
                if folder == "keys" {
                    return try await self.serveKey(request: request, asset: context.parameters.get("asset"), keyID: name)
                }
                return try await self.serveFile(request: request, asset: context.parameters.get("asset"), relative: "\(folder)/\(name)")
            }
        }
    }

    // MARK: - Files

    private func serveFile(request: Request, asset rawAsset: String?, relative: String) async throws -> Response {
        guard let rawAsset, let asset = try? AssetID(rawAsset), StorePath.isSafeRelative(relative),
              let type = MediaType.of(relative)
        else { return Self.notFound }
        guard let version = try await published(asset) else { return Self.notFound }
        guard let path = version.path(of: relative) else { return Self.notFound }
        let isHead = request.method == .head
        let key = "\(asset.rawValue)/\(version.version)/\(relative)"
        let body: ByteBuffer?
        let size: Int
        if let cached = cache.get(key) {
            counters.withLockedValue { $0.l1Hits += 1 }
            Counter(label: "streamgate_origin_cache_total", dimensions: [("level", "l1"), ("result", "hit")]).increment()
            body = cached
            size = cached.readableBytes
        } else if isHead {
            // A HEAD needs the size only: no read, nothing cached.
            guard let stored = try await read(path, body: false) else { return Self.notFound }
            body = nil
            size = stored.size
        } else {
            Counter(label: "streamgate_origin_cache_total", dimensions: [("level", "l1"), ("result", "miss")]).increment()
            let loaded: ByteBuffer
            do {
                loaded = try await flights.value(for: key) {
                    guard let stored = try await self.read(path, body: true), let bytes = stored.body else { throw StoredFile.Missing() }
                    self.cache.put(key, bytes, cost: bytes.readableBytes)
                    return bytes
                }
            } catch is StoredFile.Missing {
                return Self.notFound
            }
            body = loaded
            size = loaded.readableBytes
        }
        Counter(label: "streamgate_origin_bytes_total").increment(by: isHead ? 0 : size)
        var headers = HTTPFields()
        headers[.contentType] = type.contentType
        headers[.contentLength] = String(size)
        // A published version never changes, so (version, name) identifies the bytes.
        headers[.eTag] = "\"\(version.version)/\(relative)\""
        headers[.cacheControl] = type.cacheControl
        headers[.acceptRanges] = "none"
        return Response(status: .ok, headers: headers, body: isHead ? .init() : body.map { .init(byteBuffer: $0) } ?? .init())
    }

    /// Reads a file of a published version on the thread pool; nil when it does not exist.
    private func read(_ path: String, body: Bool) async throws -> StoredFile? {
        do {
            let stored = try await threadPool.runIfActive { try StoredFile(path: path, readBody: body) }
            if body {
                counters.withLockedValue { $0.storeReads += 1 }
                Counter(label: "streamgate_origin_store_reads_total").increment()
            }
            return stored
        } catch is StoredFile.Missing {
            return nil
        }
    }

    // MARK: - Keys

    private func serveKey(request: Request, asset rawAsset: String?, keyID: String) async throws -> Response {
        guard let rawAsset, let asset = try? AssetID(rawAsset), Self.isKeyID(keyID) else { return Self.notFound }
        guard let version = try await published(asset), let path = version.path(of: "keys/\(keyID).key") else {
            return Self.notFound
        }
        let stored: StoredFile
        do {
            stored = try await threadPool.runIfActive { try StoredFile(path: path, readBody: true) }
        } catch is StoredFile.Missing {
            return Self.notFound
        }
        let key: [UInt8]
        do {
            key = try unwrapKey(asset, keyID, Array(buffer: stored.body ?? ByteBuffer()))
        } catch {
            // The reason names the key id and the master key id, never key bytes.
            logger.error("key unwrap failed", metadata: ["asset": "\(asset)", "key": "\(keyID)", "error": "\(error)"])
            return Response(status: .internalServerError, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(string: "key \(keyID) is not available\n")))
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.contentLength] = String(key.count)
        // Keys must never sit in a shared cache or on a player's disk.
        headers[.cacheControl] = "no-store, private"
        let body: ResponseBody = request.method == .head ? .init() : .init(byteBuffer: ByteBuffer(bytes: key))
        return Response(status: .ok, headers: headers, body: body)
    }

    static func isKeyID(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    // MARK: - Helpers

    private func published(_ asset: AssetID) async throws -> PublishedVersion? {
        try await threadPool.runIfActive { try store.publishedVersion(of: asset) }
    }

    static var notFound: Response {
        Response(
            status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "not found\n"))
        )
    }
}

/// What the origin serves, by file name.
enum MediaType {
    case playlist, transportStream

    static func of(_ relative: String) -> MediaType? {
        if relative.hasSuffix(".m3u8") { return .playlist }
        if relative.hasSuffix(".ts") { return .transportStream }
        return nil
    }

    var contentType: String {
        switch self {
        case .playlist: "application/vnd.apple.mpegurl"
        case .transportStream: "video/mp2t"
        }
    }

    /// Short-lived for now: a republished asset reuses these URLs. Versioned, immutable URLs come
    /// with the caching origin.
    var cacheControl: String {
        switch self {
        case .playlist: "public, max-age=10"
        case .transportStream: "public, max-age=60"
        }
    }
}

/// A file read whole from a published version, on a thread-pool thread.
struct StoredFile: Sendable {
    struct Missing: Error {}

    let size: Int
    let body: ByteBuffer?

    init(path: String, readBody: Bool) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT || errno == ENOTDIR || errno == EISDIR { throw Missing() }
            throw StoreError("\(path): cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw Missing() }
        let size = Int(info.st_size)
        self.size = size
        guard readBody else {
            body = nil
            return
        }
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { pointer in
            var total = 0
            while total < size {
                let count = Glibc.read(descriptor, pointer.baseAddress! + total, size - total)
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
                total += count
            }
            return total
        }
        guard read == size else { throw StoreError("\(path): short read (\(read) of \(size) bytes)") }
        body = buffer
    }
}
