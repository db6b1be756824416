import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import Origin
import TestSupport

/// What one client can do to the server: hostile headers, slow or idle connections, too many of
/// them. Each test is named after what it prevents.
@Suite("origin: hostile clients")
struct HostileClientTests {
    static let tight = ConnectionLimits(idleTimeout: .milliseconds(1500), headerTimeout: .milliseconds(400), perClient: 4)

    @Test("a far-future If-Modified-Since does not stop the server (it is ignored), on every way in")
    func hugeDateCannotStopTheServer() async throws {
        let film = try FilmFixture()
        let routes = [film.routes, film.makeRoutes(options: film.routes.options) { $0.fastPath = false }]
        for routes in routes {
            routes.announcements(listening: true)
            try await withOrigin(film.application(routes: routes)) { origin in
                let port = origin.port
                for date in ["Thu, 01 Jan 999999999999 00:00:00 GMT", "Thu, 99 Jan 1994 99:99:99 GMT", "Thu, -1 Jan -400 00:00:00 GMT"] {
                    for path in ["/v/film/master.m3u8", "/v/film/360p/00001.ts"] {
                        // Twice: the second is an L1 hit, answered from the socket's bytes.
                        for _ in 0..<2 {
                            let raw = try await offPool {
                                let connection = try RawConnection(port: port, receiveBuffer: nil)
                                try connection.send("GET \(path) HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: \(date)\r\n\r\n")
                                return try connection.readResponse()
                            }
                            #expect(raw.head.hasPrefix("HTTP/1.1 200"), "\(date) \(path): \(raw.head)")
                        }
                    }
                }
                try await origin.client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            }
        }
    }

    @Test("HTTP dates: only IMF-fixdate with numbers of their fixed width, inside years 1–9999")
    func strictHTTPDates() {
        for text in [
            "Thu, 01 Jan 999999999999 00:00:00 GMT", "Thu, 01 Jan 99999 00:00:00 GMT", "Thu, 1 Jan 1994 00:00:00 GMT",
            "Thu, +1 Jan 1994 00:00:00 GMT", "Thu, 01 Jan 1994 0:00:00 GMT", "Thu, 01 Jan 0000 00:00:00 GMT",
            "Thu,  01 Jan 1994 00:00:00 GMT", "Thu, 01 Jan 1994 00:00:00:00 GMT", "Thu, 01 Jan 1994 00::00 GMT",
            "Thu, 01 Jan 1994 24:00:00 GMT", "Thu, 01 Jan 1994 00:00:00 UTC", "", " ",
        ] {
            #expect(HTTPSemantics.parseHTTPDate(text) == nil, "\(text)")
        }
        #expect(HTTPSemantics.parseHTTPDate("Fri, 31 Dec 9999 23:59:59 GMT") == 253_402_300_799)
        #expect(HTTPSemantics.parseHTTPDate("Mon, 01 Jan 0001 00:00:00 GMT") == -62_135_596_800)
        #expect(HTTPSemantics.epochSeconds(year: Int.max, month: 1, day: 1, hour: 0, minute: 0, second: 0) == nil)
        #expect(HTTPSemantics.epochSeconds(year: Int.min, month: 1, day: 1, hour: 0, minute: 0, second: 0) == nil)
    }

    @Test("a head sent a byte at a time is cut off after the header timeout; others are still served")
    func slowHeadsAreCutOff() async throws {
        let film = try FilmFixture()
        try await withOrigin(film.application(connections: Self.tight)) { origin in
            let port = origin.port
            let (closedAfter, received) = try await offPool { () -> (Double, Int) in
                let connection = try RawConnection(port: port, receiveBuffer: nil)
                let started = Date()
                // A byte every 100 ms: never idle, never a whole head.
                for byte in "GET /v/film/master.m3u8 HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa".utf8 {
                    guard (try? connection.send(String(decoding: [byte], as: UTF8.self))) != nil else { break }
                    usleep(100_000)
                    if Date().timeIntervalSince(started) > 3 { break }
                }
                let received = connection.readToEnd(pause: 0)
                return (Date().timeIntervalSince(started), received.count)
            }
            #expect(received == 0)
            #expect(closedAfter < 8, "closed after \(closedAfter) s (deadline 0.4 s; a loaded machine is slow to say so)")
            // (On a new connection: the test client's own, silent all along, was closed too.)
            let next = try await offPool {
                let connection = try RawConnection(port: port, receiveBuffer: nil)
                try connection.send("GET /v/film/master.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n")
                return try connection.readResponse()
            }
            #expect(next.head.hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test("a connection that never sends, or goes quiet after its answer, is closed; one waiting for its answer is not")
    func idleConnectionsAreClosed() async throws {
        let film = try FilmFixture()
        try await withOrigin(film.application(connections: Self.tight)) { origin in
            let port = origin.port
            let silent = try await offPool { () -> Double in
                let connection = try RawConnection(port: port, receiveBuffer: nil)
                let started = Date()
                _ = connection.readToEnd(pause: 0)
                return Date().timeIntervalSince(started)
            }
            #expect(silent < 8, "a silent connection stayed \(silent) s")
            let quiet = try await offPool { () -> Double in
                let connection = try RawConnection(port: port, receiveBuffer: nil)
                try connection.send("GET /v/film/master.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n")
                _ = try connection.readResponse()
                let answered = Date()
                _ = connection.readToEnd(pause: 0)
                return Date().timeIntervalSince(answered)
            }
            #expect(quiet > 1 && quiet < 10, "closed \(quiet) s after its answer (idle timeout 1.5 s)")
            // Kept alive and used more often than the idle timeout: never closed.
            let kept = try await offPool { () -> Int in
                let connection = try RawConnection(port: port, receiveBuffer: nil)
                var answers = 0
                for _ in 0..<6 {
                    try connection.send("GET /v/film/360p/00001.ts HTTP/1.1\r\nHost: t\r\n\r\n")
                    if (try? connection.readResponse())?.head.hasPrefix("HTTP/1.1 200") == true { answers += 1 }
                    usleep(200_000)
                }
                return answers
            }
            #expect(kept == 6)
        }
    }

    @Test("one client cannot hold more than its share of connections; they come back as it closes them")
    func oneClientCannotTakeEveryConnection() async throws {
        let film = try FilmFixture()
        var limits = Self.tight
        limits.headerTimeout = .seconds(30)
        limits.idleTimeout = .seconds(30)
        try await withOrigin(film.application(connections: limits)) { origin in
            let port = origin.port
            let outcome = try await offPool { () -> (refused: Int, servedAfter: Bool) in
                let held = try (0..<4).map { _ in try RawConnection(port: port, receiveBuffer: nil) }
                usleep(200_000)
                // Beyond the cap: accepted by the kernel, closed at once by the server.
                var refused = 0
                for _ in 0..<3 {
                    let extra = try RawConnection(port: port, receiveBuffer: nil)
                    _ = try? extra.send("GET /v/film/master.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n")
                    if extra.readToEnd(pause: 0).isEmpty { refused += 1 }
                }
                held.forEach { $0.close() }
                // The server counts a connection closed once it has seen it close: on a loaded
                // machine that takes a moment, so try for a while.
                var servedAfter = false
                for _ in 0..<40 where !servedAfter {
                    let again = try RawConnection(port: port, receiveBuffer: nil)
                    try? again.send("GET /v/film/master.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n")
                    servedAfter = (try? again.readResponse())?.head.hasPrefix("HTTP/1.1 200") == true
                    if !servedAfter { usleep(250_000) }
                }
                return (refused, servedAfter)
            }
            #expect(outcome.refused == 3)
            #expect(outcome.servedAfter)
        }
    }

    @Test("past the server's total, a new connection waits in the backlog and is served once another closes")
    func totalCapWaitsInTheBacklog() async throws {
        let film = try FilmFixture()
        let limits = ConnectionLimits(idleTimeout: .seconds(30), headerTimeout: .seconds(30), perClient: 0, total: 3)
        try await withOrigin(film.application(connections: limits)) { origin in
            let port = origin.port
            let outcome = try await offPool { () -> (waited: Bool, servedAfter: Bool) in
                let held = try (0..<3).map { _ in try RawConnection(port: port, receiveBuffer: nil) }
                usleep(200_000)
                // The kernel completes the handshake; the server does not accept it yet.
                let waiting = try RawConnection(port: port, receiveBuffer: nil)
                try waiting.send("GET /v/film/master.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n")
                usleep(500_000)
                let early = waiting.readAvailable()
                held[0].close()
                let answer = try? waiting.readResponse()
                held.forEach { $0.close() }
                return (early.isEmpty, answer?.head.hasPrefix("HTTP/1.1 200") == true)
            }
            #expect(outcome.waited, "not answered while three connections were open")
            #expect(outcome.servedAfter, "answered once one of them closed")
        }
    }

    @Test("clients are told apart by IPv4 address and IPv6 /64; an IPv4-mapped address is its IPv4 address")
    func clientKeys() throws {
        func key(_ ip: String) throws -> ClientKey? { ClientKey(try SocketAddress(ipAddress: ip, port: 1)) }
        #expect(try key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9"))
        #expect(try key("2001:db8:1:2::1") != key("2001:db8:1:3::1"))
        #expect(try key("::ffff:192.0.2.7") == key("192.0.2.7"))
        #expect(try key("192.0.2.7") != key("192.0.2.8"))
        #expect(try key("192.0.2.7")?.description == "192.0.2.7")
        #expect(try key("2001:db8:1:2::1")?.description == "2001:db8:1:2::/64")
        #expect(ClientKey(nil) == nil)
        #expect(try key("127.0.0.9")?.isLoopback == true && key("::1")?.isLoopback == true && key("::2")?.isLoopback == false)
        let table = ClientConnections(perClient: 2)
        let client = try #require(try key("192.0.2.7"))
        #expect(table.open(client) && table.open(client) && !table.open(client))
        table.close(client)
        #expect(table.held(by: client) == 1 && table.open(client))
    }
}
