import Foundation
import Hummingbird
import Jobs
import NIOCore

/// `GET /v1/workers`: live workers; `GET /v1/farms`: every farm that has run; `GET /v1/farms/{name}`: a farm's asked-for and running sizes;
/// `PUT /v1/farms/{name}` `{workers}`: a new size, which its supervisor follows within a second.
extension JobAPI {
    func registerFarmRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.get("/v1/workers") { request, _ in
            try await self.authorized(request) { try Self.json(.ok, ["workers": try await self.queue.liveWorkers()]) }
        }
        router.get("/v1/farms") { request, _ in
            try await self.authorized(request) { try Self.json(.ok, ["farms": try await self.queue.farms()]) }
        }
        router.get("/v1/farms/{name}") { request, context in
            try await self.authorized(request) {
                let name = context.parameters.get("name") ?? ""
                guard JobID.isValid(name) else { return Self.error(.badRequest, "'\(name)' is not a farm name", field: "name") }
                return try Self.json(.ok, try await self.queue.farm(name))
            }
        }
        router.put("/v1/farms/{name}") { request, context in
            try await self.authorized(request) { try await self.scaleFarm(request, context.parameters.get("name") ?? "") }
        }
    }

    private func scaleFarm(_ request: Request, _ name: String) async throws -> Response {
        guard JobID.isValid(name) else { return Self.error(.badRequest, "'\(name)' is not a farm name", field: "name") }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: 4096) } catch { return Self.error(.contentTooLarge, "the body is over 4 KiB") }
        // Decoded as a typed field: Foundation's NSNumber bridging would take `true` for 1 and
        // `false` for 0, and refuse nothing.
        struct Size: Decodable { let workers: Int }
        let limit = JobQueue.maximumFarmWorkers
        guard let workers = (try? JSONDecoder().decode(Size.self, from: Data(buffer: body)))?.workers, (0...limit).contains(workers) else {
            return Self.error(.badRequest, "the body must be {\"workers\": 0…\(limit)}", field: "workers")
        }
        let previous = try await queue.setDesiredWorkers(workers, farm: name)
        logger.notice("farm scaled", metadata: ["farm": "\(name)", "workers": "\(workers)", "was": "\(previous.map(String.init) ?? "unset")"])
        return try Self.json(.ok, try await queue.farm(name))
    }
}
