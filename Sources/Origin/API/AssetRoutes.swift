import Foundation
import Hummingbird
import NIOPosix
import Store
import Redis

extension JobAPI {
    func registerAssetRoutes<Context: RequestContext>(on router: Router<Context>) {
        router.get("/v1/assets") { request, _ in try await self.authorized(request) { try await self.listAssets() } }
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

    /// An asset as `GET /v1/assets/{id}` describes it; the stills at version-less URLs (a growing
    /// version has none yet), the ladder as `asset.json` records it.
    struct AssetAnswer: Encodable {
        var assetID: String
        var version: String
        var state: String
        var playbackPath: String
        var posterPath: String?
        var storyboardPath: String?
        var publisher: String?
        /// Every version still readable, the published one included.
        var versions: [String]
        var profile: String?
        var durationSeconds: Double?
        var renditions: [TranscodeSummary.Rendition]?
        var warnings: [String]?

        enum CodingKeys: String, CodingKey {
            case assetID = "asset_id", version, state, playbackPath = "playback_path", posterPath = "poster_path"
            case storyboardPath = "storyboard_path", publisher, versions, profile, durationSeconds = "duration_s", renditions, warnings
        }
    }

    private func showAsset(_ id: String) async throws -> Response {
        guard let store, let asset = try? AssetID(id) else { return Self.error(.badRequest, "'\(id)' is not an asset id", field: "id") }
        let versions = try await store.versions(of: asset)
        guard let version = versions.current else { return Self.error(.notFound, "no published asset \(id)", field: "id") }
        var answer = AssetAnswer(
            assetID: id, version: version.version, state: version.isGrowing ? "growing" : "published",
            playbackPath: "/v/\(id)/master.m3u8", publisher: versions.publisher, versions: versions.readable.keys.sorted()
        )
        if !version.isGrowing, let manifest = try await store.readBuffer("asset.json", of: version, maximumBytes: 1 << 20),
           let summary = try? JSONDecoder().decode(TranscodeSummary.self, from: Data(manifest.readableBytesView))
        {
            answer.posterPath = summary.poster.map { "/v/\(id)/\($0)" }
            answer.storyboardPath = summary.storyboard.map { "/v/\(id)/\($0)" }
            answer.profile = summary.profile
            answer.durationSeconds = summary.durationSeconds
            answer.renditions = summary.renditions
            answer.warnings = summary.warnings
        }
        return try Self.json(.ok, answer)
    }

    struct ListedAsset: Encodable {
        var assetID: String
        var version: String
        var state: String
        enum CodingKeys: String, CodingKey { case assetID = "asset_id", version, state }
    }

    /// `GET /v1/assets`: published assets by id, their versions read side by side (200 at most).
    private func listAssets() async throws -> Response {
        guard let store else { return Self.error(.notFound, "no store") }
        let ids = try await store.publishedAssets().sorted { $0.rawValue < $1.rawValue }.prefix(200)
        let listed = try await withThrowingTaskGroup(of: ListedAsset?.self) { group in
            for id in ids {
                group.addTask {
                    guard let current = try await store.versions(of: id).current else { return nil }
                    return ListedAsset(assetID: id.rawValue, version: current.version, state: current.isGrowing ? "growing" : "published")
                }
            }
            return try await group.reduce(into: [ListedAsset]()) { if let asset = $1 { $0.append(asset) } }
        }
        return try Self.json(.ok, ["assets": listed.sorted { $0.assetID < $1.assetID }])
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
