import Foundation
import Hummingbird
import Jobs
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Store

/// `/healthz` (the process answers), `/readyz` (the store is readable and Redis answers) and
/// `/metrics` (Prometheus text format).
///
/// `/readyz` answers anyone, so it names what is wrong only generically (`store`, `redis`): the
/// store's path and Redis's error text (which may hold an address or a user name) go to the log,
/// once each time they change.
public struct HealthRoutes: Sendable {
    /// nil: a process with no store to check (a farm's supervisor).
    let store: (any AssetStorage)?
    let queue: JobQueue?
    /// Renders the metrics registry; nil serves no `/metrics`.
    let metrics: (@Sendable () -> [UInt8])?
    let logger: Logger
    /// The problems last logged, so a probe every few seconds does not repeat them.
    private let lastLogged = NIOLockedValueBox<[Problem]>([])

    /// What keeps the server from serving: a generic name, public, and the detail, logged.
    public struct Problem: Sendable, Equatable {
        public let name: String
        public let detail: String
    }

    public init(store: (any AssetStorage)?, queue: JobQueue?, metrics: (@Sendable () -> [UInt8])?, logger: Logger = Logger(label: "streamgate.health")) {
        self.store = store
        self.queue = queue
        self.metrics = metrics
        self.logger = logger
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.get("/readyz") { _, _ in
            let problems = await self.problems()
            self.log(problems)
            let status: HTTPResponse.Status = problems.isEmpty ? .ok : .serviceUnavailable
            return try JobAPI.json(status, ReadyAnswer(status: problems.isEmpty ? "ready" : "unavailable", problems: problems.map(\.name)))
        }
        if let metrics {
            router.get("/metrics") { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(bytes: metrics()))
                )
            }
        }
    }

    struct ReadyAnswer: Encodable {
        let status: String
        let problems: [String]
    }

    /// What keeps this server from serving; empty when ready.
    public func problems() async -> [Problem] {
        var problems: [Problem] = []
        do {
            try await store?.checkReadable()
        } catch {
            problems.append(Problem(name: "store", detail: "\(error)"))
        }
        if let queue {
            do {
                _ = try await queue.redis.send(["PING"])
            } catch {
                problems.append(Problem(name: "redis", detail: "redis: \(error)"))
            }
        }
        return problems
    }

    private func log(_ problems: [Problem]) {
        let changed = lastLogged.withLockedValue { last -> Bool in
            guard last != problems else { return false }
            last = problems
            return true
        }
        guard changed else { return }
        if problems.isEmpty {
            logger.info("ready")
        } else {
            logger.warning("not ready", metadata: ["problems": "\(problems.map(\.detail).joined(separator: "; "))"])
        }
    }
}
