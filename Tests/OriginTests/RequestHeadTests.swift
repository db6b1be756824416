import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Testing
@testable import Origin

/// The fast path's request-head parser, as a table, and its handler on an `EmbeddedChannel`: what
/// it answers from memory, what it hands on byte for byte, and in which order.
@Suite("origin: the fast path's request heads")
struct RequestHeadTests {
    /// What ``ByteRequestHead/parse(_:)`` makes of one head.
    static func parsed(_ text: String) -> String {
        Array(text.utf8).withUnsafeBytes { bytes in
            switch ByteRequestHead.parse(bytes) {
            case .answerable(let request):
                let fields = request.headerFields.map { "\($0.name.canonicalName)=\($0.value)" }.joined(separator: ",")
                return "\(request.method) \(request.path ?? "") [\(fields)]"
            case .routerOnly: return "router"
            case .passThrough: return "pass"
            }
        }
    }

    static let heads: [(head: String, expected: String)] = [
        ("GET /v/a/b.ts HTTP/1.1\r\n\r\n", "GET /v/a/b.ts []"),
        ("HEAD /v/a/b.ts HTTP/1.1\r\nHost: t\r\n\r\n", "HEAD /v/a/b.ts []"),
        ("GET /v/a/b.ts?token=x HTTP/1.1\r\nRange: bytes=0-3\r\nUser-Agent: p\r\n\r\n", "GET /v/a/b.ts?token=x [range=bytes=0-3,user-agent=p]"),
        ("GET /v/a/b.ts HTTP/1.1\r\nrange:\t bytes=0-3 \t\r\n\r\n", "GET /v/a/b.ts [range=bytes=0-3]"),
        ("GET /v/a/b.ts HTTP/1.1\r\nIF-NONE-MATCH: \"x\"\r\nOrigin: https://p\r\nAuthorization: Bearer t\r\n\r\n",
         "GET /v/a/b.ts [if-none-match=\"x\",origin=https://p,authorization=Bearer t]"),
        ("GET /v/a/b.ts HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "GET /v/a/b.ts []"),
        // Only the router handles these whole.
        ("GET /v/a/b.ts HTTP/1.0\r\n\r\n", "router"),
        ("GET /v/a/b.ts HTTP/1.1\r\nConnection: close\r\n\r\n", "router"),
        ("GET /v/a/b.ts HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "router"),
        ("GET /v/a/b.ts HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", "router"),
        ("GET /v/a/b.ts HTTP/1.1\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n", "router"),
        // The decoder's, for the rest of the connection.
        ("POST /v/a/b.ts HTTP/1.1\r\n\r\n", "pass"),
        ("OPTIONS /v/a/b.ts HTTP/1.1\r\n\r\n", "pass"),
        ("GET /v/a/b.ts HTTP/1.1\r\nContent-Length: 5\r\n\r\n", "pass"),
        ("GET /v/a/b.ts HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "pass"),
        ("GET /v/a/b.ts HTTP/2.0\r\n\r\n", "pass"),
        ("GET  /v/a/b.ts HTTP/1.1\r\n\r\n", "pass"),
        ("GET http://h/v/a/b.ts HTTP/1.1\r\n\r\n", "pass"),
        ("GET /v/a/\u{7F}.ts HTTP/1.1\r\n\r\n", "pass"),
        ("GET /v/a/b.ts HTTP/1.1\rRange: bytes=0-3\r\n\r\n", "pass"),
        ("GET /v/a/b.ts HTTP/1.1\r\nX: y\rRange: bytes=0-3\r\n\r\n", "pass"),
        ("GET /v/a/b.ts HTTP/1.1\r\nRange: bytes=0-3\r\r\n", "pass"),
        ("GET /v/a/b.ts HTTP/1.1\r\nBad Header: x\r\n\r\n", "pass"),
        ("GET /v/a/b.ts HTTP/1.1\r\n: x\r\n\r\n", "pass"),
        ("GET /v/a/b.ts HTTP/1.1\r\nX: a\u{01}b\r\n\r\n", "pass"),
    ]

    @Test("each head reads as the table says", arguments: heads)
    func table(_ head: String, _ expected: String) {
        #expect(Self.parsed(head) == expected, "\(head.debugDescription)")
    }

    static let ends: [(bytes: String, expected: String)] = [
        ("GET / HTTP/1.1\r\n\r\n", "18"),
        ("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", "18"),
        ("GET / HTTP/1.1\r\nHost: t\r\n", "incomplete"),
        ("GET / HTTP/1.1\r\n\r", "incomplete"),
        ("GET / HTTP/1.1\n\n", "refused"),
        ("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", "refused"),
        ("GET / HTTP/1.1\r\nX: a\n\r\n", "refused"),
    ]

    @Test("a head ends at the first CRLF CRLF; a bare LF or a folded line is the decoder's", arguments: ends)
    func headEnds(_ bytes: String, _ expected: String) {
        let found = Array(bytes.utf8).withUnsafeBytes { ByteRequestHead.headEnd(in: $0) }
        let text = switch found {
        case .success(let end?): String(end)
        case .success(nil): "incomplete"
        case .failure: "refused"
        }
        #expect(text == expected, "\(bytes.debugDescription)")
    }

    // MARK: - The handler on an EmbeddedChannel

    /// A connection's pipeline as the server builds it (the fast path first, NIO's HTTP/1 codec,
    /// the HTTPTypes codec, ``ResponseOrder``), with nothing behind: what reaches the end is what
    /// the router would get.
    static func connection(_ routes: OriginRoutes) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
        try channel.pipeline.syncOperations.addHandler(ResponseOrder(routes: routes, serverName: "StreamGate"))
        return channel
    }

    /// Everything written to the socket so far, as text.
    static func written(_ channel: EmbeddedChannel) throws -> String {
        var bytes: [UInt8] = []
        while let part = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = part else { continue }
            bytes += buffer.readableBytesView
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The requests handed on to the router so far (their paths).
    static func handedOn(_ channel: EmbeddedChannel) throws -> [String] {
        var paths: [String] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            if case .head(let request) = part { paths.append(request.path ?? "") }
        }
        return paths
    }

    @Test("a hit is answered from the bytes; a miss, and every request behind one with the router, is handed on in order")
    func handlerOrder() async throws {
        let film = try FilmFixture(options: OriginOptions(l1Bytes: 64 << 20, warmSegments: 0))
        film.routes.announcements(listening: true)
        // Segment 1 in L1 (as after one request through the router).
        let primed = await film.routes.answer(HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/v/film/360p/00001.ts"), client: film.routes.client(of: nil))
        #expect(primed.status == .ok)
        let channel = try Self.connection(film.routes)
        defer { _ = try? channel.finish() }
        let get = { (path: String) in ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n") }

        try channel.writeInbound(get("/v/film/360p/00001.ts"))
        let answer = try Self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.contains("Content-Length: \(film.segment(1).count)\r\n") && answer.contains("Server: StreamGate\r\n"))
        #expect(answer.hasSuffix(String(decoding: film.segment(1), as: UTF8.self)), "the body follows the head")
        #expect(try Self.handedOn(channel).isEmpty, "answered here, nothing for the router")

        // A miss (segment 2 is not in L1), then a hit behind it: both go to the router, in order.
        var both = get("/v/film/360p/00002.ts")
        both.writeImmutableBuffer(get("/v/film/360p/00001.ts"))
        try channel.writeInbound(both)
        #expect(try Self.handedOn(channel) == ["/v/film/360p/00002.ts", "/v/film/360p/00001.ts"])
        #expect(try Self.written(channel).isEmpty)

        // The router answers both; from then on hits are answered here again.
        for _ in 0..<2 {
            try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
            try channel.writeOutbound(HTTPResponsePart.end(nil))
        }
        _ = try Self.written(channel)
        try channel.writeInbound(get("/v/film/360p/00001.ts"))
        #expect(try Self.written(channel).hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(try Self.handedOn(channel).isEmpty)
        #expect(film.routes.statistics.fastPath == 2)
    }

    @Test("a head split across reads is answered once whole; a request the fast path does not read sends the rest of the connection to the decoder")
    func handlerPieces() async throws {
        let film = try FilmFixture(options: OriginOptions(l1Bytes: 64 << 20, warmSegments: 0))
        film.routes.announcements(listening: true)
        _ = await film.routes.answer(HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/v/film/360p/00001.ts"), client: film.routes.client(of: nil))
        let channel = try Self.connection(film.routes)
        defer { _ = try? channel.finish() }

        for piece in ["GET /v/film/360p/00001.ts HTTP/1.1\r\nRan", "ge: bytes=0-3\r\n", "\r\n"] {
            #expect(try Self.written(channel).isEmpty)
            try channel.writeInbound(ByteBuffer(string: piece))
        }
        let partial = try Self.written(channel)
        #expect(partial.hasPrefix("HTTP/1.1 206 Partial Content\r\n") && partial.contains("Content-Range: bytes 0-3/\(film.segment(1).count)\r\n"))

        // A POST: the decoder's, and so is everything after it on this connection, hits included.
        try channel.writeInbound(ByteBuffer(string: "POST /v/film/360p/00001.ts HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /v/film/360p/00001.ts HTTP/1.1\r\n\r\n"))
        var heads: [String] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            if case .head(let request) = part { heads.append("\(request.method) \(request.path ?? "")") }
        }
        #expect(heads == ["POST /v/film/360p/00001.ts", "GET /v/film/360p/00001.ts"])
        #expect(try Self.written(channel).isEmpty)
    }

    @Test("paths outside playback are never answered here, even when the grammar would call them not found")
    func otherRoutesHandedOn() async throws {
        let film = try FilmFixture(options: OriginOptions(l1Bytes: 64 << 20, warmSegments: 0))
        let channel = try Self.connection(film.routes)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\n\r\n"))
        #expect(try Self.handedOn(channel) == ["/healthz"])
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        _ = try Self.written(channel)
        // A playback URL that names nothing is answered here: 404 from the grammar alone.
        try channel.writeInbound(ByteBuffer(string: "GET /v/film/../x.ts HTTP/1.1\r\n\r\n"))
        #expect(try Self.written(channel).hasPrefix("HTTP/1.1 404 Not Found\r\n"))
    }
}
