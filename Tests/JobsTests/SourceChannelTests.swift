import Foundation
import TestSupport
import Testing
import Vault
@testable import Jobs

/// The source channel in one process, over a real socketpair: the child's reader on one end, the
/// worker's server on the other, serving a real file. What the child reads is the file; what the
/// source says when it fails reaches the child word for word; a child that breaks the protocol
/// loses the channel, and the worker logs why.
@Suite("source channel: a worker serves a source's bytes to its child")
struct SourceChannelTests {
    /// A file whose every byte is a function of its offset, served on a fresh channel.
    final class Served {
        let path: String
        let bytes: [UInt8]
        let log = LogRecorder()
        let server: SourceChannelServer
        /// The child's end, for the test to use as the child would (or to send it hostile frames).
        let childEnd: Int32

        init(count: Int) throws {
            path = NSTemporaryDirectory() + "sg-channel-\(UUID().uuidString)"
            bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 9) }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let ends = try SourceChannel.makePair()
            childEnd = ends.child
            server = SourceChannelServer(descriptor: ends.worker, source: try RandomAccessFile(path: path), name: "s3://bucket/clip.mp4", logger: log.logger())
        }

        deinit { unlink(path) }

        /// Sends raw bytes on the child's end, as a hostile child would.
        func send(_ frame: [UInt8]) {
            _ = frame.withUnsafeBytes { Glibc.send(childEnd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    @Test("the size first, then reads of any size and offset: exactly the file, 0 at the end, one exchange per window")
    func readsTheSource() async throws {
        let served = try Served(count: 3 << 20 + 123)
        let expected = served.bytes
        let (requests, ok) = try await offPool { [childEnd = served.childEnd] () -> (Int, Bool) in
            let reader = try SourceChannelReader(descriptor: childEnd, name: "s3://bucket/clip.mp4")
            var copy = [UInt8](repeating: 0, count: expected.count)
            var offset = 0
            while offset < copy.count {
                let got = try copy.withUnsafeMutableBytes { try reader.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: $0[offset..<min($0.count, offset + 65_536)])) }
                guard got > 0 else { break }
                offset += got
            }
            var tail = [UInt8](repeating: 0, count: 1000)
            let short = try tail.withUnsafeMutableBytes { try reader.read(at: expected.count - 10, into: $0) }
            let atEnd = try tail.withUnsafeMutableBytes { try reader.read(at: expected.count, into: $0) }
            let past = try tail.withUnsafeMutableBytes { try reader.read(at: expected.count + 5000, into: $0) }
            // Backwards, across a window's edge.
            let back = try tail.withUnsafeMutableBytes { try reader.read(at: (1 << 20) - 500, into: $0) }
            let ok = reader.size == expected.count && copy == expected && short == 10 && atEnd == 0 && past == 0
                && back == 1000 && Array(tail) == Array(expected[((1 << 20) - 500)..<((1 << 20) + 500)])
            return (reader.requests, ok)
        }
        #expect(ok)
        // The size, four 1 MiB windows forward (the tail is in the last), one backwards.
        #expect(requests == 1 + 4 + 1, "\(requests) exchanges")
        #expect(await served.server.finished() == .childClosed)
        #expect(served.server.requestsServed == requests)
        #expect(served.log.errors.isEmpty, "\(served.log.errors)")
    }

    @Test("an empty source: size 0, every read 0")
    func emptySource() async throws {
        let served = try Served(count: 0)
        let result = try await offPool { [childEnd = served.childEnd] () -> [Int] in
            let reader = try SourceChannelReader(descriptor: childEnd, name: "empty")
            var buffer = [UInt8](repeating: 0, count: 16)
            return [reader.size, try buffer.withUnsafeMutableBytes { try reader.read(at: 0, into: $0) }, reader.requests]
        }
        #expect(result == [0, 0, 1])
        #expect(await served.server.finished() == .childClosed)
    }

    @Test("a source that fails: the child's read fails with the worker's message, word for word; the channel goes on")
    func failuresPassThrough() async throws {
        let served = try Served(count: 2 << 20)
        let path = served.path
        let head = Array(served.bytes.prefix(4096))
        let (reason, recovered) = try await offPool { [childEnd = served.childEnd] () -> (String, Bool) in
            let reader = try SourceChannelReader(descriptor: childEnd, name: "s3://bucket/clip.mp4")
            // The file shrinks under the server: its reads come back short, which it must not pass off as bytes.
            guard truncate(path, 1 << 20) == 0 else { throw TestError("truncate: \(errno)") }
            var buffer = [UInt8](repeating: 0, count: 4096)
            var reason = ""
            do {
                _ = try buffer.withUnsafeMutableBytes { try reader.read(at: (3 << 19), into: $0) }
            } catch let error as SourceUnavailableError {
                reason = error.source == "s3://bucket/clip.mp4" ? error.reason : "wrong source \(error.source)"
            }
            let again = try buffer.withUnsafeMutableBytes { try reader.read(at: 0, into: $0) }
            return (reason, again == 4096 && buffer == head)
        }
        // The window from 1.5 MiB: the 512 KiB left of the size the server opened with.
        #expect(reason == "the source gave 0 bytes for a read of 524288 at 1572864", "\(reason)")
        #expect(recovered)
    }

    @Test("a child's frame against the rules ends the channel at once, logged with the field and the reason", arguments: [
        (SourceChannelFrame.encode(9, count: 0, value: 0), "field 'op' is 9"),
        (SourceChannelFrame.encode(2, count: 0, value: 0), "field 'length' is 0"),
        (SourceChannelFrame.encode(2, count: UInt32(SourceChannel.maxRead + 1), value: 0), "field 'length' is 1048577"),
        (SourceChannelFrame.encode(2, count: .max, value: 0), "field 'length' is 4294967295"),
        (SourceChannelFrame.encode(2, count: 16, value: 1001), "field 'offset' is 1001, past the source's 1000 bytes"),
        (SourceChannelFrame.encode(2, count: 16, value: .max), "field 'offset' is 18446744073709551615"),
        (SourceChannelFrame.encode(1, count: 4, value: 0), "a size request has length 4"),
        ([2, 0, 1, 0] + Array(SourceChannelFrame.encode(2, count: 1, value: 0).dropFirst(4)), "reserved bytes"),
        (Array(SourceChannelFrame.encode(2, count: 1, value: 0).prefix(7)), "inside a request frame (7 of 16 bytes)"),
    ])
    func hostileFramesEndTheChannel(frame: [UInt8], reason: String) async throws {
        let served = try Served(count: 1000)
        // A proper size request first: the channel is up, and answering it changes nothing.
        served.send(SourceChannelRequest.size.frame)
        served.send(frame)
        if frame.count < SourceChannel.frameLength { shutdown(served.childEnd, Int32(SHUT_WR)) }
        let ending = await served.server.finished()
        guard case .refused(let why) = ending else {
            Issue.record("ended \(ending), not refused")
            return
        }
        #expect(why.contains(reason), "\(why)")
        #expect(served.log.lines.contains { $0.hasPrefix("warning") && $0.contains(reason) }, "\(served.log.lines)")
        // The size's answer, then nothing: the worker's end is closed.
        let rest = try await offPool { [childEnd = served.childEnd] () -> [UInt8] in
            var all: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 64)
            while true {
                let got = recv(childEnd, &buffer, buffer.count, 0)
                if got <= 0 { break }
                all += buffer[0..<got]
            }
            return all
        }
        #expect(rest == SourceChannelAnswer.size(1000).header)
        close(served.childEnd)
    }

    @Test("stopped by the worker: the child's next read fails saying the channel closed")
    func stopped() async throws {
        let served = try Served(count: 3 << 20)
        served.server.stop()
        #expect(await served.server.finished() == .stopped)
        let message = try await offPool { [childEnd = served.childEnd] () -> String in
            do {
                _ = try SourceChannelReader(descriptor: childEnd, name: "s3://bucket/clip.mp4")
                return "opened"
            } catch {
                return "\(error)"
            }
        }
        #expect(message.hasPrefix("s3://bucket/clip.mp4: the source channel from the worker failed: "), "\(message)")
    }

    @Test("frames round-trip; answers that do not answer the request are refused by the child")
    func framesRoundTrip() throws {
        let read = SourceChannelRequest.read(offset: 5 << 30, length: 4096)
        #expect(try SourceChannelRequest.decode(read.frame, size: 6 << 30) == read)
        #expect(try SourceChannelRequest.decode(SourceChannelRequest.size.frame, size: 0) == .size)
        #expect(try SourceChannelAnswer.decode(SourceChannelAnswer.size(7).header, answering: .size, size: nil) == .size(7))
        let bytes = SourceChannelAnswer.bytes(offset: 100, count: 50)
        #expect(try SourceChannelAnswer.decode(bytes.header, answering: .read(offset: 100, length: 4096), size: 150) == bytes)
        #expect(throws: SourceChannelError.self) {
            try SourceChannelAnswer.decode(bytes.header, answering: .read(offset: 100, length: 4096), size: 151)
        }
        #expect(throws: SourceChannelError.self) { try SourceChannelAnswer.decode(bytes.header, answering: .size, size: nil) }
        #expect(throws: SourceChannelError.self) {
            try SourceChannelAnswer.decode(SourceChannelAnswer.error(length: SourceChannel.maxErrorLength + 1).header, answering: .size, size: nil)
        }
    }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
