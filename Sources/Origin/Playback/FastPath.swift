import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypes
import NIOPosix
import Store

// The playback fast path.
//
// Most playback requests are hits: a segment or playlist of the published version already in L1,
// or the key of a viewer whose token and grant are cached. Answering one takes no waiting, yet
// through the router it costs a Swift task, a request context, a logger with a request id and an
// async response writer: on a 2-core host, more CPU than the kernel spends sending the bytes.
// ``PlaybackFastPath`` sits in each connection's pipeline in front of the router and answers such
// hits on the event loop that read them, with the very response the router would give
// (``OriginRoutes/fileResponse(_:type:versioned:request:)``, ``OriginRoutes/keyResponse(_:method:)``,
// rate limits, CORS, metrics, read-ahead). Anything else goes on to the router untouched: refusals,
// misses, gated playlists, odd paths, and every request behind one still being answered there
// (HTTP/1.1 answers in order).

extension OriginRoutes {
    /// The answer to `request` when it can be given now, from memory; nil when the router must
    /// answer it (it will give the same answer it always gives). With `encodedHeads`, a plain 200
    /// for a whole file comes with its head already encoded (``CachedObject/wholeHeads``).
    func immediateResponse(to request: HTTPRequest, client: PlaybackClient, encodedHeads: Bool = false) -> PlaybackResponse? {
        guard request.method == .get || request.method == .head, let path = request.path,
              let known = KnownTarget.memo(path), let asset = known.asset,
              let version = directory.resolveFromMemory(asset, version: known.target.version)
        else { return nil }
        let target = known.target
        let started = DispatchTime.now().uptimeNanoseconds
        let route: OriginMetrics.Route
        let found: Hit
        switch target.kind {
        case .file(let type):
            // A viewer's token rides on a gated asset's playlists: the policy must be read first.
            if type == .playlist, gate != nil, target.token != nil { return nil }
            guard let object = cache.getIfPresent(known.cacheKey(in: version)) else { return nil }
            route = known.route
            found = .file(object, type)
        case .key(let keyID):
            guard Self.isKeyID(keyID), let key = keys.withLockedValue({ $0[Self.keyCacheKey(version, keyID)] }) else { return nil }
            if let gate {
                // Only a grant is given here; every refusal (and its reason) comes from the router.
                guard let policy = gate.policies.cachedPolicy(of: asset.rawValue) else { return nil }
                if let policy, !gate.grantedFromMemory(request.headerFields, queryToken: target.token, asset: asset.rawValue, policy: policy) {
                    return nil
                }
            } else if let policies {
                // No gate: only a key known to have no policy; the router refuses the others.
                guard case .some(nil) = policies.cachedPolicy(of: asset.rawValue) else { return nil }
            }
            route = .key
            found = .key(key)
        }
        let limited = rateLimited(client)
        counters.withLockedValue {
            $0.fastPath += 1
            // A file answered (not refused) is an L1 hit, as on the router's path.
            if limited == nil, route != .key { $0.l1Hits += 1 }
        }
        metrics.fastPath.increment()
        var response: PlaybackResponse
        if let limited {
            response = limited
        } else {
            switch found {
            case .file(let object, let type):
                metrics.l1Hit.increment()
                if type == .transportStream, let segment = known.segment { warm(after: version, segment, client: client.address) }
                response = hitResponse(object, type: type, versioned: target.version != nil, request: request, encodedHeads: encodedHeads)
            case .key(let key):
                response = Self.keyResponse(key, method: request.method)
            }
        }
        finish(route, &response.headers, status: response.status, request: request, started: started,
               bodyBytes: response.encodedHead == nil ? nil : response.body?.readableBytes ?? 0)
        return response
    }

    /// What ``immediateResponse(to:client:encodedHeads:)`` found in memory.
    private enum Hit {
        case file(CachedObject, MediaType)
        case key([UInt8])
    }

    /// The answer for an L1 hit: ``fileResponse(_:type:versioned:request:)``'s, or with no range,
    /// validators, encodings or origin asked about, the object's encoded whole head (CORS adds
    /// nothing without an Origin, unless a list of origins makes every answer vary by it).
    private func hitResponse(_ object: CachedObject, type: MediaType, versioned: Bool, request: HTTPRequest, encodedHeads: Bool) -> PlaybackResponse {
        if encodedHeads, request.headerFields.isEmpty, !everyAnswerVariesByOrigin {
            let head = versioned ? object.wholeHeads.versioned : object.wholeHeads.unversioned
            return PlaybackResponse(
                status: .ok, headers: [:], body: request.method == .head ? nil : object.body, encodedHead: head, lendsBody: object.lendsBody
            )
        }
        return fileResponse(object, type: type, versioned: versioned, request: request)
    }
}

/// A playback URL taken apart once (``PlaybackTarget``, its ``AssetID``) and the L1 key it last
/// named. Players ask for the same URLs over and over, so each event-loop thread keeps the ones it
/// has seen (``memo(_:)``); only the published version is looked up on every request.
final class KnownTarget {
    let target: PlaybackTarget
    /// nil: the name is not a valid asset id (the router answers).
    let asset: AssetID?
    /// Its place in a rendition, for read-ahead; nil when it is not a numbered segment.
    let segment: OriginRoutes.NumberedSegment?
    /// What metrics count a file under.
    let route: OriginMetrics.Route
    /// The L1 key of a file under ``keyVersion`` ("" until the first: no version is called that).
    private var key = ""
    private var keyVersion = ""

    private init(_ target: PlaybackTarget) {
        self.target = target
        asset = try? AssetID(target.asset)
        segment = target.kind == .file(.transportStream) ? OriginRoutes.NumberedSegment(target.relative) : nil
        route = OriginRoutes.route(of: target.relative)
    }

    /// The L1 key of this file in `version`: the one made last time while the version stays.
    func cacheKey(in version: PublishedVersion) -> String {
        if keyVersion != version.version {
            let rewritten = target.version == nil && target.kind == .file(.playlist)
            key = OriginRoutes.cacheKey(OriginRoutes.objectName(version, target.relative), rewritten: rewritten)
            keyVersion = version.version
        }
        return key
    }

    /// Paths seen on this thread; nil for one the fast path never answers. At most ``capacity``
    /// of at most ``maximumPathBytes`` each (2 MiB a thread), then forgotten all at once: a scan
    /// of odd URLs costs a rebuild, never memory.
    private final class Memo {
        var known: [String: KnownTarget?] = [:]
    }

    static let capacity = 4096
    /// A longer path (a long token, or junk) is taken apart every time, not kept.
    static let maximumPathBytes = 512
    private nonisolated(unsafe) static let perThread = ThreadSpecificVariable<Memo>()

    /// `path` taken apart, from this thread's memo when it has been seen here before.
    static func memo(_ path: String) -> KnownTarget? {
        guard path.utf8.count <= maximumPathBytes else { return PlaybackTarget(path).map(KnownTarget.init) }
        let memo: Memo
        if let existing = perThread.currentValue {
            memo = existing
        } else {
            memo = Memo()
            perThread.currentValue = memo
        }
        if let seen = memo.known[path] { return seen }
        let made = PlaybackTarget(path).map(KnownTarget.init)
        if memo.known.count >= capacity { memo.known.removeAll(keepingCapacity: true) }
        memo.known[path] = made
        return made
    }
}

/// A connection's client, as playback sees it (``OriginRoutes/client(of:)``).
struct PlaybackClient {
    /// The IP address (read-ahead follows each client's playing).
    var address: String
    /// What rate limits count this client under; nil: exempt (loopback, or no limits).
    var limiterKey: ClientKey?
}

/// A playback URL the fast path may answer, taken apart the way the router's patterns do
/// (`/v/{asset}/master.m3u8`, `/v/{asset}/{first}/{second}`, `/v/{asset}/{version}/{first}/{second}`).
/// Only plain names qualify: a path with percent-escapes, empty segments or dot segments, or a
/// query with escapes, is left to the router, whose answer (usually 404) stays the only one.
struct PlaybackTarget {
    enum Kind: Equatable {
        case file(MediaType)
        /// `keys/{key_id}`
        case key(String)
    }

    var asset: String
    var version: String?
    var relative: String
    var kind: Kind
    /// The query's first `token`, when not empty.
    var token: String?

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
        let first: Substring.UTF8View.SubSequence
        switch parts.count {
        case 4:
            guard Self.equals(parts[3], "master.m3u8") else { return nil }
            version = nil
            relative = "master.m3u8"
            kind = .file(.playlist)
            token = nil
            guard let token = Self.token(in: query) else { return nil }
            self.token = token.isEmpty ? nil : token
            return
        case 5:
            let name = String(Substring(parts[3]))
            if AssetStore.isVersionName(name) {
                // `/v/{asset}/{version}/{file}`: a file at the version's top (master.m3u8).
                version = name
                relative = String(Substring(parts[4]))
                guard let type = MediaType.of(relative), StorePath.isSafeRelative(relative) else { return nil }
                kind = .file(type)
                guard let token = Self.token(in: query) else { return nil }
                self.token = token.isEmpty ? nil : token
                return
            }
            version = nil
            first = parts[3]
        default:
            version = String(Substring(parts[3]))
            first = parts[4]
        }
        let second = String(Substring(parts[parts.count - 1]))
        if Self.equals(first, "keys") {
            relative = "keys/" + second
            kind = .key(second)
        } else {
            relative = String(Substring(first)) + "/" + second
            guard StorePath.isSafeRelative(relative), let type = MediaType.of(relative) else { return nil }
            kind = .file(type)
        }
        guard let token = Self.token(in: query) else { return nil }
        self.token = token.isEmpty ? nil : token
    }

    /// The first `token` parameter's value ("" when there is none); nil when the query has
    /// escapes or the value characters a token never has (the router decodes those).
    private static func token(in query: Substring.UTF8View.SubSequence) -> String? {
        guard !query.contains(UInt8(ascii: "%")), !query.contains(UInt8(ascii: "+")) else { return nil }
        for pair in query.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard Self.equals(parts[0], "token") else { continue }
            guard parts.count == 2 else { return "" }
            guard parts[1].allSatisfy({ isPlain($0) && $0 != UInt8(ascii: "/") }) else { return nil }
            return String(Substring(parts[1]))
        }
        return ""
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
}

/// In each HTTP/1.1 connection's pipeline, between the codec and the router: answers playback hits
/// from memory on the event loop (``OriginRoutes/immediateResponse(to:client:)``), passes
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
    /// Requests passed to the router whose answers have not been written yet (``ByteFastPath``
    /// answers nothing while there are any).
    private(set) var requestsWithRouter = 0
    /// The rest (body, end) of a request answered here is dropped; of one passed on, passed on.
    private var answeredHere = false
    private var needsFlush = false
    private(set) var client = PlaybackClient(address: "local", limiterKey: nil)
    private var date = HTTPDateCache()

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
        // Its byte-level partner goes first in the pipeline, in front of the HTTP decoder.
        guard routes.options.byteFastPath else { return }
        try? context.pipeline.syncOperations.addHandler(
            ByteFastPath(routes: routes, serverName: serverName, partner: self), position: .first
        )
    }

    static let lowWaterMark = 1 << 20
    static let highWaterMark = 4 << 20

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            if requestsWithRouter == 0, context.channel.isWritable, !Self.asksToClose(request),
               let answer = routes.immediateResponse(to: request, client: client) {
                answeredHere = true
                write(answer, context: context)
            } else {
                answeredHere = false
                requestsWithRouter += 1
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
        if case .end = unwrapOutboundIn(data) { requestsWithRouter = max(0, requestsWithRouter - 1) }
        context.write(data, promise: promise)
    }

    private func write(_ answer: PlaybackResponse, context: ChannelHandlerContext) {
        var head = HTTPResponse(status: answer.status, headerFields: answer.headers)
        head.headerFields[.date] = date.text()
        if let serverName { head.headerFields[.server] = serverName }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body = answer.body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(body)), promise: nil)
        }
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
        needsFlush = true
    }


    private static func asksToClose(_ request: HTTPRequest) -> Bool {
        guard let connection = request.headerFields[.connection] else { return false }
        return connection.lowercased().contains("close")
    }
}

/// `Date`, formatted once a second (each fast-path handler keeps one per connection).
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
