import Metrics
import NIOCore
import Synchronization

/// The first handler of every connection, next to the socket, so it sees every byte read and every
/// write, whichever handler answers (``PlaybackFastPath``, NIO's HTTP codec and the router). It closes:
///
/// - at once, a connection beyond its client's cap (``ConnectionLimits/perClient``);
/// - a connection whose request head has not arrived whole ``ConnectionLimits/headerTimeout`` after
///   its first byte (a head sent a byte at a time holds a descriptor for nothing);
/// - an idle one after ``ConnectionLimits/idleTimeout``: no byte either way, and no answer awaited
///   (a request whose head has arrived is being answered, or its body is on its way);
/// - one whose client stopped reading: bytes queued for it and not draining for as long.
///
/// It finds a head's end by its blank line (CRLF CRLF, or LF LF) rather than parsing: requests are
/// parsed once, further in; here only "has the head arrived" matters. A write means an answer has
/// begun, so what comes next is a new head.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    enum Closed: String, CaseIterable {
        case clientCap = "client_cap", headerTimeout = "header_timeout", idle, stalledReader = "stalled_reader"
    }

    private let limits: ConnectionLimits
    private let clients: ClientConnections
    private let metrics: ConnectionMetrics
    /// The client this connection is counted against, once counted.
    private var counted: ClientKey?
    private var lastActivity = NIODeadline.now()
    /// When the first byte of a head still incomplete arrived.
    private var headStarted: NIODeadline?
    /// A head has ended since the last write: its answer is on its way.
    private var awaitingAnswer = false
    /// The last bytes of the head being read, for a blank line split across reads.
    private var window: UInt32 = 0
    private var queuedAtLastCheck = 0
    private var check: (task: Scheduled<Void>, at: NIODeadline)?
    private var started = false

    init(limits: ConnectionLimits, clients: ClientConnections, metrics: ConnectionMetrics) {
        self.limits = limits
        self.clients = clients
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        metrics.opened()
        if let client = ClientKey(context.channel.remoteAddress) {
            guard clients.open(client) else {
                metrics.closed(.clientCap)
                context.close(promise: nil)
                return
            }
            counted = client
        }
        // A new connection's first head is due like any other: one that never sends is closed soon.
        lastActivity = .now()
        headStarted = lastActivity
        schedule(context, at: lastActivity + limits.headerTimeout)
    }

    private func stop() {
        check?.task.cancel()
        check = nil
        if started {
            started = false
            metrics.ended()
        }
        if let client = counted {
            counted = nil
            clients.close(client)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = NIODeadline.now()
        lastActivity = now
        if !awaitingAnswer {
            if headStarted == nil {
                headStarted = now
                schedule(context, at: now + limits.headerTimeout)
            }
            if endsHead(unwrapInboundIn(data)) {
                headStarted = nil
                awaitingAnswer = true
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if awaitingAnswer || headStarted != nil {
            awaitingAnswer = false
            headStarted = nil
            window = 0
        }
        lastActivity = .now()
        context.write(data, promise: promise)
    }

    /// Whether `buffer` completes the head being read; remembers its last bytes otherwise.
    private func endsHead(_ buffer: ByteBuffer) -> Bool {
        var window = self.window
        defer { self.window = window }
        return buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                window = window << 8 | UInt32(byte)
                if window == 0x0D0A_0D0A || window & 0xFFFF == 0x0A0A {
                    window = 0
                    return true
                }
            }
            return false
        }
    }

    // MARK: - Deadlines

    /// One pending check a connection: moved earlier when a sooner deadline appears, and on firing
    /// it works out the next one from the state then.
    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        if let check {
            // A later deadline than the pending check's is looked at when that check fires.
            guard deadline < check.at else { return }
            check.task.cancel()
        }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let task = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.check = nil
            handler.fire(context)
        }
        check = (task, deadline)
    }

    private func fire(_ context: ChannelHandlerContext) {
        guard started, context.channel.isActive else { return }
        let now = NIODeadline.now()
        if let headStarted, now >= headStarted + limits.headerTimeout {
            return close(context, .headerTimeout)
        }
        // Bytes queued for the client and fewer than at the last check (or a first look): it is
        // reading, which counts as activity; the same number twice, it is not.
        let queued = context.channel.bytesQueuedInNIO ?? 0
        if queued > 0, queuedAtLastCheck == 0 || queued < queuedAtLastCheck { lastActivity = now }
        queuedAtLastCheck = queued
        if now >= lastActivity + limits.idleTimeout {
            if queued > 0 { return close(context, .stalledReader) }
            if !awaitingAnswer { return close(context, .idle) }
        }
        var next = lastActivity + limits.idleTimeout
        if next <= now { next = now + limits.idleTimeout }  // an answer is awaited: look again later
        if let headStarted { next = min(next, headStarted + limits.headerTimeout) }
        schedule(context, at: next)
    }

    private func close(_ context: ChannelHandlerContext, _ reason: Closed) {
        metrics.closed(reason)
        context.close(promise: nil)
    }
}

/// `streamgate_origin_connections` (open now) and `streamgate_origin_connections_closed_total{reason}`
/// (closed by ``ConnectionGuard``, by reason).
final class ConnectionMetrics: Sendable {
    private let open = Gauge(label: "streamgate_origin_connections")
    private let closes: [String: Counter]
    private let count = Atomic<Int>(0)

    init() {
        var closes: [String: Counter] = [:]
        for reason in ConnectionGuard.Closed.allCases {
            closes[reason.rawValue] = Counter(label: "streamgate_origin_connections_closed_total", dimensions: [("reason", reason.rawValue)])
        }
        self.closes = closes
    }

    func opened() { open.record(count.add(1, ordering: .relaxed).newValue) }
    func ended() { open.record(count.subtract(1, ordering: .relaxed).newValue) }
    func closed(_ reason: ConnectionGuard.Closed) { closes[reason.rawValue]?.increment() }
}
