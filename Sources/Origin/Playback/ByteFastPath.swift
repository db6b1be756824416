import Foundation
import HTTPTypes
import NIOCore

// The byte-level fast path.
//
// ``PlaybackFastPath`` answers hits without a task or the router, but each request it sees has
// already been decoded by NIO's HTTP/1 parser into an `HTTPRequestHead` (every header a pair of
// Strings), converted to `HTTPRequest` by the HTTPTypes codec, and each answer goes back down the
// same way: converted to `HTTPResponseHead` and serialised by NIO's encoder. On the hot set that
// was a quarter of the origin's user time, spent on headers the answer never reads.
//
// ``ByteFastPath`` sits first in the pipeline, on the raw bytes. It finds each request head,
// reads the request line and only the headers a playback answer depends on, asks
// ``OriginRoutes/immediateResponse(to:client:)`` exactly as ``PlaybackFastPath`` does, and writes
// the answer as bytes (head, then the body buffer L1 holds: one `writev`). Whatever it does not
// answer it passes on, byte for byte, to the HTTP decoder and the router:
//
// - a bodyless GET or HEAD it does not answer (a miss, a refusal, `Connection: close`, HTTP/1.0,
//   or any request while one is still with the router: answers stay in order) is passed on whole;
// - anything else (another method, a body, a malformed or oversized head, a bare LF) turns it
//   into a pass-through for the rest of the connection, so the decoder sees every byte from that
//   request on and gives its usual answer or error.
//
// It assumes plain HTTP/1.1 on the socket: it must never sit in front of TLS.

/// The request-line and header facts ``ByteFastPath`` reads from one request head.
///
/// `package`, not internal: the fuzz harnesses (fuzz/) call ``parse(_:)`` and ``headEnd(in:)``
/// on arbitrary bytes.
package struct ByteRequestHead {
    package enum Parsed {
        /// A GET or HEAD with no body, that the fast path may try to answer.
        case answerable(HTTPRequest)
        /// A bodyless GET or HEAD that must go to the router whole (its head says
        /// something only the full path handles: `Connection: close`, HTTP/1.0, `Expect`…).
        case routerOnly
        /// Not understood here: the rest of the connection goes to the decoder as it is.
        case passThrough
    }

    /// The headers an answer depends on (``OriginRoutes/fileResponse(_:type:versioned:request:)``,
    /// ``OriginRoutes/finish(_:_:status:request:started:)``, the gate's token). Everything else a
    /// player sends (`Host`, `User-Agent`, `Accept`…) cannot change the answer and is skipped.
    private static let kept: [(lowercase: [UInt8], name: HTTPField.Name)] = [
        (Array("range".utf8), .range),
        (Array("if-range".utf8), .ifRange),
        (Array("if-none-match".utf8), .ifNoneMatch),
        (Array("if-modified-since".utf8), .ifModifiedSince),
        (Array("accept-encoding".utf8), .acceptEncoding),
        (Array("origin".utf8), .origin),
        (Array("authorization".utf8), .authorization),
    ]

    /// Parses one request head: `head` runs from the request line up to and including the blank
    /// line that ends it (CRLF CRLF), with every line ending in CRLF.
    package static func parse(_ head: UnsafeRawBufferPointer) -> Parsed {
        let cr = UInt8(ascii: "\r"), space = UInt8(ascii: " ")
        // Every line ends in CR LF; a CR alone is no line end (NIO's parser refuses it, and so must
        // this one: two parsers that split a head differently are a smuggling channel).
        func endsLine(_ at: Int) -> Bool { at + 1 < head.count && head[at + 1] == UInt8(ascii: "\n") }
        // The request line: METHOD SP target SP HTTP/1.x CRLF
        guard let lineEnd = index(of: cr, in: head, from: 0), endsLine(lineEnd) else { return .passThrough }
        guard let firstSpace = index(of: space, in: head, from: 0, to: lineEnd) else { return .passThrough }
        let method: HTTPRequest.Method
        if equals(head, 0, firstSpace, "GET") {
            method = .get
        } else if equals(head, 0, firstSpace, "HEAD") {
            method = .head
        } else {
            return .passThrough
        }
        let targetStart = firstSpace + 1
        guard let secondSpace = index(of: space, in: head, from: targetStart, to: lineEnd), secondSpace > targetStart,
              head[targetStart] == UInt8(ascii: "/")
        else { return .passThrough }
        for i in targetStart..<secondSpace where !isTargetByte(head[i]) { return .passThrough }
        var routerOnly = false
        if equals(head, secondSpace + 1, lineEnd, "HTTP/1.0") {
            routerOnly = true
        } else if !equals(head, secondSpace + 1, lineEnd, "HTTP/1.1") {
            return .passThrough
        }

        var fields = HTTPFields()
        var line = lineEnd + 2
        // The last line is the empty one (its CRLF ends the head).
        while line < head.count - 2 {
            guard let end = index(of: cr, in: head, from: line), endsLine(end) else { return .passThrough }
            guard let colon = index(of: UInt8(ascii: ":"), in: head, from: line, to: end), colon > line else { return .passThrough }
            for i in line..<colon where !isTokenByte(head[i]) { return .passThrough }
            var valueStart = colon + 1
            while valueStart < end, head[valueStart] == space || head[valueStart] == UInt8(ascii: "\t") { valueStart += 1 }
            var valueEnd = end
            while valueEnd > valueStart, head[valueEnd - 1] == space || head[valueEnd - 1] == UInt8(ascii: "\t") { valueEnd -= 1 }
            for i in valueStart..<valueEnd where !isValueByte(head[i]) { return .passThrough }

            switch colon - line {
            case 14 where equalsLowercased(head, line, colon, "content-length"):
                // Only an empty body keeps the request's end where the head ends.
                guard equals(head, valueStart, valueEnd, "0") else { return .passThrough }
            case 17 where equalsLowercased(head, line, colon, "transfer-encoding"):
                return .passThrough
            case 10 where equalsLowercased(head, line, colon, "connection"):
                // `close` (the router closes after answering) and `upgrade` are the router's.
                let value = String(decoding: UnsafeRawBufferPointer(rebasing: head[valueStart..<valueEnd]), as: UTF8.self).lowercased()
                if value.contains("close") || value.contains("upgrade") { routerOnly = true }
            case 6 where equalsLowercased(head, line, colon, "expect"), 7 where equalsLowercased(head, line, colon, "upgrade"):
                routerOnly = true
            default:
                for kept in kept where kept.lowercase.count == colon - line && equalsLowercased(head, line, colon, kept.lowercase) {
                    // Repeated, a header is combined by the codec's rules: the router's to apply.
                    if fields[kept.name] != nil { routerOnly = true }
                    let value = String(decoding: UnsafeRawBufferPointer(rebasing: head[valueStart..<valueEnd]), as: UTF8.self)
                    fields.append(HTTPField(name: kept.name, value: value))
                }
            }
            line = end + 2
        }
        if routerOnly { return .routerOnly }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: head[targetStart..<secondSpace]), as: UTF8.self)
        return .answerable(HTTPRequest(method: method, scheme: nil, authority: nil, path: target, headerFields: fields))
    }

    /// Where a complete head ends in `bytes` (the index after its CRLF CRLF); nil when it is not
    /// all there yet. `.failure` when the bytes cannot be a head this path reads (a bare LF, or a
    /// line starting with whitespace: an obsolete folded header), so the decoder must have them.
    package static func headEnd(in bytes: UnsafeRawBufferPointer) -> Result<Int?, HeadError> {
        let lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        var i = 0
        while let found = index(of: lf, in: bytes, from: i) {
            guard found > 0, bytes[found - 1] == cr else { return .failure(HeadError()) }
            if found >= 3, bytes[found - 2] == lf, bytes[found - 3] == cr { return .success(found + 1) }
            if found + 1 < bytes.count, bytes[found + 1] == UInt8(ascii: " ") || bytes[found + 1] == UInt8(ascii: "\t") {
                return .failure(HeadError())
            }
            i = found + 1
        }
        return .success(nil)
    }

    package struct HeadError: Error {}

    private static func index(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int? = nil) -> Int? {
        let end = end ?? bytes.count
        guard start < end, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + start, Int32(byte), end - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ text: StaticString) -> Bool {
        guard end - start == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { UnsafeRawBufferPointer(rebasing: bytes[start..<end]).elementsEqual($0) }
    }

    private static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ text: StaticString) -> Bool {
        text.withUTF8Buffer { equalsLowercased(bytes, start, end, $0) }
    }

    private static func equalsLowercased<C: Collection<UInt8>>(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ lowercase: C) -> Bool {
        guard end - start == lowercase.count else { return false }
        var i = start
        for expected in lowercase {
            var byte = bytes[i]
            if byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            guard byte == expected else { return false }
            i += 1
        }
        return true
    }

    /// RFC 9110's tchar: what a header name is made of.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// Visible ASCII, space, tab and obs-text: what a header value may hold.
    private static func isValueByte(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\t") || (byte >= 0x20 && byte != 0x7F)
    }

    /// Visible ASCII: what a request target is made of (no spaces, no controls, no obs-text).
    private static func isTargetByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F
    }
}

/// First in each HTTP/1.1 connection's pipeline, on the socket's bytes: answers playback hits with
/// ``OriginRoutes/immediateResponse(to:client:)`` before any HTTP decoding, and passes everything
/// else on to the decoder (see the top of this file). ``PlaybackFastPath``, above the codec,
/// installs it and keeps the count of requests with the router that it respects.
final class ByteFastPath: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// A head that has not ended within this many bytes goes to the decoder (which has its own limits).
    static let maximumHead = 16 * 1024

    private let routes: OriginRoutes
    /// `Server: …` and CRLF; empty when no name is given.
    private let serverLine: [UInt8]
    /// Knows how many requests are with the router.
    private let partner: PlaybackFastPath
    /// Bytes of a request head not complete yet.
    private var pending: ByteBuffer?
    /// Everything from here on goes to the decoder.
    private var passingThrough = false
    private var needsFlush = false
    /// Whether the handlers behind this one were given anything since the last read-complete:
    /// when every request of a read was answered here, they have nothing to complete.
    private var forwarded = false
    private var date = HTTPDateCache()
    /// Lend large L1 bodies to the socket (``PageLender``) rather than copy them.
    private let lendsPages: Bool
    /// The socket's descriptor, looked up on the first body to lend; nil inside: not known.
    private var socket: CInt??
    /// Whether NIO may hold bytes written to this connection. Only writes put them there: this
    /// handler's own, and those of the handlers behind it, which write only in answer to what
    /// this handler passed on. So it is set by either, and cleared when NIO says it holds none;
    /// while it is clear, lending need not ask NIO (a chain of dynamic casts) every time.
    private var nioMayHoldBytes = false

    init(routes: OriginRoutes, serverName: String?, partner: PlaybackFastPath) {
        self.routes = routes
        serverLine = serverName.map { Array("Server: \($0)\r\n".utf8) } ?? []
        self.partner = partner
        lendsPages = routes.options.zeroCopy
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if passingThrough {
            forwarded = true
            return context.fireChannelRead(data)
        }
        var buffer = unwrapInboundIn(data)
        if var earlier = pending {
            pending = nil
            earlier.writeBuffer(&buffer)
            buffer = earlier
        }
        while buffer.readableBytes > 0 {
            let found = buffer.withUnsafeReadableBytes { ByteRequestHead.headEnd(in: $0) }
            guard case .success(let end) = found else { return passOn(buffer, context: context) }
            guard let end else {
                if buffer.readableBytes > Self.maximumHead { return passOn(buffer, context: context) }
                pending = buffer
                return
            }
            let parsed = buffer.withUnsafeReadableBytes { ByteRequestHead.parse(UnsafeRawBufferPointer(rebasing: $0[..<end])) }
            switch parsed {
            case .passThrough:
                return passOn(buffer, context: context)
            case .answerable(let request):
                if partner.requestsWithRouter == 0, context.channel.isWritable,
                   let answer = routes.immediateResponse(to: request, client: partner.client, encodedHeads: true) {
                    buffer.moveReaderIndex(forwardBy: end)
                    let lent = write(answer, context: context)
                    routes.counters.withLockedValue {
                        $0.fromBytes += 1
                        if let lent {
                            $0.lent += 1
                            $0.lentBytes += lent
                        }
                    }
                    if let lent, lent > 0 { routes.metrics.lentBytes.increment(by: lent) }
                    continue
                }
                fallthrough
            case .routerOnly:
                let request = buffer.readSlice(length: end)!
                forwarded = true
                nioMayHoldBytes = true
                context.fireChannelRead(wrapInboundOut(request))
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        if forwarded || passingThrough {
            forwarded = false
            context.fireChannelReadComplete()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client stopped sending: the decoder gets what it sent of an unfinished head, to
        // judge it as it always does.
        if let event = event as? ChannelEvent, event == .inputClosed { flushPending(context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        flushPending(context: context)
        context.fireChannelInactive()
    }

    private func flushPending(context: ChannelHandlerContext) {
        guard let buffer = pending else { return }
        pending = nil
        passOn(buffer, context: context)
        forwarded = false
        context.fireChannelReadComplete()
    }

    private func passOn(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        passingThrough = true
        forwarded = true
        nioMayHoldBytes = true
        context.fireChannelRead(wrapInboundOut(buffer))
    }

    /// Writes an answer; when its body went by lending its pages, how many of its bytes did.
    private func write(_ answer: PlaybackResponse, context: ChannelHandlerContext) -> Int? {
        var head = context.channel.allocator.buffer(capacity: 384 + (answer.encodedHead?.readableBytes ?? 0))
        if let encoded = answer.encodedHead {
            head.writeImmutableBuffer(encoded)
        } else {
            HTTPHeadEncoding.write(status: answer.status, answer.headers, into: &head)
        }
        head.writeBytes(date.line())
        head.writeBytes(serverLine)
        head.writeStaticString("\r\n")
        if answer.lendsBody, let body = answer.body, body.readableBytes >= PageMappedMemory.minimumBytes,
           let lent = lend(head: head, body: body, context: context) {
            return lent
        }
        context.write(NIOAny(IOData.byteBuffer(head)), promise: nil)
        if let body = answer.body, body.readableBytes > 0 {
            context.write(NIOAny(IOData.byteBuffer(body)), promise: nil)
        }
        needsFlush = true
        nioMayHoldBytes = true
        return nil
    }

    /// Sends head and body straight to the socket, the body's pages lent (``PageLender``), when
    /// nothing is queued in NIO ahead of them; whatever the socket does not take at once goes
    /// through NIO after. Returns how many of the body's bytes were lent; nil when it cannot be
    /// done (nothing was sent).
    private func lend(head: ByteBuffer, body: ByteBuffer, context: ChannelHandlerContext) -> Int? {
        guard lendsPages else { return nil }
        if socket == nil {
            let found = ChannelSocket.descriptor(of: context.channel)
            socket = .some(found)
            if found == nil, ChannelSocket.firstMiss() {
                routes.logger.warning(
                    "segments are copied, not lent: the socket behind a connection could not be identified",
                    metadata: ["channel": "\(context.channel)"]
                )
            }
        }
        guard let socket = socket ?? nil, let lender = PageLender.current else { return nil }
        // Answers written earlier in this read go first; then NIO must hold nothing.
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        if nioMayHoldBytes {
            guard context.channel.bytesQueuedInNIO == 0 else { return nil }
            nioMayHoldBytes = false
        }
        let sent = head.withUnsafeReadableBytes { head in body.withUnsafeReadableBytes { body in lender.send(head: head, body: body, to: socket) } }
        let bodySent = max(sent - head.readableBytes, 0)
        if sent < head.readableBytes {
            context.write(NIOAny(IOData.byteBuffer(head.getSlice(at: head.readerIndex + sent, length: head.readableBytes - sent)!)), promise: nil)
            context.write(NIOAny(IOData.byteBuffer(body)), promise: nil)
        } else if bodySent < body.readableBytes {
            context.write(NIOAny(IOData.byteBuffer(body.getSlice(at: body.readerIndex + bodySent, length: body.readableBytes - bodySent)!)), promise: nil)
        } else {
            return bodySent
        }
        nioMayHoldBytes = true
        // At once: the head went out corked (MSG_MORE) and waits for these bytes.
        context.flush()
        return bodySent
    }
}

/// HTTP/1.1's wire form of a response's status line and fields (each line ending in CRLF; the
/// blank line that ends the head is the caller's), as NIO's encoder writes them: names as given.
enum HTTPHeadEncoding {
    static func write(status: HTTPResponse.Status, _ fields: HTTPFields, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status.code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        for field in fields {
            buffer.writeString(field.name.rawName)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
    }
}
