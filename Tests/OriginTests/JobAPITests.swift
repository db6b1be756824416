import Foundation
import Hummingbird
import HummingbirdTesting
import Jobs
import Logging
import NIOCore
import Origin
import Store
import Testing
import TestSupport
import Vault

/// The job API over a real redis-server and a real store.
final class APIFixture: @unchecked Sendable {
    static let key = "test-api-key-0123456789"
    let folder: URL
    let store: AssetStore
    let redis: RedisFixture
    let queue: JobQueue
    let keyring = Keyring(current: try! MasterKey(bytes: (0..<32).map { UInt8($0 &+ 9) }))
    let sources: String

    init(redis: RedisFixture, maxUploadBytes: Int, webhookAllow: [String]) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-api-\(UUID().uuidString)")
        store = try AssetStore(root: folder.path + "/store")
        sources = folder.path + "/sources"
        try FileManager.default.createDirectory(atPath: sources, withIntermediateDirectories: true)
        for name in ["in.mp4", "a.mp4"] { FileManager.default.createFile(atPath: sources + "/" + name, contents: Data("x".utf8)) }
        // Links inside the source folder that lead out of it, to a file and to a folder.
        try FileManager.default.createSymbolicLink(atPath: sources + "/escape.mp4", withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: sources + "/etc", withDestinationPath: "/etc")
        self.redis = redis
        queue = JobQueue(redis: redis.client(connections: 2), callbackPolicy: try OutboundAddressPolicy(allowing: webhookAllow))
        self.maxUploadBytes = maxUploadBytes
    }

    let maxUploadBytes: Int

    deinit { try? FileManager.default.removeItem(at: folder) }

    func application() -> OriginApplication {
        let logger = Logger(label: "test.api")
        let api = JobAPI(
            configuration: .init(apiKeys: [Self.key], sourceRoots: [sources], uploadsDirectory: store.root + "/uploads", maxUploadBytes: maxUploadBytes),
            queue: queue, keyring: keyring, logger: logger
        )
        let origin = OriginRoutes(store: store, unwrapKey: { _, _, _ in [] }, logger: logger)
        return originApplication(
            routes: origin, api: api, health: HealthRoutes(store: store, queue: queue, metrics: { Array("streamgate_up 1\n".utf8) }), logger: logger
        )
    }

    var auth: HTTPFields { [.authorization: "Bearer \(Self.key)"] }

    func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }
}

/// Runs `body` with an ``APIFixture`` on a redis-server of its own, stopped afterwards.
func withAPIFixture<T>(
    maxUploadBytes: Int = 1 << 20, webhookAllow: [String] = [], isolation: isolated (any Actor)? = #isolation,
    _ body: (APIFixture) async throws -> T
) async throws -> T {
    try await withRedis { redis in try await body(try APIFixture(redis: redis, maxUploadBytes: maxUploadBytes, webhookAllow: webhookAllow)) }
}

@Suite("job API")
struct JobAPITests {
    @Test("every /v1 route needs a valid API key")
    func authentication() async throws {
        try await withAPIFixture { fixture in
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                for (headers, reason) in [([:], "required"), ([.authorization: "Bearer wrong-key-000000000"], "unknown"), ([.authorization: "Basic abc"], "Bearer")] as [(HTTPFields, String)] {
                    try await client.execute(uri: "/v1/queue", method: .get, headers: headers) { response in
                        #expect(response.status == .unauthorized)
                        #expect((fixture.json(response.body)["error"] as? String)?.contains(reason) == true)
                        #expect(fixture.json(response.body)["field"] as? String == "Authorization")
                    }
                }
                try await client.execute(uri: "/v1/jobs", method: .post, headers: [:], body: ByteBuffer(string: "{}")) { response in
                    #expect(response.status == .unauthorized)
                }
            }
            #expect(try await fixture.queue.stats().depth == 0, "nothing enqueued without a key")
        }
    }

    @Test("create, read, cancel a job; idempotency; the queue's figures")
    func jobs() async throws {
        try await withAPIFixture { fixture in
            let source = fixture.sources + "/in.mp4"
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                let body = ByteBuffer(string: #"{"source":"\#(source)","profile":"fast","priority":"high","idempotency_key":"k1"}"#)
                let id = try await client.execute(uri: "/v1/jobs", method: .post, headers: fixture.auth, body: body) { response -> String in
                    #expect(response.status == .accepted)
                    let answer = fixture.json(response.body)
                    let id = try #require(answer["job_id"] as? String)
                    #expect(answer["status_url"] as? String == "/v1/jobs/\(id)")
                    #expect((answer["asset_id"] as? String)?.isEmpty == false)
                    return id
                }
                try await client.execute(uri: "/v1/jobs", method: .post, headers: fixture.auth, body: body) { response in
                    #expect(response.status == .ok, "the same idempotency key returns the first job")
                    #expect(fixture.json(response.body)["job_id"] as? String == id)
                }
                try await client.execute(uri: "/v1/jobs/\(id)", method: .get, headers: fixture.auth) { response in
                    #expect(response.status == .ok)
                    let record = fixture.json(response.body)
                    #expect(record["state"] as? String == "queued" && record["priority"] as? String == "high")
                }
                try await client.execute(uri: "/v1/queue", method: .get, headers: fixture.auth) { response in
                    let priorities = fixture.json(response.body)["priorities"] as? [String: [String: Any]]
                    #expect(priorities?["high"]?["lag"] as? Int == 1)
                }
                try await client.execute(uri: "/v1/jobs/\(id)", method: .delete, headers: fixture.auth) { response in
                    #expect(response.status == .accepted)
                    #expect(fixture.json(response.body)["status"] as? String == "cancelled")
                }
                try await client.execute(uri: "/v1/jobs/\(id)", method: .delete, headers: fixture.auth) { response in
                    #expect(response.status == .conflict)
                }
                try await client.execute(uri: "/v1/jobs/nosuchjob", method: .get, headers: fixture.auth) { response in
                    #expect(response.status == .notFound)
                }
            }
        }
    }

    @Test("a bad job description is a 400 naming the field", arguments: [
        ("not json", "body"),
        (#"["a"]"#, "body"),
        (#"{"source":"/x","bogus":1}"#, "bogus"),
        (#"{"profile":"fast"}"#, "source"),
        (#"{"source":"relative.mp4"}"#, "source"),
        (#"{"source":"/etc/passwd"}"#, "source"),
        (#"{"source":"SOURCES/../../etc/passwd"}"#, "source"),
        (#"{"source":"SOURCES/escape.mp4"}"#, "source"),
        (#"{"source":"SOURCES/etc/passwd"}"#, "source"),
        (#"{"source":"SOURCES/missing.mp4"}"#, "source"),
        (#"{"source":"SOURCES"}"#, "source"),
        (#"{"source":"SOURCES/a.mp4","max_attempts":"three"}"#, "max_attempts"),
        (#"{"source":"SOURCES/a.mp4","max_attempts":0}"#, "max_attempts"),
        (#"{"source":"SOURCES/a.mp4","priority":"urgent"}"#, "priority"),
        (#"{"source":"SOURCES/a.mp4","asset_id":"../x"}"#, "asset_id"),
        (#"{"source":"SOURCES/a.mp4","callback_url":"ftp://x"}"#, "callback_url"),
        (#"{"source":"SOURCES/a.mp4","callback_url":"http://user:pw@example.com/hook"}"#, "callback_url"),
        (#"{"source":"SOURCES/a.mp4","profile":"../../etc/x"}"#, "profile"),
    ])
    func badRequests(_ text: String, _ field: String) async throws {
        try await withAPIFixture { fixture in
            let body = ByteBuffer(string: text.replacingOccurrences(of: "SOURCES", with: fixture.sources))
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                try await client.execute(uri: "/v1/jobs", method: .post, headers: fixture.auth, body: body) { response in
                    #expect(response.status == .badRequest, "\(text)")
                    #expect(fixture.json(response.body)["field"] as? String == field, "\(text): \(String(buffer: response.body))")
                }
            }
            #expect(try await fixture.queue.stats().depth == 0)
        }
    }

    @Test("a callback to a literal non-public address is a 400 at enqueue, unless the server allows it", arguments: [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
        ("http://[::1]/hook", "::1 is the loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://2130706433/hook", "127.0.0.1 is a loopback address"),
        ("http://0x7f.1/hook", "127.0.0.1 is a loopback address"),
        ("http://[::ffff:192.168.0.1]/hook", "which is a private address"),
    ])
    func callbackNeverTargetsPrivateAddresses(_ url: String, _ reason: String) async throws {
        try await withAPIFixture { fixture in
            let body = ByteBuffer(string: #"{"source":"\#(fixture.sources)/a.mp4","callback_url":"\#(url)"}"#)
            let query = url.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                try await client.execute(uri: "/v1/jobs", method: .post, headers: fixture.auth, body: body) { response in
                    #expect(response.status == .badRequest)
                    let answer = fixture.json(response.body)
                    #expect(answer["field"] as? String == "callback_url")
                    let message = answer["error"] as? String ?? ""
                    #expect(message.hasPrefix("field 'callback_url'") && message.contains(reason) && message.contains("--webhook-allow"), "\(message)")
                }
                try await client.execute(uri: "/v1/uploads?callback_url=\(query)", method: .post, headers: fixture.auth, body: ByteBuffer(bytes: [1, 2, 3])) { response in
                    #expect(response.status == .badRequest)
                    #expect(fixture.json(response.body)["field"] as? String == "callback_url")
                }
            }
            #expect(try await fixture.queue.stats().depth == 0)
            let kept = (try? FileManager.default.contentsOfDirectory(atPath: fixture.store.root + "/uploads")) ?? []
            #expect(kept.isEmpty, "a refused upload is not stored: \(kept)")

            // The same literal is accepted by a server whose operator allowed it.
            try await withAPIFixture(webhookAllow: ["127.0.0.0/8", "::1", "169.254.169.254", "10.0.0.0/8", "192.168.0.0/16"]) { allowing in
                let allowedBody = ByteBuffer(string: #"{"source":"\#(allowing.sources)/a.mp4","callback_url":"\#(url)"}"#)
                try await withOrigin(allowing.application()) { origin in
                    let client = origin.client
                    try await client.execute(uri: "/v1/jobs", method: .post, headers: allowing.auth, body: allowedBody) { response in
                        #expect(response.status == .accepted, "\(String(buffer: response.body))")
                    }
                }
            }
        }
    }

    @Test("an upload is sealed as it arrives and a job is enqueued for it")
    func upload() async throws {
        try await withAPIFixture { fixture in
            let plaintext = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                try await client.execute(
                    uri: "/v1/uploads?profile=fast&asset_id=uploaded", method: .post, headers: fixture.auth, body: ByteBuffer(bytes: plaintext)
                ) { response in
                    #expect(response.status == .accepted, "\(String(buffer: response.body))")
                    let answer = fixture.json(response.body)
                    #expect(answer["bytes"] as? Int == plaintext.count)
                    #expect(answer["asset_id"] as? String == "uploaded")
                    let jobID = try #require(answer["job_id"] as? String)
                    let uploadID = try #require(answer["upload_id"] as? String)
                    let record = try #require(try await fixture.queue.job(jobID))
                    #expect(record.spec?.sourceEncrypted == true)
                    let path = try #require(record.spec?.source)
                    #expect(path == fixture.store.root + "/uploads/\(uploadID).sealed")
                    #expect(SealedSource.isSealed(path: path))
                    let stored = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
                    #expect(stored.count > plaintext.count, "sealed: header and tags")
                    let window = Array(plaintext[1000..<1064])
                    #expect(!stored.indices.dropLast(64).contains { stored[$0] == window[0] && Array(stored[$0..<($0 + 64)]) == window },
                            "no plaintext on disk")
                    let reader = try SealedSourceReader(path: path, keyring: fixture.keyring)
                    var back = [UInt8](repeating: 0, count: plaintext.count)
                    let read = try back.withUnsafeMutableBytes { try reader.read(at: 0, into: $0) }
                    #expect(read == plaintext.count && back == plaintext)
                }
                try await client.execute(uri: "/v1/uploads?bogus=1", method: .post, headers: fixture.auth, body: ByteBuffer(bytes: [1])) { response in
                    #expect(response.status == .badRequest)
                    #expect(fixture.json(response.body)["field"] as? String == "bogus")
                }
            }
        }
    }

    @Test("an upload whose job is cancelled before any worker took it leaves nothing in the store's uploads")
    func cancelledUploadLeavesNothing() async throws {
        try await withAPIFixture { fixture in
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                let jobID = try await client.execute(
                    uri: "/v1/uploads?profile=fast", method: .post, headers: fixture.auth, body: ByteBuffer(bytes: [UInt8](repeating: 7, count: 5000))
                ) { response in try #require(fixture.json(response.body)["job_id"] as? String) }
                let path = try #require(try await fixture.queue.job(jobID)?.spec?.source)
                #expect(FileManager.default.fileExists(atPath: path))
                try await client.execute(uri: "/v1/jobs/\(jobID)", method: .delete, headers: fixture.auth) { response in
                    #expect(response.status == .accepted)
                }
                #expect(!FileManager.default.fileExists(atPath: path), "the sealed upload of a cancelled job was kept")
            }
        }
    }

    @Test("an upload over the limit is a 413 and nothing is kept")
    func uploadTooLarge() async throws {
        try await withAPIFixture(maxUploadBytes: 10_000) { fixture in
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                try await client.execute(uri: "/v1/uploads", method: .post, headers: fixture.auth, body: ByteBuffer(bytes: [UInt8](repeating: 1, count: 20_000))) { response in
                    #expect(response.status == .contentTooLarge)
                    #expect(fixture.json(response.body)["field"] as? String == "body")
                }
            }
            let kept = (try? FileManager.default.contentsOfDirectory(atPath: fixture.store.root + "/uploads")) ?? []
            #expect(kept.isEmpty, "\(kept)")
            #expect(try await fixture.queue.stats().depth == 0)
        }
    }

    @Test("health, readiness and metrics")
    func health() async throws {
        try await withAPIFixture { fixture in
            try await withOrigin(fixture.application()) { origin in
                let client = origin.client
                try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .ok, "\(String(buffer: response.body))")
                }
                try await client.execute(uri: "/metrics", method: .get) { response in
                    #expect(String(buffer: response.body).contains("streamgate_up 1"))
                }
                fixture.redis.stop()
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(String(buffer: response.body).contains("redis"))
                }
            }
        }
    }
}
