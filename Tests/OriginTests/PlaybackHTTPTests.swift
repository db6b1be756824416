import Foundation
import Hummingbird
import NIOCore
import HummingbirdTesting
import Logging
import Testing
@testable import Origin
import Store
import TestSupport
import Vault
import Processes

/// A published asset `film` with one rendition of `count` segments, each holding its own bytes.
final class FilmFixture: @unchecked Sendable {
    let folder: URL
    let store: AssetStore
    let keyring = Keyring(current: try! MasterKey(bytes: (0..<32).map { UInt8($0 &* 5) }))
    let count: Int
    let segmentBytes: Int
    private(set) var contentKey: ContentKey
    private(set) var version: PublishedVersion
    let routes: OriginRoutes

    init(count: Int = 8, segmentBytes: Int = 20_000, options: OriginOptions = OriginOptions(l1Bytes: 64 << 20)) throws {
        self.count = count
        self.segmentBytes = segmentBytes
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-playback-\(UUID().uuidString)")
        store = try AssetStore(root: folder.path)
        contentKey = try ContentKey.generate()
        version = try Self.publish(store: store, keyring: keyring, key: contentKey, count: count, segmentBytes: segmentBytes, generation: 0)
        let keyring = self.keyring
        routes = OriginRoutes(
            store: store,
            unwrapKey: { asset, _, stored in try keyring.unwrap(try WrappedKey(serialized: stored), context: asset.rawValue).bytes },
            logger: Logger(label: "test.playback"), options: options
        )
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// The bytes of segment `index` in publish `generation`.
    func segment(_ index: Int, generation: Int = 0) -> [UInt8] {
        Self.segment(index, generation: generation, size: segmentBytes)
    }

    static func segment(_ index: Int, generation: Int, size: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index &* 13 &+ generation &* 101) }
    }

    static func name(_ index: Int) -> String {
        let digits = String(index)
        return String(repeating: "0", count: 5 - digits.count) + digits + ".ts"
    }

    /// Publishes a new version whose segments carry `generation`'s bytes.
    @discardableResult
    func republish(generation: Int) throws -> PublishedVersion {
        // Version names have one-second resolution plus a random suffix; they still differ.
        contentKey = try ContentKey.generate()
        version = try Self.publish(store: store, keyring: keyring, key: contentKey, count: count, segmentBytes: segmentBytes, generation: generation)
        return version
    }

    private static func publish(
        store: AssetStore, keyring: Keyring, key: ContentKey, count: Int, segmentBytes: Int, generation: Int
    ) throws -> PublishedVersion {
        let staging = try store.stage(try AssetID("film"))
        try staging.write("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360\n360p/index.m3u8\n", to: "master.m3u8")
        var playlist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        for index in 0..<count {
            playlist += "#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/\(key.id)\",IV=0x\(String(repeating: "0", count: 31))\(index % 10)\n"
            playlist += "#EXTINF:2.000,\n\(name(index))\n"
            try staging.write(segment(index, generation: generation, size: segmentBytes), to: "360p/\(name(index))")
        }
        playlist += "#EXT-X-ENDLIST\n"
        try staging.write(playlist, to: "360p/index.m3u8")
        try staging.write(try keyring.wrap(key, context: "film").serialized(), to: "keys/\(key.id).key")
        try staging.write(Array("poster \(generation)".utf8), to: "poster.jpg")
        try staging.write("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard/000.jpg#xywh=0,0,160,90\n", to: "storyboard.vtt")
        try staging.write(Array("sheet \(generation)".utf8), to: "storyboard/000.jpg")
        return try staging.publish(requiredFiles: ["master.m3u8"])
    }

    /// Other routes over the same store (other options).
    func makeRoutes(options: OriginOptions) -> OriginRoutes {
        let keyring = self.keyring
        return OriginRoutes(
            store: store,
            unwrapKey: { asset, _, stored in try keyring.unwrap(try WrappedKey(serialized: stored), context: asset.rawValue).bytes },
            logger: Logger(label: "test.playback"), options: options
        )
    }

    /// Other routes over the same store, with `options` changed by `change`.
    func makeRoutes(options: OriginOptions, _ change: (inout OriginOptions) -> Void) -> OriginRoutes {
        var changed = options
        change(&changed)
        return makeRoutes(options: changed)
    }

    func application(routes: OriginRoutes? = nil, connections: ConnectionLimits = .unhurried) -> OriginApplication {
        originApplication(
            routes: routes ?? self.routes, health: HealthRoutes(store: store, queue: nil, metrics: nil), connections: connections,
            logger: Logger(label: "test.playback")
        )
    }
}

@Suite("origin: HTTP semantics and versioned URLs")
struct PlaybackHTTPTests {
    @Test("entry playlists name the version; everything they lead to is versioned and immutable")
    func versionedURLs() async throws {
        let film = try FilmFixture()
        let version = film.version.version
        try await withOrigin(film.application()) { origin in
            let client = origin.client
            try await client.execute(uri: "/v/film/master.m3u8", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("\n\(version)/360p/index.m3u8\n"))
                #expect(response.headers[.cacheControl] == "public, max-age=60")
                #expect(response.headers[.eTag]?.contains(version) == true, "the ETag changes with the version")
            }
            try await client.execute(uri: "/v/film/360p/index.m3u8", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("\n../\(version)/360p/00000.ts\n"), "\(text)")
                #expect(text.contains("URI=\"../\(version)/keys/\(film.contentKey.id)\""), "\(text)")
                #expect(response.headers[.cacheControl] == "public, max-age=60")
            }
            try await client.execute(uri: "/v/film/\(version)/360p/index.m3u8", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("\n00000.ts\n"), "versioned playlists are served as stored")
                #expect(response.headers[.cacheControl] == "public, max-age=31536000, immutable")
            }
            try await client.execute(uri: "/v/film/\(version)/360p/00003.ts", method: .get) { response in
                #expect(response.status == .ok && Array(buffer: response.body) == film.segment(3))
                #expect(response.headers[.cacheControl] == "public, max-age=31536000, immutable")
                #expect(response.headers[.contentType] == "video/mp2t")
                #expect(response.headers[.acceptRanges] == "bytes")
            }
            try await client.execute(uri: "/v/film/\(version)/keys/\(film.contentKey.id)", method: .get) { response in
                #expect(response.status == .ok && Array(buffer: response.body) == film.contentKey.bytes)
                #expect(response.headers[.cacheControl] == "no-store, private")
            }
            try await client.execute(uri: "/v/film/\(version)/master.m3u8", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("\n360p/index.m3u8\n"))
            }
            let unknown = "v20000101T000000Z-000000000000"
            try await client.execute(uri: "/v/film/\(unknown)/360p/00000.ts", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/v/film/notaversion/360p/00000.ts", method: .get) { #expect($0.status == .notFound) }
        }
    }

    @Test("a republish changes the entry playlists; the version before stays playable")
    func republish() async throws {
        let film = try FilmFixture()
        let first = film.version.version
        try await withOrigin(film.application()) { origin in
            let client = origin.client
            let firstETag = try await client.execute(uri: "/v/film/master.m3u8", method: .get) { $0.headers[.eTag] ?? "" }
            try await client.execute(uri: "/v/film/\(first)/360p/00001.ts", method: .get) { #expect(Array(buffer: $0.body) == film.segment(1)) }
            let second = try film.republish(generation: 1).version
            #expect(second != first)
            film.routes.assetChanged("film")
            try await client.execute(uri: "/v/film/master.m3u8", method: .get) { response in
                #expect(String(buffer: response.body).contains("\(second)/360p/index.m3u8"))
                #expect(response.headers[.eTag] != firstETag)
            }
            try await client.execute(uri: "/v/film/master.m3u8", method: .get, headers: [.ifNoneMatch: firstETag]) { response in
                #expect(response.status == .ok, "the old ETag no longer matches")
            }
            try await client.execute(uri: "/v/film/\(first)/360p/00001.ts", method: .get) { response in
                #expect(response.status == .ok && Array(buffer: response.body) == film.segment(1), "the previous version is kept")
            }
            try await client.execute(uri: "/v/film/\(second)/360p/00001.ts", method: .get) { response in
                #expect(Array(buffer: response.body) == film.segment(1, generation: 1))
            }
        }
    }

    @Test("304 for a matching If-None-Match or an unchanged If-Modified-Since, with the validators")
    func conditional() async throws {
        let film = try FilmFixture()
        let path = "/v/film/\(film.version.version)/360p/00002.ts"
        try await withOrigin(film.application()) { origin in
            let client = origin.client
            let (eTag, lastModified) = try await client.execute(uri: path, method: .get) { response in
                (response.headers[.eTag] ?? "", response.headers[.lastModified] ?? "")
            }
            #expect(eTag.hasPrefix("\"") && eTag.hasSuffix("\""))
            #expect(lastModified.hasSuffix(" GMT"))
            for headers: HTTPFields in [
                [.ifNoneMatch: eTag], [.ifNoneMatch: "\"other\", W/\(eTag)"], [.ifNoneMatch: "*"], [.ifModifiedSince: lastModified],
            ] {
                try await client.execute(uri: path, method: .get, headers: headers) { response in
                    #expect(response.status == .notModified, "\(headers)")
                    #expect(response.body.readableBytes == 0)
                    #expect(response.headers[.eTag] == eTag)
                    #expect(response.headers[.cacheControl] == "public, max-age=31536000, immutable")
                }
            }
            for headers: HTTPFields in [
                [.ifNoneMatch: "\"other\""], [.ifModifiedSince: "Sat, 01 Jan 2000 00:00:00 GMT"],
                [.ifNoneMatch: "\"other\"", .ifModifiedSince: lastModified], [.ifModifiedSince: "not a date"],
            ] {
                try await client.execute(uri: path, method: .get, headers: headers) { response in
                    #expect(response.status == .ok, "\(headers)")
                    #expect(Array(buffer: response.body) == film.segment(2))
                }
            }
            try await client.execute(uri: path, method: .head, headers: [.ifNoneMatch: eTag]) { #expect($0.status == .notModified) }
        }
    }

    @Test("Range: 206 with Content-Range for every form, 416 past the end, ignored when If-Range differs", arguments: [
        ("bytes=0-99", 206, 0, 100),
        ("bytes=100-", 206, 100, 20_000),
        ("bytes=-500", 206, 19_500, 20_000),
        ("bytes=19990-30000", 206, 19_990, 20_000),
        ("bytes=5-5", 206, 5, 6),
        ("bytes=-30000", 206, 0, 20_000),
        ("bytes=20000-", 416, 0, 0),
        ("bytes=-0", 416, 0, 0),
        ("bytes=0-1,5-9", 200, 0, 20_000),
        ("bytes=9-2", 200, 0, 20_000),
        ("items=0-9", 200, 0, 20_000),
        ("bytes=a-b", 200, 0, 20_000),
    ])
    func ranges(_ header: String, _ status: Int, _ lower: Int, _ upper: Int) async throws {
        let film = try FilmFixture()
        let path = "/v/film/\(film.version.version)/360p/00004.ts"
        let segment = film.segment(4)
        try await withOrigin(film.application()) { origin in
            let client = origin.client
            try await client.execute(uri: path, method: .get, headers: [.range: header]) { response in
                #expect(response.status.code == status, "\(header)")
                switch status {
                case 206:
                    #expect(Array(buffer: response.body) == Array(segment[lower..<upper]))
                    #expect(response.headers[.contentRange] == "bytes \(lower)-\(upper - 1)/\(segment.count)")
                    #expect(response.headers[.contentLength] == String(upper - lower))
                case 416:
                    #expect(response.headers[.contentRange] == "bytes */\(segment.count)")
                default:
                    #expect(Array(buffer: response.body) == segment)
                }
            }
        }
    }

    @Test("If-Range keeps a Range only for the current strong ETag")
    func ifRange() async throws {
        let film = try FilmFixture()
        let path = "/v/film/\(film.version.version)/360p/00004.ts"
        try await withOrigin(film.application()) { origin in
            let client = origin.client
            let eTag = try await client.execute(uri: path, method: .head) { $0.headers[.eTag] ?? "" }
            try await client.execute(uri: path, method: .get, headers: [.range: "bytes=0-9", .ifRange: eTag]) {
                #expect($0.status == .partialContent && $0.body.readableBytes == 10)
            }
            try await client.execute(uri: path, method: .get, headers: [.range: "bytes=0-9", .ifRange: "\"stale\""]) {
                #expect($0.status == .ok && $0.body.readableBytes == film.segmentBytes)
            }
            try await client.execute(uri: path, method: .head, headers: [.range: "bytes=0-9"]) { response in
                #expect(response.status == .partialContent && response.headers[.contentLength] == "10" && response.body.readableBytes == 0)
            }
        }
    }

    @Test("playlists are gzipped when asked, with their own ETag and Vary; segments never are")
    func gzip() async throws {
        let film = try FilmFixture(count: 40)
        try await withOrigin(film.application()) { origin in
            let client = origin.client
            let plain = try await client.execute(uri: "/v/film/360p/index.m3u8", method: .get) { response in
                #expect(response.headers[.contentEncoding] == nil)
                #expect(response.headers[.vary] == "Accept-Encoding")
                return (Array(buffer: response.body), response.headers[.eTag] ?? "")
            }
            let compressed = try await client.execute(uri: "/v/film/360p/index.m3u8", method: .get, headers: [.acceptEncoding: "br;q=1, gzip;q=0.8"]) { response in
                #expect(response.headers[.contentEncoding] == "gzip")
                #expect(response.headers[.eTag] != plain.1)
                return Array(buffer: response.body)
            }
            #expect(compressed.count < plain.0.count / 3, "\(compressed.count) of \(plain.0.count)")
            #expect(try gunzip(compressed) == plain.0)
            try await client.execute(uri: "/v/film/360p/index.m3u8", method: .get, headers: [.acceptEncoding: "gzip;q=0"]) {
                #expect($0.headers[.contentEncoding] == nil)
            }
            try await client.execute(uri: "/v/film/360p/00000.ts", method: .get, headers: [.acceptEncoding: "gzip"]) {
                #expect($0.headers[.contentEncoding] == nil && Array(buffer: $0.body) == film.segment(0))
            }
        }
    }

    @Test("CORS: any origin by default; a configured list answers only its own; preflight")
    func cors() async throws {
        let open = try FilmFixture()
        try await withOrigin(open.application()) { origin in
            let client = origin.client
            try await client.execute(uri: "/v/film/master.m3u8", method: .get, headers: [.origin: "https://player.example"]) { response in
                #expect(response.headers[.accessControlAllowOrigin] == "*")
                #expect(response.headers[.accessControlExposeHeaders]?.contains("Content-Range") == true)
            }
            try await client.execute(uri: "/v/film/360p/00000.ts", method: .options, headers: [
                .origin: "https://player.example", .accessControlRequestMethod: "GET",
            ]) { response in
                #expect(response.status == .noContent)
                #expect(response.headers[.accessControlAllowMethods]?.contains("GET") == true)
                #expect(response.headers[.accessControlAllowHeaders]?.contains("Range") == true)
            }
        }
        let listed = try FilmFixture(options: OriginOptions(corsOrigins: ["https://watch.example"]))
        try await withOrigin(listed.application()) { origin in
            let client = origin.client
            try await client.execute(uri: "/v/film/master.m3u8", method: .get, headers: [.origin: "https://watch.example"]) { response in
                #expect(response.headers[.accessControlAllowOrigin] == "https://watch.example")
                #expect(response.headers[.vary]?.contains("Origin") == true)
            }
            try await client.execute(uri: "/v/film/master.m3u8", method: .get, headers: [.origin: "https://elsewhere.example"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.accessControlAllowOrigin] == nil)
            }
        }
    }

    @Test("a client over its rate gets 429 with Retry-After; others are not affected")
    func rateLimit() async throws {
        let film = try FilmFixture(options: OriginOptions(rateLimit: .init(rate: 0.001, burst: 5, includeLoopback: true)))
        try await withOrigin(film.application()) { origin in
            let client = origin.client
            let (statuses, retryAfter) = try await repeatedGets("/v/film/master.m3u8", times: 8, client)
            #expect(statuses.prefix(5).allSatisfy { $0 == 200 }, "\(statuses)")
            #expect(statuses.suffix(3).allSatisfy { $0 == 429 }, "\(statuses)")
            #expect((900...1000).contains(Int(retryAfter ?? "") ?? 0), "one token every 1000 s: \(retryAfter ?? "none")")
        }
        let limiter = RateLimiter(options: .init(rate: 1, burst: 2))
        #expect(limiter.admit(client: testClient("192.0.2.1"), now: 0) == nil)
        #expect(limiter.admit(client: testClient("192.0.2.1"), now: 0) == nil)
        #expect(limiter.admit(client: testClient("192.0.2.1"), now: 0) == 1)
        #expect(limiter.admit(client: testClient("192.0.2.2"), now: 0) == nil, "buckets are per client")
        #expect(limiter.admit(client: testClient("192.0.2.1"), now: 1_000_000_000) == nil, "a second refills one token")
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        let loopback6 = try SocketAddress(ipAddress: "::1", port: 1)
        let remote = try SocketAddress(ipAddress: "198.51.100.7", port: 1)
        #expect(RateLimiter.client(loopback, includeLoopback: false) == nil, "loopback is exempt by default")
        #expect(RateLimiter.client(loopback6, includeLoopback: false) == nil)
        #expect(RateLimiter.client(remote, includeLoopback: false)?.description == "198.51.100.7")
    }

    @Test("a client playing on (k-1 then k) gets k+1…k+3 read ahead into L1; a seek reads nothing ahead")
    func readAhead() async throws {
        let film = try FilmFixture(count: 12)
        try await withOrigin(film.application()) { origin in
            let client = origin.client
            try await client.execute(uri: "/v/film/360p/00008.ts", method: .get) { #expect($0.status == .ok) }
            try await Task.sleep(for: .milliseconds(200))
            #expect(film.routes.statistics.warmed == 0, "one request is not playback yet")
            try await client.execute(uri: "/v/film/360p/00001.ts", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v/film/360p/00002.ts", method: .get) { #expect($0.status == .ok) }
            let version = film.version.version
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline, film.routes.statistics.warmed < 3 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(film.routes.statistics.warmed == 3)
            for index in 3...5 { #expect(film.routes.cache.contains("film/\(version)/360p/\(FilmFixture.name(index))")) }
            #expect(!film.routes.cache.contains("film/\(version)/360p/00006.ts"))
            let reads = film.routes.statistics.storeReads
            try await client.execute(uri: "/v/film/360p/00003.ts", method: .get) { #expect(Array(buffer: $0.body) == film.segment(3)) }
            #expect(film.routes.statistics.storeReads >= reads, "00003 came from L1")
            #expect(film.routes.statistics.l1Hits >= 1)
        }
    }

    @Test("L1 never holds more than its budget while a viewer scans every segment")
    func budgetUnderScan() async throws {
        let budget = 200_000
        let film = try FilmFixture(count: 120, segmentBytes: 9_000, options: OriginOptions(l1Bytes: budget))
        try await withOrigin(film.application()) { origin in
            let client = origin.client
            for index in 0..<film.count {
                try await client.execute(uri: "/v/film/360p/\(FilmFixture.name(index))", method: .get) { response in
                    #expect(Array(buffer: response.body) == film.segment(index))
                }
                #expect(film.routes.cache.statistics.bytes <= budget)
            }
        }
        let statistics = film.routes.cache.statistics
        #expect(statistics.bytes <= budget && statistics.bytes > budget / 2, "\(statistics)")
        #expect(statistics.evictions > 0 || statistics.rejections > 0)
    }
}

@Suite("origin: HTTP pieces")
struct HTTPPiecesTests {
    @Test("HTTP dates: format, parse, and version publish times")
    func dates() {
        #expect(HTTPSemantics.httpDate(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPSemantics.parseHTTPDate("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPSemantics.httpDate(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPSemantics.parseHTTPDate("Sunday, 06-Nov-94 08:49:37 GMT") == nil)
        #expect(HTTPSemantics.publishTime(ofVersion: "v19941106T084937Z-0123456789ab") == 784_111_777)
        for seconds in stride(from: 0, to: 4_000_000_000, by: 123_456_789) {
            #expect(HTTPSemantics.parseHTTPDate(HTTPSemantics.httpDate(seconds)) == seconds)
        }
    }

    /// Found by fuzzing (fuzz/crashes/http-date): a day before 1970 was named after the next one.
    @Test("HTTP dates before 1970 have their own weekday")
    func httpDatesBefore1970HaveTheirWeekday() {
        #expect(HTTPSemantics.httpDate(-1) == "Wed, 31 Dec 1969 23:59:59 GMT")
        #expect(HTTPSemantics.httpDate(-86_400) == "Wed, 31 Dec 1969 00:00:00 GMT")
        #expect(HTTPSemantics.httpDate(-86_401) == "Tue, 30 Dec 1969 23:59:59 GMT")
        #expect(HTTPSemantics.httpDate(-25_245_560_400) == "Thu, 01 Jan 1170 00:20:00 GMT")
    }

    /// Found by fuzzing (fuzz/crashes/http-date): 23:59:60 on the last day of 9999 was read as a
    /// second of year 10000, which httpDate cannot write in IMF-fixdate's four digits.
    @Test("a leap second at the end of year 9999 is not an HTTP date")
    func leapSecondEndingYear9999IsNotAnHTTPDate() {
        #expect(HTTPSemantics.parseHTTPDate("Fri, 31 Dec 9999 23:59:60 GMT") == nil)
        #expect(HTTPSemantics.parseHTTPDate("Fri, 31 Dec 9999 23:59:59 GMT") == 253_402_300_799)
        #expect(HTTPSemantics.parseHTTPDate("Thu, 30 Dec 9999 23:59:60 GMT") == 253_402_214_400)
        #expect(HTTPSemantics.publishTime(ofVersion: "v99991231T235960Z-0123456789ab") == nil)
    }

    /// Found by fuzzing (fuzz/corpus/http-date/first): years before 1000 were written with fewer
    /// than IMF-fixdate's four digits, so the date did not read back.
    @Test("HTTP dates of years before 1000 are written with four digits and read back")
    func httpDatesOfEarlyYearsHaveFourDigits() {
        #expect(HTTPSemantics.httpDate(-62_135_596_800) == "Mon, 01 Jan 0001 00:00:00 GMT")
        #expect(HTTPSemantics.httpDate(-59_042_995_200) == "Thu, 01 Jan 0099 00:00:00 GMT")
        for seconds in stride(from: -62_135_596_800, to: 0, by: 987_654_321) {
            #expect(HTTPSemantics.parseHTTPDate(HTTPSemantics.httpDate(seconds)) == seconds)
        }
    }

    @Test("playlist rewriting resolves relative URIs inside the version and leaves the rest")
    func rewriting() {
        let version = "v20261123T194429Z-e662452ce1cd"
        let media = ByteBuffer(string: "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/ab\",IV=0x01\n#EXTINF:6,\n00000.ts\n#EXTINF:6,\nhttps://cdn.example/x.ts\n/abs.ts\n")
        let out = String(buffer: PlaylistRewriter.rewrite(media, directory: "360p", version: version))
        #expect(out == "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"../\(version)/keys/ab\",IV=0x01\n#EXTINF:6,\n../\(version)/360p/00000.ts\n#EXTINF:6,\nhttps://cdn.example/x.ts\n/abs.ts\n")
        let master = ByteBuffer(string: "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"audio/index.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8?x=1")
        #expect(String(buffer: PlaylistRewriter.rewrite(master, directory: "", version: version))
            == "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"\(version)/audio/index.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\n\(version)/360p/index.m3u8?x=1")
        #expect(PlaylistRewriter.rewrite(uri: "../../escape.ts", directory: "360p", prefix: "P/") == "../../escape.ts")
    }

    @Test("Accept-Encoding negotiation")
    func acceptEncoding() {
        #expect(HTTPSemantics.acceptsGzip("gzip"))
        #expect(HTTPSemantics.acceptsGzip("deflate, gzip;q=0.5"))
        #expect(HTTPSemantics.acceptsGzip("*"))
        #expect(!HTTPSemantics.acceptsGzip("gzip;q=0"))
        #expect(!HTTPSemantics.acceptsGzip("br"))
        #expect(!HTTPSemantics.acceptsGzip(nil))
    }
}

/// GETs `uri` `times` times in a row: the statuses, and the `Retry-After` of the last 429.
func repeatedGets(_ uri: String, times: Int, _ client: OriginClient) async throws -> (statuses: [Int], retryAfter: String?) {
    var statuses: [Int] = []
    var retryAfter: String?
    for _ in 0..<times {
        try await client.execute(uri: uri, method: .get) { response in
            statuses.append(response.status.code)
            if response.status == .tooManyRequests { retryAfter = response.headers[.retryAfter] }
        }
    }
    return (statuses, retryAfter)
}

/// Decompresses gzip with the system's gzip tool: an implementation independent of the origin's.
func gunzip(_ bytes: [UInt8]) throws -> [UInt8] {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-gz-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("p.gz")
    try Data(bytes).write(to: file)
    let gzip = try ChildProcess(executable: "/bin/gzip", arguments: ["-d", file.path])
    let status = gzip.wait(timeout: 30)
    guard status == .exited(0) else { throw TestFailure("gzip -d failed: \(String(describing: status))") }
    return Array(try Data(contentsOf: folder.appendingPathComponent("p")))
}

/// The rate-limit key of a literal address.
func testClient(_ address: String) -> ClientKey {
    ClientKey(try! SocketAddress(ipAddress: address, port: 1))!
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
