import Foundation
import Hummingbird
import Jobs
import NIOCore
import Store

/// `/healthz` (the process answers), `/readyz` (the store is readable and Redis answers) and
/// `/metrics` (Prometheus text format).
public struct HealthRoutes: Sendable {
    let store: AssetStore
    let queue: JobQueue?
    /// Renders the metrics registry; nil serves no `/metrics`.
    let metrics: (@Sendable () -> [UInt8])?

    public init(store: AssetStore, queue: JobQueue?, metrics: (@Sendable () -> [UInt8])?) {
        self.store = store
        self.queue = queue
        self.metrics = metrics
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.get("/readyz") { _, _ in
            let problems = await self.problems()
            let status: HTTPResponse.Status = problems.isEmpty ? .ok : .serviceUnavailable
            return try JobAPI.json(status, ["status": problems.isEmpty ? "ready" : "unavailable", "problems": problems.joined(separator: "; ")])
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

    /// What keeps this server from serving; empty when ready.
    public func problems() async -> [String] {
        var problems: [String] = []
        var info = stat()
        if stat(store.root, &info) != 0 || access(store.root, R_OK | X_OK) != 0 {
            problems.append("store \(store.root) is not readable")
        }
        if let queue {
            do {
                _ = try await queue.redis.send(["PING"])
            } catch {
                problems.append("redis: \(error)")
            }
        }
        return problems
    }
}
