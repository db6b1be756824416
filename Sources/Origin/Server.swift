import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
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
    store: AssetStore,
    unwrapKey: @escaping KeyUnwrapper,
    logger: Logger
) -> some ApplicationProtocol {
    buildServerApplication(
        configuration: configuration, origin: OriginRoutes(store: store, unwrapKey: unwrapKey, logger: logger),
        api: nil, health: HealthRoutes(store: store, queue: nil, metrics: nil), logger: logger
    )
}

/// The whole HTTP server: playback, and when a queue is configured the job API, plus health and
/// metrics.
public func buildServerApplication(
    configuration: OriginConfiguration,
    origin: OriginRoutes,
    api: JobAPI?,
    health: HealthRoutes,
    logger: Logger
) -> some ApplicationProtocol {
    let router = Router(context: OriginRequestContext.self)
    origin.register(on: router)
    origin.gate?.register(on: router)
    api?.register(on: router)
    health.register(on: router)
    let serverName = "StreamGate"
    let fastPath = origin.options.fastPath
    return Application(
        router: router,
        server: .guardedHTTP1(limits: configuration.connections) {
            [DrainBeforeClose()] + (fastPath ? [ResponseOrder(routes: origin, serverName: serverName)] : [])
        },
        configuration: ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: serverName,
            availableConnectionsDelegate: MaximumAvailableConnections(configuration.connections.effectiveTotal, logger: logger)
        ),
        logger: logger
    )
}

