import Hummingbird
import NIOCore
import Store
import Gate

extension JobAPI {
    func registerPolicyRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.put("/v1/assets/{id}/policy") { request, context in
            try await self.authorized(request) { try await self.putPolicy(request, context.parameters.get("id") ?? "") }
        }
        router.get("/v1/assets/{id}/policy") { request, context in
            try await self.authorized(request) { try await self.showPolicy(context.parameters.get("id") ?? "") }
        }
        router.delete("/v1/assets/{id}/policy") { request, context in
            try await self.authorized(request) { try await self.removePolicy(context.parameters.get("id") ?? "") }
        }
    }

    // MARK: - Policies

    private func putPolicy(_ request: Request, _ id: String) async throws -> Response {
        guard let policies, AssetID.isValid(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: 64 * 1024) } catch { return Self.error(.contentTooLarge, "the policy is over 64 KiB") }
        let policy: AccessPolicy
        do { policy = try AccessPolicy(json: Array(buffer: body)) } catch { return Self.error(.badRequest, "\(error)", field: "policy") }
        try await policies.setPolicy(policy, of: id)
        logger.info("asset policy set", metadata: ["asset": "\(id)", "policy": "\(policy.policyID)"])
        return try Self.json(.ok, ["asset_id": id, "policy_id": policy.policyID])
    }

    private func showPolicy(_ id: String) async throws -> Response {
        guard let policies, AssetID.isValid(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        guard let policy = try await policies.policy(of: id).value else { return Self.error(.notFound, "asset \(id) has no policy: it is public", field: "id") }
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: policy.canonicalJSON))
        )
    }

    private func removePolicy(_ id: String) async throws -> Response {
        guard let policies, AssetID.isValid(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        try await policies.setPolicy(nil, of: id)
        return Response(status: .noContent)
    }
}
