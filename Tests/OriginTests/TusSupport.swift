import Foundation
import HTTPTypes
import Hummingbird
import Jobs
import Logging
import NIOCore
import Origin
import Redis
import S3
import Store
import Testing
import TestSupport
import Vault

/// Origins answering tus over a real redis-server and a real store (a folder, or a SeaweedFS
/// bucket): two of them share both, as two replicas would.
final class TusFixture: @unchecked Sendable {
    static let key = "test-api-key-0123456789"
    let folder: String
    let redis: RedisFixture
    let queue: JobQueue
    let store: any SealedUploadStorage
    let s3: S3ServerProcess?
    let keyring = Keyring(current: try! MasterKey(bytes: (0..<32).map { UInt8($0 &+ 41) }))
    let maxUploadBytes: Int
    let uploadLifetime: Duration

    init(redis: RedisFixture, s3: S3ServerProcess?, maxUploadBytes: Int = 64 << 20, uploadLifetime: Duration = .seconds(3600)) throws {
        folder = NSTemporaryDirectory() + "sg-tus-" + UUID().uuidString
        self.redis = redis
        self.s3 = s3
        queue = JobQueue(redis: redis.client(connections: 4))
        if let s3 {
            store = BucketStore(client: s3.client(), bucket: s3.bucket, prefix: "sg/")
        } else {
            store = try AssetStore(root: folder + "/store")
        }
        self.maxUploadBytes = maxUploadBytes
        self.uploadLifetime = uploadLifetime
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    var uploads: any SealedUploadTarget { store.sealedUploads }

    func api() -> JobAPI {
        JobAPI(
            configuration: .init(apiKeys: [Self.key], uploadsDirectory: folder + "/unused", maxUploadBytes: maxUploadBytes, uploadLifetime: uploadLifetime),
            queue: queue, keyring: keyring, logger: Logger(label: "test.tus"), store: store, uploads: uploads
        )
    }

    /// An origin of its own: its own JobAPI (nothing shared in memory with another).
    func application(_ api: JobAPI? = nil) -> OriginApplication {
        let logger = Logger(label: "test.tus")
        let origin = OriginRoutes(store: store, unwrapKey: { _, _, _ in [] }, logger: logger)
        return originApplication(routes: origin, api: api ?? self.api(), health: HealthRoutes(store: store, queue: queue, metrics: { [] }), logger: logger)
    }

    var auth: HTTPFields { [.authorization: "Bearer \(Self.key)", Self.tusResumable: "1.0.0"] }

    static let tusResumable = HTTPField.Name("Tus-Resumable")!
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    static let uploadLength = HTTPField.Name("Upload-Length")!
    static let uploadMetadata = HTTPField.Name("Upload-Metadata")!
    static let uploadExpires = HTTPField.Name("Upload-Expires")!
    static let uploadChecksum = HTTPField.Name("Upload-Checksum")!
    static let jobID = HTTPField.Name("StreamGate-Job-ID")!

    func creation(length: Int, metadata: [String: String] = ["profile": "fast"]) -> HTTPFields {
        var fields = auth
        fields[Self.uploadLength] = String(length)
        fields[Self.uploadMetadata] = metadata.sorted { $0.key < $1.key }.map { "\($0.key) \(Data($0.value.utf8).base64EncodedString())" }.joined(separator: ",")
        return fields
    }

    func patch(offset: Int) -> HTTPFields {
        var fields = auth
        fields[Self.uploadOffset] = String(offset)
        fields[.contentType] = "application/offset+octet-stream"
        return fields
    }

    /// Creates an upload; its path (`/v1/uploads/<id>`).
    func create(_ client: OriginClient, length: Int, metadata: [String: String] = ["profile": "fast"]) async throws -> String {
        try await client.execute(uri: "/v1/uploads", method: .post, headers: creation(length: length, metadata: metadata)) { response in
            #expect(response.status == .created, "\(String(buffer: response.body))")
            #expect(response.headers[Self.uploadExpires] != nil)
            return try #require(response.headers[.location])
        }
    }

    /// PATCHes `bytes` at `offset`: the status, the new offset and the job id header.
    @discardableResult
    func send(_ client: OriginClient, _ location: String, offset: Int, _ bytes: ArraySlice<UInt8>) async throws -> (HTTPResponse.Status, Int?, String?) {
        try await client.execute(uri: location, method: .patch, headers: patch(offset: offset), body: ByteBuffer(bytes: bytes)) { response in
            (response.status, response.headers[Self.uploadOffset].flatMap { Int($0) }, response.headers[Self.jobID])
        }
    }

    func head(_ client: OriginClient, _ location: String) async throws -> (HTTPResponse.Status, Int?, String?) {
        try await client.execute(uri: location, method: .head, headers: auth) { response in
            (response.status, response.headers[Self.uploadOffset].flatMap { Int($0) }, response.headers[Self.jobID])
        }
    }

    /// The finished sealed upload's plaintext, read back through ``SealedSourceReader`` (a bucket's
    /// object is downloaded to a file first).
    func plaintext(ofSource source: String) async throws -> [UInt8] {
        var path = source
        if source.hasPrefix("s3://"), let s3 {
            let key = String(source.dropFirst("s3://\(s3.bucket)/".count))
            let bytes = try await s3.client().getObjectBytes(bucket: s3.bucket, key: key, maxBytes: 256 << 20)
            path = folder + "/downloaded.sealed"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(bytes.readableBytesView).write(to: URL(fileURLWithPath: path))
        }
        let reader = try SealedSourceReader(path: path, keyring: keyring)
        var back = [UInt8](repeating: 0, count: reader.size)
        let read = try back.withUnsafeMutableBytes { try reader.read(at: 0, into: $0) }
        #expect(read == reader.size)
        return back
    }

    /// The keys under the store's uploads (bucket) or the names in its uploads folder.
    func storedUploadNames() async throws -> [String] {
        if let s3 {
            return try await s3.client().listAllObjects(bucket: s3.bucket, prefix: "sg/uploads/").objects().map(\.key)
        }
        return (try? FileManager.default.contentsOfDirectory(atPath: store.uploads)) ?? []
    }

    /// How many jobs the queue holds.
    func jobCount() async throws -> Int {
        Int(try await queue.redis.send(["ZCARD", queue.keys.index]).int ?? -1)
    }
}

func withTusFixture<T>(
    bucket: Bool = false, maxUploadBytes: Int = 64 << 20, uploadLifetime: Duration = .seconds(3600),
    isolation: isolated (any Actor)? = #isolation, _ body: (TusFixture) async throws -> T
) async throws -> T {
    try await withRedis { redis in
        if bucket {
            return try await withS3 { s3 in
                try await body(try TusFixture(redis: redis, s3: s3, maxUploadBytes: maxUploadBytes, uploadLifetime: uploadLifetime))
            }
        }
        return try await body(try TusFixture(redis: redis, s3: nil, maxUploadBytes: maxUploadBytes, uploadLifetime: uploadLifetime))
    }
}

/// Deterministic test bytes: no run repeats, so a misplaced chunk cannot read back right.
func tusPlaintext(_ count: Int, seed: UInt32 = 7) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 1_664_525 &+ 1_013_904_223
        return UInt8(truncatingIfNeeded: state >> 24)
    }
}

/// A raw HTTP/1.1 connection to 127.0.0.1:`port` that sends a request head and part of its body,
/// then is dropped (or kept open until ``close()``): what a client on a dying network does.
final class TusRawConnection: @unchecked Sendable {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard descriptor >= 0, connected == 0 else {
            close(descriptor)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    /// Sends a PATCH head announcing `announced` bytes, then `bytes` of them.
    func patch(_ location: String, offset: Int, announced: Int, _ bytes: ArraySlice<UInt8>) throws {
        let head = "PATCH \(location) HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(TusFixture.key)\r\nTus-Resumable: 1.0.0\r\n"
            + "Upload-Offset: \(offset)\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: \(announced)\r\n\r\n"
        try write(Array(head.utf8)[...])
        try write(bytes)
    }

    func write(_ bytes: ArraySlice<UInt8>) throws {
        var sent = 0
        try bytes.withUnsafeBytes { buffer in
            while sent < buffer.count {
                let count = Glibc.send(descriptor, buffer.baseAddress! + sent, buffer.count - sent, Int32(MSG_NOSIGNAL))
                guard count > 0 else { throw POSIXError(.EPIPE) }
                sent += count
            }
        }
    }

    /// Drops the connection (closes it mid-request): the body ends before its Content-Length.
    func drop() {
        close(descriptor)
    }
}
