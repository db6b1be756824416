import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import TestSupport
import Testing
@testable import Origin
@testable import Store

/// The fast path (``PlaybackFastPath``) on a live server: the same answers as the router, in
/// request order, and only for what memory can answer.
@Suite("origin: the fast path")
struct FastPathTests {
    /// A response as a client sees it, minus `Date`.
    struct Answer: Equatable, CustomStringConvertible {
        var status: Int
        var headers: [String]
        var body: [UInt8]

        init(_ response: OriginResponse) {
            status = response.status.code
            headers = response.headers.filter { $0.name != .date }.map { "\($0.name.canonicalName): \($0.value)" }.sorted()
            body = Array(buffer: response.body)
        }

        var description: String { "\(status) \(headers) \(body.count) bytes" }
    }

    @Test("every request of the table gets the same status, headers and body with the fast path as without")
    func sameAnswers() async throws {
        let options = OriginOptions(l1Bytes: 64 << 20, warmSegments: 0)
        let film = try FilmFixture(options: options)
        let router = film.makeRoutes(options: options) { $0.fastPath = false }
        // As with Redis announcing changes: the published version is re-read every 30 s, not every
        // second, so a stalled moment on a loaded machine does not send hits to the router.
        for routes in [film.routes, router] { routes.announcements(listening: true) }
        let version = film.version.version
        let key = film.contentKey.id
        let segmentTag = "\"\(version)/360p/00001.ts\""
        let requests: [(String, HTTPRequest.Method, HTTPFields)] = [
            ("/v/film/master.m3u8", .get, [:]),
            ("/v/film/master.m3u8", .head, [:]),
            ("/v/film/master.m3u8", .get, [.acceptEncoding: "gzip"]),
            ("/v/film/master.m3u8", .get, [.ifNoneMatch: "\"\(version)/master.m3u8~entry\""]),
            ("/v/film/360p/index.m3u8", .get, [:]),
            ("/v/film/360p/index.m3u8", .get, [.acceptEncoding: "br, gzip;q=0.5"]),
            ("/v/film/360p/index.m3u8?token=abc", .get, [:]),
            ("/v/film/\(version)/master.m3u8", .get, [:]),
            ("/v/film/\(version)/360p/index.m3u8", .get, [.origin: "https://player.example"]),
            ("/v/film/360p/00001.ts", .get, [:]),
            ("/v/film/360p/00001.ts", .head, [:]),
            ("/v/film/360p/00001.ts?start=3", .get, [:]),
            ("/v/film/360p/00001.ts", .get, [.range: "bytes=0-99"]),
            ("/v/film/360p/00001.ts", .get, [.range: "bytes=-500"]),
            ("/v/film/360p/00001.ts", .get, [.range: "bytes=999999-"]),
            ("/v/film/360p/00001.ts", .get, [.range: "bytes=0-9", .ifRange: "\"stale\""]),
            ("/v/film/\(version)/360p/00001.ts", .get, [.ifNoneMatch: segmentTag]),
            ("/v/film/\(version)/360p/00001.ts", .get, [.ifModifiedSince: "Sat, 01 Jan 2000 00:00:00 GMT"]),
            ("/v/film/\(version)/360p/00002.ts", .get, [.origin: "https://player.example"]),
            ("/v/film/\(version)/360p/00002.ts", .head, [.range: "bytes=5-5"]),
            ("/v/film/keys/\(key)", .get, [:]),
            ("/v/film/\(version)/keys/\(key)", .head, [:]),
            ("/v/film/%2e%2e/keys/\(key)", .get, [:]),
            ("/v/film//360p/00001.ts", .get, [:]),
            ("/v/film/360p/./00001.ts", .get, [:]),
            ("/v/film/360p/00001.ts/", .get, [:]),
            ("/v/nothing/master.m3u8", .get, [:]),
            ("/v/film/360p/99999.ts", .get, [:]),
            ("/v/film/360p/00001.mp4", .get, [:]),
            ("/v/film/360p/%30%30%30%30%32.ts", .get, [:]),
            ("/v/film/360p/00001.ts", .get, [.range: "bytes=0-1", .ifNoneMatch: "\"x\"", .acceptEncoding: "gzip", .origin: "null"]),
            ("/v/film/v20000101T000000Z-abcdefabcdef/360p/00001.ts", .get, [:]),
            ("/v/film/master.m3u8", .options, [.origin: "https://player.example"]),
        ]
        let answers = try await withOrigin(film.application()) { origin in
            var answers: [Answer] = []
            for (path, method, headers) in requests {
                // Twice: the first may load into L1, the second is a hit where there is one.
                for _ in 0..<2 { answers.append(try await origin.client.execute(uri: path, method: method, headers: headers) { Answer($0) }) }
            }
            return answers
        }
        try await withOrigin(film.application(routes: router)) { origin in
            var index = 0
            for (path, method, headers) in requests {
                for round in 0..<2 {
                    let expected = try await origin.client.execute(uri: path, method: method, headers: headers) { Answer($0) }
                    #expect(answers[index] == expected, "router only: \(method) \(path) \(headers), round \(round + 1)")
                    index += 1
                }
            }
        }
        #expect(router.statistics.fastPath == 0)
        // At least the hits of the current version: 43 of the 66 requests (the first request for
        // each file or key loads, except the versioned playlists, loaded with the entry ones they
        // are rewritten from); besides, whatever else memory knows (a missing asset, odd paths).
        #expect(film.routes.statistics.fastPath >= 43, "answered from the socket's bytes: \(film.routes.statistics.fastPath)")
    }

    @Test("the fast path gives the very bytes the router gives, for odd, split and pipelined requests")
    func byteLevelEquivalence() async throws {
        let options = OriginOptions(l1Bytes: 64 << 20, warmSegments: 0)
        let film = try FilmFixture(options: options)
        let router = film.makeRoutes(options: options) { $0.fastPath = false }
        for routes in [film.routes, router] { routes.announcements(listening: true) }
        let version = film.version.version
        let key = film.contentKey.id
        let segment = "/v/film/360p/00001.ts"
        let get = "GET \(segment) HTTP/1.1\r\nHost: t\r\n"
        // Each: what the client sends, in pieces (a pause between them), then it stops sending.
        let exchanges: [[String]] = [
            [get + "\r\n" + get + "Range: bytes=0-9\r\n\r\n" + get + "\r\n"],
            ["GET \(segment) HTTP/1.1\r\nHo", "st: t\r\nRange: bytes=1", "0-19\r\n", "\r\n"],
            [get + "range: bytes=5-6\r\n\r\n", get + "IF-NONE-MATCH: \"\(version)/360p/00001.ts\"\r\n\r\n"],
            [get + "Range: bytes=0-1\r\nRange: bytes=3-4\r\n\r\n"],
            [get + "Range:\tbytes=0-3 \t\r\nAccept:*/*\r\n\r\n"],
            ["GET \(segment) HTTP/1.0\r\nHost: t\r\n\r\n"],
            [get + "Connection: close\r\n\r\n" + get + "\r\n"],
            [get + "Content-Length: 0\r\n\r\n", get + "Expect: 100-continue\r\n\r\n"],
            ["GET \(segment) HTTP/1.1\nHost: t\n\n"],
            [get + "X-A: b\r\n c\r\n\r\n"],
            [get + "Bad Header: x\r\n\r\n"],
            [get + "X-Big: " + String(repeating: "a", count: 20_000) + "\r\n\r\n"],
            ["POST \(segment) HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + get + "\r\n"],
            ["GET /v/film/360p/%30%30%30%30%31.ts HTTP/1.1\r\nHost: t\r\n\r\n", get + "\r\n"],
            ["GET /v/film/keys/\(key) HTTP/1.1\r\nHost: t\r\n\r\n", "HEAD /v/film/\(version)/360p/00002.ts HTTP/1.1\r\nHost: t\r\n\r\n"],
            [get + "Origin: https://player.example\r\nAccept-Encoding: gzip\r\n\r\n", "GET /v/film/master.m3u8 HTTP/1.1\r\naccept-encoding: gzip\r\n\r\n"],
            [get + "Host: t\r\n"],
            ["\r\n" + get + "\r\n"],
            ["GET  \(segment) HTTP/1.1\r\n\r\n", get + "\r\n"],
            ["GET \(segment) HTTP/1.1\rHost: t\r\n\r\n", get + "\r\n"],
            [get + "X-A: b\rRange: bytes=0-3\r\n\r\n", get + "\r\n"],
        ]
        func answers(_ routes: OriginRoutes) async throws -> [String] {
            try await withOrigin(film.application(routes: routes)) { origin in
                let port = origin.port
                // Everything asked for is in L1 first (the key in memory), so hits can be answered early.
                for path in [segment, "/v/film/\(version)/360p/00002.ts", "/v/film/master.m3u8", "/v/film/keys/\(key)"] {
                    try await origin.client.execute(uri: path, method: .get) { #expect($0.status == .ok) }
                }
                var answers: [String] = []
                for pieces in exchanges {
                    let bytes = try await Self.exchange(port: port, pieces: pieces)
                    // Everything but the Date lines, bodies included.
                    let text = String(decoding: bytes, as: UTF8.self)
                    answers.append(text.split(separator: "\r\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("Date: ") }.joined(separator: "\r\n"))
                }
                return answers
            }
        }
        let fromBytes = try await answers(film.routes)
        let fromRouter = try await answers(router)
        for (index, pieces) in exchanges.enumerated() {
            #expect(fromBytes[index] == fromRouter[index], "\(pieces.joined().prefix(120).debugDescription)")
        }
        #expect(fromBytes[0].components(separatedBy: "HTTP/1.1 ").count - 1 == 3, "three pipelined answers: \(fromBytes[0].prefix(300))")
        #expect(fromBytes[1].hasPrefix("HTTP/1.1 206 Partial Content\r\n"), "a head split over four writes is still answered")
        let read = film.routes.statistics.fastPath
        #expect(read >= 10, "answered from bytes: \(read)")
        #expect(router.statistics.fastPath == 0)
    }

    @Test("a hit behind a request still with the router waits its turn (pipelined HTTP/1.1)")
    func pipelinedOrder() async throws {
        let film = try FilmFixture(options: OriginOptions(l1Bytes: 64 << 20, warmSegments: 0))
        film.routes.announcements(listening: true)
        let key = film.contentKey.id
        try await withOrigin(film.application()) { origin in
            try await origin.client.execute(uri: "/v/film/360p/00003.ts", method: .get) { #expect($0.status == .ok) }
            let port = origin.port
            let before = film.routes.statistics.fastPath
            // A key (router: the file is read and unwrapped), then a segment already in L1.
            let raw = try await Self.exchange(port: port, [
                "GET /v/film/keys/\(key) HTTP/1.1\r\nHost: t\r\n\r\n",
                "GET /v/film/360p/00003.ts HTTP/1.1\r\nHost: t\r\n\r\n",
                "GET /v/film/360p/00003.ts HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ].joined())
            let responses = try Self.split(raw)
            #expect(responses.count == 3, "\(responses.map(\.head))")
            guard responses.count == 3 else { return }
            #expect(responses[0].head.hasPrefix("HTTP/1.1 200") && responses[0].body == film.contentKey.bytes, "the key first")
            #expect(responses[1].body == film.segment(3), "then the segment")
            #expect(responses[2].body == film.segment(3))
            #expect(film.routes.statistics.fastPath == before, "behind the key, both went to the router; the last asked to close")
        }
    }

    @Test("rate limits apply to answers from memory too: 429 with Retry-After past the burst")
    func rateLimitedHits() async throws {
        let film = try FilmFixture(options: OriginOptions(l1Bytes: 64 << 20, warmSegments: 0, rateLimit: .init(rate: 0.001, burst: 4, includeLoopback: true)))
        film.routes.announcements(listening: true)
        try await withOrigin(film.application()) { origin in
            let (statuses, retryAfter) = try await repeatedGets("/v/film/360p/00002.ts", times: 7, origin.client)
            #expect(statuses == [200, 200, 200, 200, 429, 429, 429], "\(statuses)")
            #expect((900...1000).contains(Int(retryAfter ?? "") ?? 0), "\(retryAfter ?? "none")")
        }
        #expect(film.routes.statistics.fastPath == 6, "hits and refusals after the first load came from memory")
    }

    @Test("a republish announced to the origin is served at once; nothing of the old entry is kept")
    func republishSeenAtOnce() async throws {
        let film = try FilmFixture(options: OriginOptions(l1Bytes: 64 << 20, warmSegments: 0))
        let first = film.version.version
        try await withOrigin(film.application()) { origin in
            for _ in 0..<2 {
                try await origin.client.execute(uri: "/v/film/360p/00001.ts", method: .get) { #expect(Array(buffer: $0.body) == film.segment(1)) }
            }
            let second = try film.republish(generation: 1).version
            film.routes.assetChanged("film")
            try await origin.client.execute(uri: "/v/film/360p/00001.ts", method: .get) {
                #expect(Array(buffer: $0.body) == film.segment(1, generation: 1), "the new version's bytes")
            }
            try await origin.client.execute(uri: "/v/film/master.m3u8", method: .get) {
                #expect(String(buffer: $0.body).contains(second) && !String(buffer: $0.body).contains(first))
            }
            try await origin.client.execute(uri: "/v/film/\(first)/360p/00001.ts", method: .get) {
                #expect(Array(buffer: $0.body) == film.segment(1), "the version before stays playable")
            }
        }
    }

    @Test("a bare CR ends no line: such a head goes to NIO's parser untouched, never read here")
    func bareCRIsNoLineEnd() {
        func parsed(_ text: String) -> String {
            Array(text.utf8).withUnsafeBytes { bytes in
                switch ByteRequestHead.parse(bytes) {
                case .answerable(let request): "answerable \(request.path ?? "") \(request.headerFields[.range] ?? "-")"
                case .routerOnly: "router"
                case .passThrough: "pass"
                }
            }
        }
        #expect(parsed("GET /v/a/b.ts HTTP/1.1\r\nRange: bytes=0-3\r\n\r\n") == "answerable /v/a/b.ts bytes=0-3")
        #expect(parsed("GET /v/a/b.ts HTTP/1.1\rRange: bytes=0-3\r\n\r\n") == "pass")
        #expect(parsed("GET /v/a/b.ts HTTP/1.1\r\nX: y\rRange: bytes=0-3\r\n\r\n") == "pass")
        #expect(parsed("GET /v/a/b.ts HTTP/1.1\r\nRange: bytes=0-3\r\r\n") == "pass")
    }

    @Test("the playback URL grammar: what it takes apart, decoded, and what names nothing")
    func targets() {
        let version = "v20261123T204523Z-9c2d9f34965b"
        func parts(_ path: String) -> String? {
            PlaybackTarget(path).map { "\($0.asset) \($0.version ?? "-") \($0.relative) \($0.kind) \($0.token ?? "-")" }
        }
        #expect(parts("/v/film/master.m3u8") == "film - master.m3u8 file(Origin.MediaType.playlist) -")
        #expect(parts("/v/film/360p/index.m3u8?token=x") == "film - 360p/index.m3u8 file(Origin.MediaType.playlist) x")
        #expect(parts("/v/film/\(version)/master.m3u8") == "film \(version) master.m3u8 file(Origin.MediaType.playlist) -")
        #expect(parts("/v/film/\(version)/360p/00001.ts?a=1&token=") == "film \(version) 360p/00001.ts file(Origin.MediaType.transportStream) -")
        #expect(parts("/v/film/360p/00001.ts?tokens=1") == "film - 360p/00001.ts file(Origin.MediaType.transportStream) -")
        #expect(parts("/v/film/keys/0123?token=a.b-c_d&token=e") == "film - keys/0123 key(\"0123\") a.b-c_d")
        #expect(parts("/v/film/\(version)/keys/0123") == "film \(version) keys/0123 key(\"0123\") -")
        // The stills: at the top of the published version, and under a version.
        #expect(parts("/v/film/poster.jpg") == "film - poster.jpg file(Origin.MediaType.jpeg) -")
        #expect(parts("/v/film/storyboard.vtt") == "film - storyboard.vtt file(Origin.MediaType.webVTT) -")
        #expect(parts("/v/film/\(version)/storyboard/000.jpg") == "film \(version) storyboard/000.jpg file(Origin.MediaType.jpeg) -")
        // Escapes are decoded: in names, in the query's names and in the token.
        #expect(parts("/v/film/360p/%30%30%30%30%31.ts") == "film - 360p/00001.ts file(Origin.MediaType.transportStream) -")
        #expect(parts("/v/film/keys/0123?token=a%2Eb") == "film - keys/0123 key(\"0123\") a.b")
        #expect(parts("/v/film/keys/0123?tok%65n=a") == "film - keys/0123 key(\"0123\") a")
        #expect(parts("/v/film/keys/0123?token=a+b") == "film - keys/0123 key(\"0123\") a+b")
        #expect(parts("/v/film/keys/0123?token=a/b") == "film - keys/0123 key(\"0123\") a/b")
        for path in [
            "/v/film/%2e%2e/x.ts", "/v/film//00001.ts", "/v/film/../00001.ts", "/v/film/360p/00001.ts/", "/v/film/360p/00001.mp4",
            "/v/film/a/b/c/d.ts", "/x/film/master.m3u8", "v/film/master.m3u8", "/v/film/360p", "/v/film/master.m3u8#x",
            "/v/fi lm/master.m3u8", "/v/film/360p/00001.ts\u{0}", "/v/film/%2F/x.ts", "/v/film/360p%2F00001.ts/x.ts",
            "/v/film/360p/0000%.ts", "/v/film/360p/%zz.ts", "/v/film/360p/%00.ts", "/v/film/keys/0123?token=a%2",
            "/v/film/%2e/master.m3u8", "/v/film/master.m3u8/", "/v/master.m3u8", "/v/film/v20261123T204523Z-9c2d9f34965b/keys",
            "/v/film/other.jpg", "/v/film/asset.json", "/v/film/\(version)/asset.json", "/v/film/poster.png",
        ] {
            #expect(PlaybackTarget(path) == nil, "\(path)")
        }
    }

    @Test("URLs taken apart once per thread: the same answer each time, the L1 key following the published version")
    func knownTargets() throws {
        let asset = try AssetID("film")
        let first = PublishedVersion(asset: asset, version: "v20261123T204523Z-9c2d9f34965b", directory: "/nowhere/1")
        let second = PublishedVersion(asset: asset, version: "v20261124T101500Z-0123456789ab", directory: "/nowhere/2")

        let segment = try #require(KnownTarget.memo("/v/film/360p/00042.ts"))
        #expect(KnownTarget.memo("/v/film/360p/00042.ts") === segment, "the second time comes from the memo")
        #expect(segment.asset == asset)
        #expect(segment.segment.map { "\($0.folder) \($0.number) \($0.digits)" } == "360p 42 5")
        #expect(segment.cacheKey(in: first) == "film/\(first.version)/360p/00042.ts")
        #expect(segment.cacheKey(in: second) == "film/\(second.version)/360p/00042.ts", "a republish names the new version's object")
        #expect(segment.cacheKey(in: first) == "film/\(first.version)/360p/00042.ts")

        let entry = try #require(KnownTarget.memo("/v/film/360p/index.m3u8"))
        #expect(entry.cacheKey(in: first) == "film/\(first.version)/360p/index.m3u8~entry", "entry playlists are kept rewritten")
        #expect(entry.segment == nil)
        let versioned = try #require(KnownTarget.memo("/v/film/\(first.version)/360p/index.m3u8"))
        #expect(versioned.cacheKey(in: first) == "film/\(first.version)/360p/index.m3u8")

        #expect(try #require(KnownTarget.memo("/v/-film/master.m3u8")).asset == nil, "not an asset id: nothing is found")
        for _ in 0..<2 { #expect(KnownTarget.memo("/v/film/../00001.ts") == nil) }

        // A long path is taken apart each time and not kept.
        let long = "/v/film/360p/00042.ts?token=" + String(repeating: "t", count: KnownTarget.maximumPathBytes)
        let taken = try #require(KnownTarget.memo(long))
        #expect(taken.target.token?.count == KnownTarget.maximumPathBytes)
        #expect(KnownTarget.memo(long) !== taken, "made anew")

        // Past its capacity the memo starts over, and answers as before.
        for number in 0...KnownTarget.capacity { _ = KnownTarget.memo("/v/film/360p/\(number).ts") }
        let again = try #require(KnownTarget.memo("/v/film/360p/00042.ts"))
        #expect(again.cacheKey(in: second) == "film/\(second.version)/360p/00042.ts")
        #expect(KnownTarget.memo("/v/film/../00001.ts") == nil)
    }

    // MARK: - A raw HTTP/1.1 connection

    /// Sends `text` in one write on a new connection and reads until the server closes it, on a
    /// thread of its own (`offPool`): blocking in `recv` on one of Swift's few pool threads would
    /// stall the server under test (and every other test) with it.
    static func exchange(port: Int, _ text: String) async throws -> [UInt8] {
        try await offPool { try blockingExchange(port: port, [text], halfClose: false) }
    }

    /// Sends `pieces` one write each, 50 ms apart, then shuts its side down (no more requests) and
    /// reads until the server closes the connection.
    static func exchange(port: Int, pieces: [String]) async throws -> [UInt8] {
        try await offPool { try blockingExchange(port: port, pieces, halfClose: true) }
    }

    private static func blockingExchange(port: Int, _ pieces: [String], halfClose: Bool) throws -> [UInt8] {
        let connection = try RawConnection(port: port, receiveBuffer: nil)
        for (index, piece) in pieces.enumerated() {
            if index > 0 { usleep(50_000) }
            try connection.send(piece)
        }
        if halfClose { connection.finishSending() }
        return connection.readToEnd(pause: 0)
    }

    struct RawResponse {
        var head: String
        var body: [UInt8]
    }

    /// Responses with a Content-Length, back to back.
    static func split(_ bytes: [UInt8]) throws -> [RawResponse] {
        var responses: [RawResponse] = []
        var rest = bytes[...]
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while !rest.isEmpty {
            guard let end = rest.indices.first(where: { rest[$0...].starts(with: separator) }) else { break }
            let head = String(decoding: rest[rest.startIndex..<end], as: UTF8.self)
            let length = contentLength(in: head)
            let bodyStart = end + separator.count
            let bodyEnd = min(rest.endIndex, bodyStart + length)
            responses.append(RawResponse(head: head, body: Array(rest[bodyStart..<bodyEnd])))
            rest = rest[bodyEnd...]
        }
        return responses
    }

    /// A response head's Content-Length (0 when it has none).
    static func contentLength(in head: String) -> Int {
        head.split(separator: "\r\n").compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }.first ?? 0
    }
}
