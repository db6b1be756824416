import Foundation
import Hummingbird
import NIOPosix
import Store
import Redis

extension JobAPI {
    func registerAssetRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.get("/v1/assets/{id}") { request, context in
            try await self.authorized(request) { try await self.showAsset(context.parameters.get("id") ?? "") }
        }
        router.delete("/v1/assets/{id}") { request, context in
            try await self.authorized(request) { try await self.deleteAsset(context.parameters.get("id") ?? "") }
        }
        router.get("/v1/assets/{id}/analytics") { request, context in
            try await self.authorized(request) {
                try await self.analytics(context.parameters.get("id") ?? "", minutes: request.uri.queryParameters["minutes"].map(String.init))
            }
        }
    }

    /// `GET /v1/assets/{id}/analytics?minutes=N`: the last N minutes (60 by default, a week at most).
    private func analytics(_ id: String, minutes text: String?) async throws -> Response {
        guard (try? AssetID(id)) != nil else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        let limit = AnalyticsReport.maximumMinutes
        guard let minutes = text.map({ Int($0) }) ?? 60, (1...limit).contains(minutes) else {
            return Self.error(.badRequest, "'minutes' must be 1…\(limit)", field: "minutes")
        }
        let report = try await AnalyticsReport.read(asset: id, minutes: minutes, redis: queue.redis, keys: queue.keys)
        return try Self.json(.ok, report)
    }

    // MARK: - Assets

    private func showAsset(_ id: String) async throws -> Response {
        guard let store, let asset = try? AssetID(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        guard let version = try await store.versions(of: asset).current else {
            return Self.error(.notFound, "no published asset \(id)", field: "id")
        }
        var answer = [
            "asset_id": id, "version": version.version, "playback_path": "/v/\(id)/master.m3u8",
            "state": version.isGrowing ? "growing" : "published",
        ]
        // The stills `asset.json` lists, at version-less URLs (a growing version has none yet).
        if !version.isGrowing, let manifest = try await store.readBuffer("asset.json", of: version, maximumBytes: 1 << 20),
           let summary = try? JSONDecoder().decode(TranscodeSummary.self, from: Data(manifest.readableBytesView))
        {
            if let poster = summary.poster { answer["poster_path"] = "/v/\(id)/\(poster)" }
            if let storyboard = summary.storyboard { answer["storyboard_path"] = "/v/\(id)/\(storyboard)" }
        }
        return try Self.json(.ok, answer)
    }

    private func deleteAsset(_ id: String) async throws -> Response {
        guard let store, let asset = try? AssetID(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        guard try await store.versions(of: asset).current != nil else {
            return Self.error(.notFound, "no published asset \(id)", field: "id")
        }
        try await store.unpublish(asset)
        do {
            try await queue.redis.announceAssetChange(id, in: queue.keys)
        } catch {
            // Origins that miss the announcement notice within a second or half a minute anyway.
            logger.warning("asset withdrawn but not announced", metadata: ["asset": "\(id)", "error": "\(error)"])
        }
        logger.info("asset withdrawn", metadata: ["asset": "\(id)"])
        return Response(status: .noContent)
    }
}
