import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1.1 channel with a ``ConnectionGuard`` in front of everything else. The guard
/// goes in after the channel's own handlers (the fast path puts its byte-level handler first as it
/// is added), so nothing stands between it and the socket. ``ConnectionAcceptor`` runs it.
struct GuardedHTTP1Channel: ServerChildChannel {
    let http: HTTP1Channel
    let limits: ConnectionLimits
    let clients: ClientConnections
    let metrics: ConnectionMetrics

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        http.setup(channel: channel, logger: logger).flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(
                ConnectionGuard(limits: limits, clients: clients, metrics: metrics), position: .first
            )
            return value
        }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await http.handle(value: value, logger: logger)
    }
}
