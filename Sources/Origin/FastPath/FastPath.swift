import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes

// The playback fast path.
//
// Most playback requests are hits: a segment or playlist of the published version already in L1,
// or the key of a viewer whose token and grant are remembered. Answering one takes no waiting,
// yet through the router it costs NIO's HTTP parser (every header a pair of Strings), the
// HTTPTypes conversion, a Swift task, a request context and an async response writer: on a
// 2-core host, more CPU than the kernel spends sending the bytes.
//
// ``PlaybackFastPath`` sits first in the pipeline, on the raw bytes. It finds each request head,
// reads the request line and only the headers an answer depends on (``ByteRequestHead``), asks
// the one playback answer (``OriginRoutes/answer(_:mode:progress:)``) in `.memoryOnly` mode, and
// writes the answer as bytes: the head, then the body L1 holds, its pages lent to the socket
// (``PageLender``) when large. Whatever memory cannot answer it passes on, byte for byte, to the
// HTTP decoder and the router, which asks the same function and may load:
//
// - a bodyless GET or HEAD it does not answer (a load needed, `Connection: close`, HTTP/1.0, or
//   any request while one is still with the router: answers stay in order) is passed on whole;
// - anything else (another method, a body, a malformed or oversized head, a bare LF) turns it
//   into a pass-through for the rest of the connection, so the decoder sees every byte from that
//   request on and gives its usual answer or error.
//
// It assumes plain HTTP/1.1 on the socket: it must never sit in front of TLS.

/// First in each HTTP/1.1 connection's pipeline, on the socket's bytes: answers what memory can
/// answer (``OriginRoutes/answer(_:mode:progress:)`` in `.memoryOnly` mode) before any HTTP
/// decoding, and passes everything else on to the decoder (see the top of this file).
/// ``ResponseOrder``, above the codec, installs it and counts the requests with the router.
final class PlaybackFastPath: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// A head that has not ended within this many bytes goes to the decoder (which has its own limits).
    static let maximumHead = 16 * 1024

    private let routes: OriginRoutes
    /// `Server: …` and CRLF; empty when no name is given.
    private let serverLine: [UInt8]
    /// Knows how many requests are with the router, and who the client is.
    private let partner: ResponseOrder
    /// Bytes of a request head not complete yet.
    private var pending: ByteBuffer?
    /// Everything from here on goes to the decoder.
    private var passingThrough = false
    private var needsFlush = false
    /// Whether the handlers behind this one were given anything since the last read-complete:
    /// when every request of a read was answered here, they have nothing to complete.
    private var forwarded = false
    private var date = HTTPDateCache()
    /// The socket's descriptor, looked up on the first body to lend; nil inside: not known.
    private var socket: CInt??
    /// Whether NIO may hold bytes written to this connection. Only writes put them there: this
    /// handler's own, and those of the handlers behind it, which write only in answer to what
    /// this handler passed on. So it is set by either, and cleared when NIO says it holds none;
    /// while it is clear, lending need not ask NIO (a chain of dynamic casts) every time.
    private var nioMayHoldBytes = false

    init(routes: OriginRoutes, serverName: String?, partner: ResponseOrder) {
        self.routes = routes
        serverLine = serverName.map { Array("Server: \($0)\r\n".utf8) } ?? []
        self.partner = partner
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
                if partner.requestsWithRouter == 0, context.channel.isWritable, let answer = answerFromMemory(request) {
                    buffer.moveReaderIndex(forwardBy: end)
                    let lent = write(answer, context: context)
                    routes.metrics.fastPath.increment()
                    routes.counters.withLockedValue {
                        $0.fastPath += 1
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

    /// The answer memory holds for `request`; nil: the router must answer it (the same way).
    private func answerFromMemory(_ request: HTTPRequest) -> PlaybackResponse? {
        // Playback's URLs only: every other route is the router's.
        guard request.path?.utf8.starts(with: "/v/".utf8) == true else { return nil }
        var progress = PlaybackProgress(client: partner.client, encodedHeads: true)
        guard case .answer(let answer) = routes.answer(request, mode: .memoryOnly, progress: &progress) else { return nil }
        return answer
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
        if socket == nil {
            // Recorded when the connection was accepted (``ConnectionAcceptor``); a connection that
            // came another way (a test's pipeline) has none, and its bodies are copied.
            socket = .some((try? context.pipeline.syncOperations.handler(type: AcceptedSocket.self))?.descriptor)
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

/// Above the HTTP codec in each connection's pipeline, when the fast path is on: installs
/// ``PlaybackFastPath`` in front of the decoder, and counts the requests the router is answering,
/// so the fast path answers none out of turn (HTTP/1.1 answers in order). It answers nothing.
final class ResponseOrder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let routes: OriginRoutes
    private let serverName: String?
    /// Requests passed to the router whose answers have not been written yet.
    private(set) var requestsWithRouter = 0
    private(set) var client = PlaybackClient(address: "local", limiterKey: nil)

    init(routes: OriginRoutes, serverName: String?) {
        self.routes = routes
        self.serverName = serverName
    }

    func channelActive(context: ChannelHandlerContext) {
        client = routes.client(of: context.channel.remoteAddress)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { client = routes.client(of: context.channel.remoteAddress) }
        // NIO's default marks a connection unwritable past 64 KiB queued, so every segment (hundreds
        // of kB, usually sent whole by one writev) would flip it unwritable and back, each flip
        // travelling the pipeline to the router's async writer. Flip only when a client really
        // lags: several segments queued.
        try? context.channel.syncOptions?.setOption(
            ChannelOptions.writeBufferWaterMark, value: .init(low: Self.lowWaterMark, high: Self.highWaterMark)
        )
        try? context.pipeline.syncOperations.addHandler(PlaybackFastPath(routes: routes, serverName: serverName, partner: self), position: .first)
    }

    static let lowWaterMark = 1 << 20
    static let highWaterMark = 4 << 20

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { requestsWithRouter += 1 }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { requestsWithRouter = max(0, requestsWithRouter - 1) }
        context.write(data, promise: promise)
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

/// `Date`, formatted once a second: each fast-path handler keeps one per connection, the router
/// one behind a lock (``SharedHTTPDate``).
struct HTTPDateCache {
    private var second = 0
    private var value = ""
    private var headerLine: [UInt8] = []

    /// The field's value: an IMF-fixdate.
    mutating func text() -> String {
        let now = time(nil)
        if now != second {
            second = now
            value = HTTPSemantics.httpDate(now)
            headerLine = Array("Date: \(value)\r\n".utf8)
        }
        return value
    }

    /// The whole header line, `Date: …` and CRLF.
    mutating func line() -> [UInt8] {
        _ = text()
        return headerLine
    }
}
