import Foundation

// The source channel: how a worker gives its sandboxed transcode child (no network, no sockets of
// its own) the bytes of a source it reads from elsewhere, an object in a bucket. One socketpair
// (SOCK_STREAM) made by the worker; the child's end is its descriptor 3. The child asks, the
// worker answers, one request at a time. In Jobs beside the events protocol, because both sides
// import it: the worker (Farm) serves, `streamgate transcode --source-channel 3` reads.
//
// Every integer is big-endian. A request is one fixed 16-byte frame:
//
//   offset size field
//   0      1    op        1 = size (the first exchange), 2 = read
//   1      3    reserved  0
//   4      4    length    size: 0; read: 1 … maxRead bytes
//   8      8    offset    size: 0; read: 0 … the source's size
//
// An answer is a 16-byte header, then `count` bytes:
//
//   0      1    kind      1 = size, 2 = bytes, 3 = error
//   1      3    reserved  0
//   4      4    count     size: 0; bytes: min(length, size − offset); error: 1 … 4096 (UTF-8)
//   8      8    value     size: the source's size; bytes: the request's offset; error: 0
//
// The child is hostile (it parses hostile media): a request frame that breaks any rule above ends
// the channel, so the worker never allocates more than one answer of maxRead bytes for it.

/// The source channel's constants and the socketpair it runs on.
public enum SourceChannel {
    /// The descriptor the child reads the channel on: its first after the standard ones.
    public static let childDescriptor: Int32 = 3
    /// The largest read a child may ask for (and the child reader's window): 1 MiB, a sealed
    /// source's default chunk, so one request serves one chunk or sixteen of libavformat's reads.
    public static let maxRead = 1 << 20
    /// The longest error message an answer carries; longer ones are cut.
    public static let maxErrorLength = 4096
    /// The length of a request frame and of an answer's header.
    public static let frameLength = 16

    /// A connected pair of stream sockets, both close-on-exec: the worker keeps `worker` and gives
    /// `child` to the child as ``childDescriptor`` (then closes its own copy of it).
    public static func makePair() throws(SourceChannelError) -> (worker: Int32, child: Int32) {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw SourceChannelError("socketpair: \(String(cString: strerror(errno)))")
        }
        return (ends[0], ends[1])
    }
}

/// A source channel broken by the side that reports it: a frame against the rules, or a peer gone.
public struct SourceChannelError: Error, CustomStringConvertible, Sendable, Equatable {
    public let reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { "source channel: \(reason)" }
}

/// What a child asks of its worker.
public enum SourceChannelRequest: Sendable, Equatable {
    /// The source's size: always the first request.
    case size
    /// `length` bytes at `offset`; the answer holds fewer only where the source ends.
    case read(offset: Int, length: Int)

    static let sizeOp: UInt8 = 1
    static let readOp: UInt8 = 2

    /// The request as its 16-byte frame.
    public var frame: [UInt8] {
        switch self {
        case .size: SourceChannelFrame.encode(Self.sizeOp, count: 0, value: 0)
        case .read(let offset, let length): SourceChannelFrame.encode(Self.readOp, count: UInt32(length), value: UInt64(offset))
        }
    }

    /// Decodes one request frame from a child, refusing anything the rules do not allow: a frame
    /// of the wrong length, an unknown op, reserved bytes set, a size request with fields, a read
    /// of 0 or more than `maxRead` bytes, or at an offset past `size`. The errors name the field.
    public static func decode(_ frame: some Collection<UInt8>, size: Int, maxRead: Int = SourceChannel.maxRead) throws(SourceChannelError) -> SourceChannelRequest {
        let fields = try SourceChannelFrame(frame, what: "request")
        switch fields.kind {
        case sizeOp:
            guard fields.count == 0, fields.value == 0 else {
                throw SourceChannelError("request frame: a size request has length \(fields.count) and offset \(fields.value); both must be 0")
            }
            return .size
        case readOp:
            guard (1...UInt32(clamping: maxRead)).contains(fields.count) else {
                throw SourceChannelError("request frame: field 'length' is \(fields.count); a read is 1…\(maxRead) bytes")
            }
            guard fields.value <= UInt64(max(0, size)) else {
                throw SourceChannelError("request frame: field 'offset' is \(fields.value), past the source's \(size) bytes")
            }
            return .read(offset: Int(fields.value), length: Int(fields.count))
        default:
            throw SourceChannelError("request frame: field 'op' is \(fields.kind); 1 (size) and 2 (read) are the ops")
        }
    }
}

/// The header of a worker's answer.
public enum SourceChannelAnswer: Sendable, Equatable {
    case size(Int)
    /// `count` bytes of the source at `offset` follow.
    case bytes(offset: Int, count: Int)
    /// A message of `length` bytes follows: why the read failed.
    case error(length: Int)

    static let sizeKind: UInt8 = 1
    static let bytesKind: UInt8 = 2
    static let errorKind: UInt8 = 3

    /// The answer's 16-byte header.
    public var header: [UInt8] {
        switch self {
        case .size(let size): SourceChannelFrame.encode(Self.sizeKind, count: 0, value: UInt64(size))
        case .bytes(let offset, let count): SourceChannelFrame.encode(Self.bytesKind, count: UInt32(count), value: UInt64(offset))
        case .error(let length): SourceChannelFrame.encode(Self.errorKind, count: UInt32(length), value: 0)
        }
    }

    /// Decodes the header answering `request` on a source of `size` bytes (nil before the size is
    /// known): exactly the answer the request calls for, or an error answer; anything else means
    /// the two sides are out of step.
    public static func decode(_ header: some Collection<UInt8>, answering request: SourceChannelRequest, size: Int?) throws(SourceChannelError) -> SourceChannelAnswer {
        let fields = try SourceChannelFrame(header, what: "answer")
        switch (fields.kind, request) {
        case (errorKind, _):
            guard (1...UInt32(SourceChannel.maxErrorLength)).contains(fields.count), fields.value == 0 else {
                throw SourceChannelError("answer: an error of \(fields.count) bytes (1…\(SourceChannel.maxErrorLength) allowed) and value \(fields.value)")
            }
            return .error(length: Int(fields.count))
        case (sizeKind, .size):
            guard fields.count == 0, fields.value <= UInt64(Int.max) else {
                throw SourceChannelError("answer: a size of \(fields.value) with \(fields.count) bytes following")
            }
            return .size(Int(fields.value))
        case (bytesKind, .read(let offset, let length)):
            let expected = max(0, min(length, (size ?? 0) - offset))
            guard fields.value == UInt64(offset), fields.count == UInt32(expected) else {
                throw SourceChannelError("answer: \(fields.count) bytes at \(fields.value) for a read of \(length) at \(offset) (\(expected) expected)")
            }
            return .bytes(offset: offset, count: expected)
        default:
            throw SourceChannelError("answer: kind \(fields.kind) does not answer \(request)")
        }
    }
}

/// The fields every frame has: a kind, three reserved zero bytes, a 32-bit count, a 64-bit value.
struct SourceChannelFrame {
    let kind: UInt8
    let count: UInt32
    let value: UInt64

    init(_ frame: some Collection<UInt8>, what: String) throws(SourceChannelError) {
        let bytes = Array(frame)
        guard bytes.count == SourceChannel.frameLength else {
            throw SourceChannelError("\(what) frame: \(bytes.count) bytes; a frame is \(SourceChannel.frameLength)")
        }
        guard bytes[1] == 0, bytes[2] == 0, bytes[3] == 0 else {
            throw SourceChannelError("\(what) frame: the reserved bytes 1…3 are not 0")
        }
        kind = bytes[0]
        count = bytes[4..<8].reduce(0) { $0 << 8 | UInt32($1) }
        value = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func encode(_ kind: UInt8, count: UInt32, value: UInt64) -> [UInt8] {
        [kind, 0, 0, 0] + withUnsafeBytes(of: count.bigEndian) { Array($0) } + withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}

/// Blocking I/O on one end of the channel: whole frames or nothing, EINTR retried, no SIGPIPE.
enum SourceChannelIO {
    /// Fills `buffer`; returns the bytes read, fewer only when the peer closed (0: closed before
    /// the first). Throws on an error of the socket.
    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SourceChannelError) -> Int {
        var done = 0
        while done < buffer.count {
            let got = recv(fd, buffer.baseAddress! + done, buffer.count - done, 0)
            if got > 0 {
                done += got
            } else if got == 0 {
                break
            } else if errno != EINTR {
                // A peer gone with bytes unread is a reset: it closed, as far as this side cares.
                if errno == ECONNRESET { break }
                throw SourceChannelError("receive: \(String(cString: strerror(errno)))")
            }
        }
        return done
    }

    /// Sends all of `bytes`; throws when the peer has gone (EPIPE, ECONNRESET) or the socket failed.
    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SourceChannelError) {
        var done = 0
        while done < bytes.count {
            let sent = Glibc.send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            if sent >= 0 {
                done += sent
            } else if errno != EINTR {
                throw SourceChannelError("send: \(String(cString: strerror(errno)))")
            }
        }
    }
}
