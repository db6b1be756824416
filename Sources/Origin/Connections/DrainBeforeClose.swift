import NIOCore

/// Holds a connection's close until NIO has written the answers it still queues for it.
///
/// A client may send its requests, pipelined, and then half-close its side. Hummingbird closes the
/// connection as soon as the input has ended and its handler is done, and NIO's close drops every
/// write still queued: a client reading slowly lost the end of its answers (seen with five
/// megabytes of segments asked for at once). Here the close waits until the queue is empty, for
/// at most ``limit`` (a client that never reads does not keep a connection for good). Bytes
/// already handed to the kernel are not at risk: closing a socket sends them before its FIN.
final class DrainBeforeClose: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    static let limit = TimeAmount.seconds(30)
    static let interval = TimeAmount.milliseconds(10)

    /// Closes asked for while answers were queued, in order: Hummingbird shuts the output down
    /// when its writer finishes, then closes the channel.
    private var held: [(mode: CloseMode, promise: EventLoopPromise<Void>?)] = []

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input else { return context.close(mode: mode, promise: promise) }
        if !held.isEmpty { return held.append((mode, promise)) }
        guard Self.queuedBytes(context.channel) > 0 else { return context.close(mode: mode, promise: promise) }
        held.append((mode, promise))
        let deadline = NIODeadline.now() + Self.limit
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        @Sendable func check() {
            let (handler, context) = bound.value
            guard Self.queuedBytes(context.channel) == 0 || NIODeadline.now() >= deadline || !context.channel.isActive else {
                context.eventLoop.scheduleTask(in: Self.interval) { check() }
                return
            }
            let held = handler.held
            handler.held = []
            for close in held { context.close(mode: close.mode, promise: close.promise) }
        }
        context.eventLoop.scheduleTask(in: Self.interval) { check() }
    }

    private static func queuedBytes(_ channel: any Channel) -> Int {
        channel.bytesQueuedInNIO ?? 0
    }
}

extension Channel {
    /// The bytes written to this channel that NIO has not handed to the socket yet; nil when the
    /// channel cannot say. Call on its event loop.
    var bytesQueuedInNIO: Int? {
        try? syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)
    }
}
