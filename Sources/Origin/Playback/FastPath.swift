import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypes
import Store

// The playback fast path.
//
// Most playback requests are hits: a segment or playlist of the published version, already in L1.
// Answering one takes no waiting, yet through the router it costs a Swift task, a request context,
// a logger with a request id and an async response writer: on a 2-core host, more CPU than the
// kernel spends sending the bytes. ``PlaybackFastPath`` sits in each connection's pipeline in
// front of the router and answers such hits on the event loop that read them, with the very
// response the router would give (``OriginRoutes/fileResponse(_:type:versioned:request:)``, rate
// limits, CORS, metrics, read-ahead). Anything else goes on to the router untouched: keys, misses,
// gated playlists, odd paths, and every request behind one still being answered there (HTTP/1.1
// answers in order).

extension OriginRoutes {
    /// The answer to `request` when it can be given now, from memory; nil when the router must
    /// answer it (it will give the same answer it always gives).
    func immediateResponse(to request: HTTPRequest, remoteAddress: SocketAddress?) -> (PlaybackResponse, OriginMetrics.Route)? {
        guard request.method == .get || request.method == .head, let target = PlaybackTarget(request.path) else { return nil }
        // A viewer's token rides on a gated asset's playlists: the policy must be read first.
        if target.type == .playlist, gate != nil, target.hasToken { return nil }
        guard let asset = try? AssetID(target.asset),
              let version = directory.resolveFromMemory(asset, version: target.version)
        else { return nil }
        let rewritten = target.version == nil && target.type == .playlist
        let name = Self.objectName(version, target.relative)
        guard let object = cache.getIfPresent(rewritten ? name + "~entry" : name) else { return nil }

        let started = DispatchTime.now().uptimeNanoseconds
        let route = Self.route(of: target.relative)
        var response: PlaybackResponse
        metrics.fastPath.increment()
        if let limited = rateLimited(remoteAddress) {
            counters.withLockedValue { $0.fastPath += 1 }
            response = limited
        } else {
            counters.withLockedValue {
                $0.l1Hits += 1
                $0.fastPath += 1
            }
            metrics.l1Hit.increment()
            if target.type == .transportStream {
                warm(after: version, target.relative, client: remoteAddress?.ipAddress ?? "local")
            }
            response = fileResponse(object, type: target.type, versioned: target.version != nil, request: request)
        }
        finish(route, &response.headers, status: response.status, request: request, started: started)
        return (response, route)
    }
}

/// A playback URL the fast path may answer, taken apart the way the router's patterns do
/// (`/v/{asset}/master.m3u8`, `/v/{asset}/{first}/{second}`, `/v/{asset}/{version}/{first}/{second}`).
/// Only plain names qualify: a path with percent-escapes, empty segments or dot segments is left
/// to the router, whose answer (usually 404) stays the only one.
struct PlaybackTarget {
    var asset: String
    var version: String?
    var relative: String
    var type: MediaType
    var hasToken: Bool

    init?(_ path: String?) {
        guard let path else { return nil }
        var utf8 = Substring(path).utf8[...]
        var query = utf8[utf8.endIndex...]
        if let mark = utf8.firstIndex(of: UInt8(ascii: "?")) {
            query = utf8[utf8.index(after: mark)...]
            utf8 = utf8[..<mark]
        }
        guard utf8.allSatisfy(Self.isPlain) else { return nil }
        let parts = utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard parts.count >= 4, parts.count <= 6, parts[0].isEmpty, Self.equals(parts[1], "v"),
              !parts.dropFirst().contains(where: { $0.isEmpty || Self.equals($0, ".") || Self.equals($0, "..") })
        else { return nil }
        asset = String(Substring(parts[2]))
        switch parts.count {
        case 4:
            guard Self.equals(parts[3], "master.m3u8") else { return nil }
            version = nil
            relative = "master.m3u8"
        case 5:
            guard !Self.equals(parts[3], "keys") else { return nil }
            let first = String(Substring(parts[3]))
            if AssetStore.isVersionName(first) {
                version = first
                relative = String(Substring(parts[4]))
            } else {
                version = nil
                relative = first + "/" + String(Substring(parts[4]))
            }
        default:
            guard !Self.equals(parts[4], "keys") else { return nil }
            version = String(Substring(parts[3]))
            relative = String(Substring(parts[4])) + "/" + String(Substring(parts[5]))
        }
        guard StorePath.isSafeRelative(relative), let type = MediaType.of(relative) else { return nil }
        self.type = type
        hasToken = Self.contains(query, "token=")
    }

    /// Letters, digits, `-`, `_`, `.`, `/`: what the store's names are made of.
    private static func isPlain(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "/"):
            true
        default:
            false
        }
    }

    private static func equals(_ bytes: Substring.UTF8View.SubSequence, _ text: StaticString) -> Bool {
        text.withUTF8Buffer { bytes.elementsEqual($0) }
    }

    private static func contains(_ bytes: Substring.UTF8View.SubSequence, _ text: StaticString) -> Bool {
        text.withUTF8Buffer { needle in
            guard bytes.count >= needle.count else { return false }
            var start = bytes.startIndex
            while bytes.distance(from: start, to: bytes.endIndex) >= needle.count {
                if bytes[start...].starts(with: needle) { return true }
                bytes.formIndex(after: &start)
            }
            return false
        }
    }
}

/// In each HTTP/1.1 connection's pipeline, between the codec and the router: answers playback hits
/// from memory on the event loop (``OriginRoutes/immediateResponse(to:remoteAddress:)``), passes
/// everything else on. Answers stay in request order: while any request is with the router, the
/// ones behind it go there too. A request asking to close the connection goes to the router,
/// which closes it after answering.
final class PlaybackFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let routes: OriginRoutes
    private let serverName: String?
    /// Requests passed to the router whose answers have not been written yet.
    private var withRouter = 0
    /// The rest (body, end) of a request answered here is dropped; of one passed on, passed on.
    private var answeredHere = false
    private var needsFlush = false
    private var remoteAddress: SocketAddress?
    private var dateSecond = 0
    private var dateText = ""

    init(routes: OriginRoutes, serverName: String?) {
        self.routes = routes
        self.serverName = serverName
    }

    func channelActive(context: ChannelHandlerContext) {
        remoteAddress = context.channel.remoteAddress
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { remoteAddress = context.channel.remoteAddress }
        // NIO's default marks a connection unwritable past 64 KiB queued, so every segment (hundreds
        // of kB, usually sent whole by one writev) would flip it unwritable and back, each flip
        // travelling the pipeline to the router's async writer. Flip only when a client really
        // lags: several segments queued.
        try? context.channel.syncOptions?.setOption(
            ChannelOptions.writeBufferWaterMark, value: .init(low: Self.lowWaterMark, high: Self.highWaterMark)
        )
    }

    static let lowWaterMark = 1 << 20
    static let highWaterMark = 4 << 20

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            if withRouter == 0, context.channel.isWritable, !Self.asksToClose(request),
               let (answer, _) = routes.immediateResponse(to: request, remoteAddress: remoteAddress) {
                answeredHere = true
                write(answer, context: context)
            } else {
                answeredHere = false
                withRouter += 1
                context.fireChannelRead(data)
            }
        case .body:
            if !answeredHere { context.fireChannelRead(data) }
        case .end:
            if answeredHere { answeredHere = false } else { context.fireChannelRead(data) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { withRouter = max(0, withRouter - 1) }
        context.write(data, promise: promise)
    }

    private func write(_ answer: PlaybackResponse, context: ChannelHandlerContext) {
        var head = HTTPResponse(status: answer.status, headerFields: answer.headers)
        head.headerFields[.date] = date()
        if let serverName { head.headerFields[.server] = serverName }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body = answer.body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(body)), promise: nil)
        }
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
        needsFlush = true
    }

    /// `Date`, formatted once a second per connection.
    private func date() -> String {
        let now = time(nil)
        if now != dateSecond {
            dateSecond = now
            dateText = HTTPSemantics.httpDate(now)
        }
        return dateText
    }

    private static func asksToClose(_ request: HTTPRequest) -> Bool {
        guard let connection = request.headerFields[.connection] else { return false }
        return connection.lowercased().contains("close")
    }
}
