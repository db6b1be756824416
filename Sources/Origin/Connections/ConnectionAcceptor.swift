import CLinux
import Foundation
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The origin's listener. StreamGate accepts each connection itself and hands the socket to NIO
/// (`ClientBootstrap.withConnectedSocket`), so the connection's descriptor is known from the
/// moment it exists (``AcceptedSocket``): the fast path lends pages to it (``PageLender``). NIO
/// publishes no channel's descriptor, and Hummingbird's server owns its own accept loop.
///
/// Each connection is set up and handled by Hummingbird's HTTP/1.1 channel (``GuardedHTTP1Channel``)
/// exactly as Hummingbird's server does it. At most `maximumConnections` are open at once: past
/// that, new connections wait in the kernel's backlog. A graceful shutdown stops accepting, asks
/// every connection to finish the request it is answering (`ChannelShouldQuiesceEvent`), and ends
/// once all have closed.
final class ConnectionAcceptor: Service {
    private let listener: ListeningSocket
    private let child: GuardedHTTP1Channel
    private let group: any EventLoopGroup
    private let logger: Logger
    private let onRunning: @Sendable (Int) async -> Void
    private let room: DispatchSemaphore
    private let open = NIOLockedValueBox(OpenConnections())

    private struct OpenConnections {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var quiescing = false
    }

    init(
        host: String, port: Int, backlog: Int = 256, maximumConnections: Int, child: GuardedHTTP1Channel,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void
    ) throws {
        listener = try ListeningSocket(host: host, port: port, backlog: backlog)
        self.child = child
        self.group = group
        self.logger = logger
        self.onRunning = onRunning
        room = DispatchSemaphore(value: max(1, maximumConnections))
    }

    func run() async throws {
        let (descriptors, arrivals) = AsyncStream.makeStream(of: CInt.self)
        let listener = self.listener
        let room = self.room
        let logger = self.logger
        // Blocking accepts on a thread of their own: a shut-down listener wakes it (EINVAL).
        Thread.detachNewThread {
            while true {
                room.wait()
                guard let descriptor = listener.accept(logger: logger) else { break }
                arrivals.yield(descriptor)
            }
            arrivals.finish()
        }
        logger.info("Server started and listening on \(listener.host):\(listener.port)")
        await onRunning(listener.port)
        await withTaskCancellationOrGracefulShutdownHandler {
            await withDiscardingTaskGroup { connections in
                for await descriptor in descriptors {
                    connections.addTask { await self.serve(descriptor) }
                }
            }
        } onCancelOrGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops accepting and asks every open connection to finish.
    private func stop() {
        listener.shutdown()
        // The accept thread may be waiting for room; it finds the listener shut.
        room.signal()
        let channels = open.withLockedValue { open -> [any Channel] in
            open.quiescing = true
            return Array(open.channels.values)
        }
        for channel in channels { Self.quiesce(channel) }
    }

    private static func quiesce(_ channel: any Channel) {
        channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
    }

    /// One connection, from its descriptor to its close.
    private func serve(_ descriptor: CInt) async {
        defer { room.signal() }
        let child = self.child
        let logger = self.logger
        let value: GuardedHTTP1Channel.Value
        do {
            value = try await ClientBootstrap(group: group)
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .withConnectedSocket(descriptor) { channel in
                    child.setup(channel: channel, logger: logger).flatMapThrowing { value in
                        // Last, behind the handler that consumes every request: no event reaches it.
                        try channel.pipeline.syncOperations.addHandler(AcceptedSocket(descriptor: descriptor))
                        return value
                    }
                }
        } catch {
            logger.debug("a connection could not be set up", metadata: ["error": "\(error)"])
            return
        }
        let channel = value.channel
        let key = ObjectIdentifier(channel)
        let quiescing = open.withLockedValue { open -> Bool in
            open.channels[key] = channel
            return open.quiescing
        }
        if quiescing { Self.quiesce(channel) }
        await child.handle(value: value, logger: logger)
        _ = open.withLockedValue { $0.channels.removeValue(forKey: key) }
    }
}

/// Holds the socket descriptor of the connection it sits in (``ConnectionAcceptor`` adds it last
/// in the pipeline as the connection is accepted, where requests never reach).
final class AcceptedSocket: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    let descriptor: CInt

    init(descriptor: CInt) {
        self.descriptor = descriptor
    }
}

/// A listening TCP socket, accepted from with blocking `accept4`.
final class ListeningSocket: Sendable {
    let descriptor: CInt
    let host: String
    let port: Int

    init(host: String, port: Int, backlog: Int) throws {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let descriptor = socket(address.protocol.rawValue, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Self.failure("socket", host, port) }
        var one: CInt = 1
        var bound = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) == 0
        if bound { bound = address.withSockAddr { bind(descriptor, $0, socklen_t($1)) } == 0 }
        if bound { bound = listen(descriptor, CInt(backlog)) == 0 }
        guard bound else {
            let error = Self.failure("bind", host, port)
            close(descriptor)
            throw error
        }
        self.descriptor = descriptor
        self.host = host
        self.port = Self.boundPort(descriptor) ?? port
    }

    deinit {
        close(descriptor)
    }

    /// The port the socket is bound to (`sin_port` and `sin6_port` sit at the same offset).
    private static func boundPort(_ descriptor: CInt) -> Int? {
        var address = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return named == 0 ? Int(UInt16(bigEndian: address.sin6_port)) : nil
    }

    /// The next connection, non-blocking for NIO; nil once the listener is shut down.
    func accept(logger: Logger) -> CInt? {
        while true {
            let accepted = clinux_accept(descriptor)
            if accepted >= 0 { return accepted }
            switch errno {
            case EINTR, ECONNABORTED, EPROTO, EAGAIN:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Out of descriptors or memory: the connection waits in the backlog meanwhile.
                logger.warning("cannot accept a connection now", metadata: ["error": "\(String(cString: strerror(errno)))"])
                usleep(10_000)
            default:
                return nil
            }
        }
    }

    /// Wakes a blocked `accept` (it fails with EINVAL) and accepts nothing more.
    func shutdown() {
        _ = Glibc.shutdown(descriptor, CInt(SHUT_RDWR))
    }

    private static func failure(_ call: String, _ host: String, _ port: Int) -> any Error {
        IOError(errnoCode: errno, reason: "\(call) for \(host):\(port)")
    }
}
