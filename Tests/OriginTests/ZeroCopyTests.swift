import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TestSupport
@testable import Origin

/// Segments sent by lending their pages to the socket (``PageLender``): the same bytes as copied
/// ones, in order, whatever the client reads at what pace, and after L1 has let them go.
@Suite("origin: segments sent without copying")
struct ZeroCopyTests {
    /// Large enough to be lent (``PageMappedMemory/minimumBytes``).
    static let segmentBytes = 300_000

    @Test("page-mapped memory: large objects get a mapping of their own, which goes when they do; small ones do not")
    func pageMappedMemory() throws {
        let small = PageMappedMemory.copy([UInt8](repeating: 7, count: 1_000))
        #expect(!small.lendable && small.buffer.readableBytes == 1_000)

        let bytes = FilmFixture.segment(3, generation: 0, size: 200_000)
        var large: ObjectBytes? = PageMappedMemory.copy(bytes)
        #expect(large?.lendable == true)
        #expect(large.map { Array($0.buffer.readableBytesView) } == bytes)
        let address = large!.buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!) }
        #expect(Self.isMapped(address) && Self.isMapped(address + 199_999) && (address - 16) % 4096 == 0, "the bytes start 16 bytes into a mapping")
        large = nil
        #expect(!Self.isMapped(address), "unmapped (not kept for reuse) once the last reference goes")

        let read = try PageMappedMemory.make(size: 100_000) { target in
            target.copyBytes(from: bytes.prefix(60_000))
            return 60_000
        }
        #expect(read.lendable && Array(read.buffer.readableBytesView) == Array(bytes.prefix(60_000)), "a short fill keeps what was written")
        #expect(throws: POSIXError.self) { try PageMappedMemory.make(size: 100_000) { _ in throw POSIXError(.EIO) } }
    }

    @Test("pipelined, ranged, HEAD and slowly read answers are the same bytes lent as routed, in order, all of them after the client half-closed")
    func sameBytesAsCopied() async throws {
        let options = OriginOptions(l1Bytes: 64 << 20, warmSegments: 0)
        let film = try FilmFixture(count: 6, segmentBytes: Self.segmentBytes, options: options)
        let routed = film.makeRoutes(options: options) { $0.fastPath = false }
        for routes in [film.routes, routed] { routes.announcements(listening: true) }
        let get = { (index: Int) in "GET /v/film/360p/\(FilmFixture.name(index)) HTTP/1.1\r\nHost: t\r\n" }
        // Three rounds of: segments 0, 3, 4, 5, a range of 1, the playlist; then a HEAD, last (its
        // Content-Length is the segment's, with no body after it). Over 5 MB in one go: more than
        // the server's socket takes before a slow client reads.
        let round = get(0) + "\r\n" + get(1) + "Range: bytes=1000-250999\r\n\r\n" + get(3) + "\r\n"
            + "GET /v/film/360p/index.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n" + get(4) + "\r\n" + get(5) + "\r\n"
        let requests = round + round + round + "HEAD /v/film/360p/\(FilmFixture.name(2)) HTTP/1.1\r\nHost: t\r\n\r\n"
        let lendableBytes = 3 * (4 * Self.segmentBytes + 250_000)

        func exchange(_ routes: OriginRoutes, readPause: useconds_t) async throws -> [FastPathTests.RawResponse] {
            try await withOrigin(film.application(routes: routes)) { origin in
                let port = origin.port
                for path in (0..<6).map({ "360p/\(FilmFixture.name($0))" }) + ["360p/index.m3u8"] {
                    try await origin.client.execute(uri: "/v/film/\(path)", method: .get) { #expect($0.status == .ok) }
                }
                let before = routes.statistics.lentBytes
                let bytes = try await offPool {
                    let connection = try RawConnection(port: port, receiveBuffer: readPause > 0 ? 16_384 : nil)
                    try connection.send(requests)
                    connection.finishSending()
                    return connection.readToEnd(pause: readPause)
                }
                if readPause > 0, routes.options.fastPath {
                    let lent = routes.statistics.lentBytes - before
                    #expect(lent > 0 && lent < lendableBytes, "some bytes lent, the rest (a full socket) copied through NIO: \(lent) lent")
                }
                return try FastPathTests.split(bytes)
            }
        }

        let fast = try await exchange(film.routes, readPause: 0)
        let slow = try await exchange(film.routes, readPause: 1_000)
        let reference = try await exchange(routed, readPause: 0)
        let slowRouted = try await exchange(routed, readPause: 1_000)

        let one: [(status: String, body: [UInt8])] = [
            ("200", film.segment(0)), ("206", Array(film.segment(1)[1000...250_999])), ("200", film.segment(3)),
            ("200", reference[3].body), ("200", film.segment(4)), ("200", film.segment(5)),
        ]
        let expected = one + one + one + [("200", [])]
        let runs = [("lent", fast), ("lent, read slowly", slow), ("router", reference), ("router, read slowly", slowRouted)]
        for (name, answers) in runs {
            try #require(answers.count == expected.count, "\(name): \(answers.count) answers")
            for (index, answer) in answers.enumerated() {
                #expect(answer.head.hasPrefix("HTTP/1.1 \(expected[index].status) "), "\(name) #\(index): \(answer.head.prefix(40))")
                #expect(answer.body == expected[index].body, "\(name) #\(index): \(answer.body.count) bytes")
                #expect(Self.withoutDate(answer.head) == Self.withoutDate(reference[index].head), "\(name) #\(index)")
            }
        }
        #expect(String(decoding: reference[3].body, as: UTF8.self).hasPrefix("#EXTM3U"))
        #expect(film.routes.statistics.lent >= 15, "\(film.routes.statistics)")
        #expect(routed.statistics.lent == 0 && routed.statistics.fastPath == 0, "\(routed.statistics)")
    }

    @Test("a lent segment arrives intact after L1 let it go and its memory was unmapped and mapped again")
    func intactAfterEviction() async throws {
        let film = try FilmFixture(count: 8, segmentBytes: Self.segmentBytes, options: OriginOptions(l1Bytes: 64 << 20, warmSegments: 0))
        film.routes.announcements(listening: true)
        let routes = film.routes
        let version = film.version.version
        try await withOrigin(film.application()) { origin in
            let port = origin.port
            try await origin.client.execute(uri: "/v/film/360p/00000.ts", method: .get) { #expect($0.status == .ok) }
            let key = "film/\(version)/360p/00000.ts"
            let address = try #require(routes.cache.get(key)).body.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!) }

            // A client whose connection has carried a few segments (so its windows have grown)
            // asks for segment 0 and then reads nothing for a while: what the socket took is in
            // flight, in the kernel, by reference to L1's pages.
            let connection = try await offPool { try RawConnection(port: port, receiveBuffer: nil) }
            for _ in 0..<3 {
                try await offPool {
                    try connection.send("GET /v/film/360p/00000.ts HTTP/1.1\r\nHost: t\r\n\r\n")
                    #expect(try connection.readResponse().body == film.segment(0))
                }
            }
            let before = routes.statistics
            try await offPool { try connection.send("GET /v/film/360p/00000.ts HTTP/1.1\r\nHost: t\r\n\r\n") }
            try await Self.waitFor { routes.statistics.lent > before.lent }
            let lentNow = routes.statistics.lentBytes - before.lentBytes
            #expect(lentNow == Self.segmentBytes, "the socket took the whole body at once (\(lentNow) bytes lent)")

            // L1 lets it go; nothing else holds the body, so its mapping goes. New objects are
            // mapped (at that address, often) and filled with other bytes.
            routes.cache.remove(key)
            #expect(!Self.isMapped(address), "segment 0's memory is unmapped")
            for index in 1..<8 {
                try await origin.client.execute(uri: "/v/film/360p/\(FilmFixture.name(index))", method: .get) { #expect($0.status == .ok) }
            }

            let late = try await offPool { try connection.readResponse() }
            #expect(late.head.hasPrefix("HTTP/1.1 200 "))
            #expect(late.body.count == Self.segmentBytes)
            #expect(late.body == film.segment(0), "the lent pages kept segment 0's bytes")
            connection.close()
        }
    }

    // MARK: - Helpers

    static func withoutDate(_ head: String) -> String {
        head.split(separator: "\r\n").filter { !$0.hasPrefix("Date: ") }.joined(separator: "\r\n")
    }

    /// Whether `address` lies in a mapping of this process (msync fails with ENOMEM where nothing
    /// is mapped). Another test's mmap could land there the moment a mapping goes; checked at once,
    /// that window is microseconds wide.
    static func isMapped(_ address: UInt) -> Bool {
        msync(UnsafeMutableRawPointer(bitPattern: address & ~UInt(4095)), 4096, MS_ASYNC) == 0
    }

    static func waitFor(_ condition: @escaping () -> Bool) async throws {
        for _ in 0..<500 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("waited 5 s in vain")
    }
}

/// A blocking HTTP/1.1 client connection on 127.0.0.1, for use off Swift's pool (``offPool``):
/// blocking in `recv` on one of Swift's few pool threads would stall the server under test.
final class RawConnection: @unchecked Sendable {
    private let socket: CInt
    private var buffered: [UInt8] = []

    /// `receiveBuffer`: a small SO_RCVBUF makes the server meet a full socket often.
    init(port: Int, receiveBuffer: Int?) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(.EIO) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBuffer.map(CInt.init) {
            setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(socket)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    deinit { Glibc.close(socket) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard Glibc.send(socket, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw POSIXError(.EIO) }
    }

    /// No more requests (the server closes once it has answered them).
    func finishSending() { shutdown(socket, Int32(SHUT_WR)) }

    func close() { shutdown(socket, Int32(SHUT_RDWR)) }

    /// Everything until the server closes, `pause` µs between reads of at most 8 KiB.
    func readToEnd(pause: useconds_t) -> [UInt8] {
        var received = buffered
        buffered = []
        var chunk = [UInt8](repeating: 0, count: pause > 0 ? 8_192 : 65_536)
        while true {
            let count = recv(socket, &chunk, chunk.count, 0)
            if count <= 0 { break }
            received += chunk[0..<count]
            if pause > 0 { usleep(pause) }
        }
        return received
    }

    /// Whatever has arrived by now, without waiting (kept for ``readResponse()`` too).
    func readAvailable() -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = recv(socket, &chunk, chunk.count, Int32(MSG_DONTWAIT))
        if count > 0 { buffered += chunk[0..<count] }
        return buffered
    }

    /// One response with a Content-Length.
    func readResponse() throws -> FastPathTests.RawResponse {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        func fill() throws {
            let count = recv(socket, &chunk, chunk.count, 0)
            guard count > 0 else { throw POSIXError(.ECONNRESET) }
            buffered += chunk[0..<count]
        }
        let separator = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            headEnd = buffered.indices.first { buffered[$0...].starts(with: separator) }
            if headEnd == nil { try fill() }
        }
        let head = String(decoding: buffered[..<headEnd!], as: UTF8.self)
        let length = FastPathTests.contentLength(in: head)
        let start = headEnd! + separator.count
        while buffered.count < start + length { try fill() }
        let response = FastPathTests.RawResponse(head: head, body: Array(buffered[start..<(start + length)]))
        buffered.removeFirst(start + length)
        return response
    }
}
