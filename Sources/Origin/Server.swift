import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Store

/// Where the origin listens.
public struct OriginConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// What each connection and each client may hold (deadlines, caps).
    public var connections: ConnectionLimits

    public init(host: String = "127.0.0.1", port: Int = 8080, connections: ConnectionLimits = ConnectionLimits()) {
        self.host = host
        self.port = port
        self.connections = connections
    }
}

/// The request context of StreamGate's server: Hummingbird's, plus the client's address (for rate
/// limits).
public struct OriginRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// The origin application: ``OriginRoutes`` on an HTTP/1.1 server.
public func buildOriginApplication(
    configuration: OriginConfiguration,
    store: any AssetStorage,
    unwrapKey: @escaping KeyUnwrapper,
    logger: Logger
) -> OriginApplication {
    buildServerApplication(
        configuration: configuration, origin: OriginRoutes(store: store, unwrapKey: unwrapKey, logger: logger),
        api: nil, health: HealthRoutes(store: store, queue: nil, metrics: nil), logger: logger
    )
}

/// Routes the executable adds to the server beside the origin's own (the console's pages).
public protocol ServerRoutes: Sendable {
    func register(on router: Router<OriginRequestContext>)
}

/// The whole HTTP server: playback, and when a queue is configured the job API, plus health and
/// metrics, and any `pages`.
public func buildServerApplication(
    configuration: OriginConfiguration,
    origin: OriginRoutes,
    api: JobAPI?,
    health: HealthRoutes,
    pages: [any ServerRoutes] = [],
    logger: Logger
) -> OriginApplication {
    let router = Router(context: OriginRequestContext.self)
    // Before the routes: a middleware applies to the routes added after it.
    router.add(middleware: APITracing())
    router.add(middleware: APIRequestMetrics())
    origin.register(on: router)
    origin.gate?.register(on: router)
    api?.register(on: router)
    health.register(on: router)
    for group in pages { group.register(on: router) }
    return OriginApplication(configuration: configuration, routes: origin, responder: router.buildResponder(), logger: logger)
}

/// StreamGate's HTTP server as a service: Hummingbird's router and HTTP/1.1 channel on connections
/// StreamGate accepts itself (``ConnectionAcceptor``), each guarded (``ConnectionGuard``), with
/// the playback fast path in front of the HTTP decoder unless turned off.
public struct OriginApplication: Service {
    public let configuration: OriginConfiguration
    let routes: OriginRoutes
    let responder: RouterResponder<OriginRequestContext>
    let logger: Logger
    /// Told the port once the server listens (the kernel's choice when asked for port 0).
    public var onRunning: @Sendable (Int) async -> Void = { _ in }
    static let serverName = "StreamGate"

    init(configuration: OriginConfiguration, routes: OriginRoutes, responder: RouterResponder<OriginRequestContext>, logger: Logger) {
        self.configuration = configuration
        self.routes = routes
        self.responder = responder
        self.logger = logger
    }

    public func run() async throws {
        let limits = configuration.connections
        let routes = self.routes
        let fastPath = routes.options.fastPath
        let http = HTTP1Channel(
            responder: respond,
            configuration: .init(
                additionalChannelHandlers: [DrainBeforeClose()] + (fastPath ? [ResponseOrder(routes: routes, serverName: Self.serverName)] : [])
            )
        )
        let child = GuardedHTTP1Channel(
            http: http, limits: limits, clients: ClientConnections(perClient: limits.perClient), metrics: ConnectionMetrics()
        )
        let acceptor = try ConnectionAcceptor(
            host: configuration.host, port: configuration.port, maximumConnections: limits.effectiveTotal, child: child,
            logger: logger, onRunning: onRunning
        )
        try await acceptor.run()
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    public func runService() async throws {
        try await ServiceGroup(configuration: .init(services: [self], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }

    /// One request through the router, as Hummingbird's application answers it: a context with the
    /// connection's address, a 500 for an error nothing turned into a response, `Date` and `Server`.
    private var respond: HTTPChannelHandler.Responder {
        let responder = self.responder
        let logger = self.logger
        let dates = SharedHTTPDate()
        return { request, responseWriter, channel in
            let context = OriginRequestContext(source: .init(channel: channel, logger: logger))
            var response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch let error as HTTPParserError {
                throw error
            } catch {
                logger.debug("unhandled error answering a request", metadata: ["error": "\(error)"])
                response = Response(status: .internalServerError)
            }
            response.headers[.date] = dates.text()
            response.headers[.server] = Self.serverName
            try await responseWriter.write(response: response.head, body: response.body)
        }
    }
}

/// `Date` for the router's answers: one ``HTTPDateCache`` shared by every connection.
final class SharedHTTPDate: Sendable {
    private let cache = NIOLockedValueBox(HTTPDateCache())

    func text() -> String {
        cache.withLockedValue { $0.text() }
    }
}
