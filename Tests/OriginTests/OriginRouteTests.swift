import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import Origin
import Store
import TestSupport
import Vault

/// A store with one published asset, `clip`: playlists, one encrypted segment and a wrapped key.
final class PublishedFixture: @unchecked Sendable {
    let folder: URL
    let store: AssetStore
    let keyring: Keyring
    let contentKey: ContentKey
    let segment: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    init(tamperKey: Bool = false) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-origin-\(UUID().uuidString)")
        store = try AssetStore(root: folder.path)
        keyring = Keyring(current: try MasterKey(bytes: (0..<32).map { UInt8($0 &* 3) }))
        contentKey = try ContentKey.generate()
        let staging = try store.stage(try AssetID("clip"))
        try staging.write("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n360p/index.m3u8\n", to: "master.m3u8")
        try staging.write("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n00000.ts\n#EXT-X-ENDLIST\n", to: "360p/index.m3u8")
        try staging.write(segment, to: "360p/00000.ts")
        var wrapped = try keyring.wrap(contentKey, context: "clip").serialized()
        if tamperKey {
            // Flip one byte inside the base64 ciphertext field's value.
            let text = String(decoding: wrapped, as: UTF8.self)
            let range = try #require(text.range(of: "\"ciphertext\":\""))
            var bytes = Array(text.utf8)
            let index = text.utf8.distance(from: text.startIndex, to: range.upperBound) + 2
            bytes[index] = bytes[index] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            wrapped = bytes
        }
        try staging.write(wrapped, to: "keys/\(contentKey.id).key")
        _ = try staging.publish(requiredFiles: ["master.m3u8"])
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// The routes, kept so a test can read what they did (cache hits, store reads).
    lazy var routes: OriginRoutes = {
        let keyring = self.keyring
        return OriginRoutes(
            store: store,
            unwrapKey: { asset, keyID, stored in
                let wrapped = try WrappedKey(serialized: stored)
                guard wrapped.keyID == keyID else { throw VaultError("key id mismatch") }
                return try keyring.unwrap(wrapped, context: asset.rawValue).bytes
            },
            logger: Logger(label: "test.origin"), cacheBytes: 16 << 20
        )
    }()

    func application() -> OriginApplication {
        originApplication(routes: routes, health: HealthRoutes(store: store, queue: nil, metrics: nil), logger: Logger(label: "test.origin"))
    }
}

@Suite("origin routes")
struct OriginRouteTests {
    @Test("playlists and segments: status, type, length, cache headers")
    func files() async throws {
        let fixture = try PublishedFixture()
        try await withOrigin(fixture.application()) { origin in
            let client = origin.client
            try await client.execute(uri: "/v/clip/master.m3u8", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/vnd.apple.mpegurl")
                #expect(String(buffer: response.body).hasPrefix("#EXTM3U"))
                #expect(response.headers[.eTag]?.hasPrefix("\"v") == true)
            }
            try await client.execute(uri: "/v/clip/360p/index.m3u8", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("00000.ts"))
            }
            try await client.execute(uri: "/v/clip/360p/00000.ts", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "video/mp2t")
                #expect(response.headers[.contentLength] == String(fixture.segment.count))
                #expect(Array(buffer: response.body) == fixture.segment, "served exactly as stored")
                #expect(response.headers[.cacheControl]?.contains("public") == true)
            }
        }
    }

    @Test("HEAD answers the headers of GET without a body")
    func head() async throws {
        let fixture = try PublishedFixture()
        try await withOrigin(fixture.application()) { origin in
            let client = origin.client
            try await client.execute(uri: "/v/clip/360p/00000.ts", method: .head) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentLength] == String(fixture.segment.count))
                #expect(response.body.readableBytes == 0)
            }
            try await client.execute(uri: "/v/clip/keys/\(fixture.contentKey.id)", method: .head) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentLength] == "16")
                #expect(response.body.readableBytes == 0)
            }
        }
    }

    @Test("the key is served unwrapped and never cached")
    func key() async throws {
        let fixture = try PublishedFixture()
        try await withOrigin(fixture.application()) { origin in
            let client = origin.client
            try await client.execute(uri: "/v/clip/keys/\(fixture.contentKey.id)", method: .get) { response in
                #expect(response.status == .ok)
                #expect(Array(buffer: response.body) == fixture.contentKey.bytes)
                #expect(response.headers[.cacheControl] == "no-store, private")
            }
            let unknown = String(repeating: "0", count: 32)
            try await client.execute(uri: "/v/clip/keys/\(unknown)", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("a key that does not unwrap is a 500 that leaks nothing")
    func tamperedKey() async throws {
        let fixture = try PublishedFixture(tamperKey: true)
        try await withOrigin(fixture.application()) { origin in
            let client = origin.client
            try await client.execute(uri: "/v/clip/keys/\(fixture.contentKey.id)", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(response.headers[.cacheControl] == "no-store")
                #expect(!String(buffer: response.body).contains("ciphertext"))
                #expect(response.body.readableBytes < 100)
            }
        }
    }

    @Test("names outside the store's grammar are not found, whatever they point at", arguments: [
        "/v/clip/../../etc/passwd",
        "/v/clip/%2e%2e/%2e%2e/etc/passwd",
        "/v/clip/360p/..%2f..%2fmaster.m3u8",
        "/v/../assets/clip/master.m3u8",
        "/v/clip/360p/%00.ts",
        "/v/clip/360p/.hidden.ts",
        "/v/clip/keys/../master.m3u8",
        "/v/clip/keys/ABCDEF0123456789ABCDEF0123456789",
        "/v/clip/360p/00000.key",
        "/v/clip/asset.json",
        "/v/nothere/master.m3u8",
        "/v/clip/360p/" + String(repeating: "a", count: 300) + ".ts",
        "/v/-clip/master.m3u8",
        "/v/clip/360p/00001.ts",
    ])
    func traversal(_ uri: String) async throws {
        let fixture = try PublishedFixture()
        try await withOrigin(fixture.application()) { origin in
            let client = origin.client
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .notFound || response.status == .badRequest, "\(uri): \(response.status)")
                #expect(response.body.readableBytes < 64, "\(uri) served a body")
            }
        }
    }

    @Test("a second identical request is served from L1; keys never are")
    func secondRequestFromL1() async throws {
        let fixture = try PublishedFixture()
        try await withOrigin(fixture.application()) { origin in
            let client = origin.client
            for _ in 0..<2 {
                try await client.execute(uri: "/v/clip/360p/00000.ts", method: .get) { response in
                    #expect(response.status == .ok && Array(buffer: response.body) == fixture.segment)
                }
            }
            for _ in 0..<2 {
                try await client.execute(uri: "/v/clip/keys/\(fixture.contentKey.id)", method: .get) { #expect($0.status == .ok) }
            }
            try await client.execute(uri: "/v/clip/360p/00000.ts", method: .head) { response in
                #expect(response.headers[.contentLength] == String(fixture.segment.count) && response.body.readableBytes == 0)
            }
        }
        let statistics = fixture.routes.statistics
        #expect(statistics.storeReads == 1 && statistics.l1Hits == 2, "\(statistics)")
        #expect(fixture.routes.cache.statistics.entries == 1, "only the segment is cached, not the key")
    }

    @Test("100 concurrent cold requests for one segment cause one store read")
    func singleFlight() async throws {
        let fixture = try PublishedFixture()
        try await withOrigin(fixture.application()) { origin in
            let client = origin.client
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<100 {
                    group.addTask {
                        try await client.execute(uri: "/v/clip/360p/00000.ts", method: .get) { response in
                            response.status == .ok && Array(buffer: response.body) == fixture.segment
                        }
                    }
                }
                var all = true
                for try await ok in group { all = all && ok }
                #expect(all, "every response is the segment")
            }
        }
        let statistics = fixture.routes.statistics
        #expect(statistics.storeReads == 1, "\(statistics)")
        #expect(statistics.l1Hits + statistics.coalesced == 99, "\(statistics)")
    }
}
