import Foundation
import TestSupport
import Testing

/// Viewer analytics end to end: `streamgate serve` with Redis, viewers playing a transcoded asset
/// over real HTTP, players' beacons, and the report from the API and the command line.
@Suite("viewer analytics", .serialized)
struct AnalyticsTests {
    static let apiKey = "analytics-test-api-key-0123456789"

    @Test("views, viewers, watch time, renditions, errors and beacons add up; invented ids leave nothing", .tags(.endToEnd))
    func report() async throws {
        let folder = try TemporaryFolder()
        let store = folder.path + "/store"
        let made = try await run(streamgateBinary, [
            "transcode", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, "--out", store, "--asset-id", "watched",
            "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path, "--json", "--quiet",
        ], environment: streamgateEnvironment())
        #expect(made.status == 0, "\(made.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: made.stdoutData) as? [String: Any])
        let duration = try #require(summary["duration"] as? Double)

        try await withRedis { redis in
            try await withServe(
                store: store, arguments: ["--redis", redis.urlString, "--analytics-flush", "200ms", "--rate-limit", "0"],
                environment: ["STREAMGATE_API_KEYS": Self.apiKey]
            ) { server in
                // Viewer one plays the 360p rendition from its first segment to its last.
                let one = ["User-Agent": "viewer-one/1.0"]
                #expect(try await server.request("GET", "/v/watched/master.m3u8", headers: one).status == 200)
                let playlist = try await server.request("GET", "/v/watched/360p/index.m3u8", headers: one)
                let segments = playlist.body.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
                #expect(!segments.isEmpty, "\(playlist.body)")
                for segment in segments {
                    // Playlist URIs are relative to the playlist's own (versioned) location.
                    let path = segment.hasPrefix("/") ? String(segment) : "/v/watched/360p/" + segment
                    #expect(try await server.request("GET", path, headers: one).status == 200, "\(path)")
                }
                // Asking again within half an hour is the same view.
                #expect(try await server.request("GET", "/v/watched/master.m3u8", headers: one).status == 200)
                // Viewer two starts on 240p and stops after one segment; then asks for one that is not there.
                let two = ["User-Agent": "viewer-two/2.0"]
                #expect(try await server.request("GET", "/v/watched/master.m3u8", headers: two).status == 200)
                let other = try await server.request("GET", "/v/watched/240p/index.m3u8", headers: two)
                let first = try #require(other.body.split(separator: "\n").first { !$0.hasPrefix("#") && !$0.isEmpty })
                #expect(try await server.request("GET", first.hasPrefix("/") ? String(first) : "/v/watched/240p/" + first, headers: two).status == 200)
                #expect(try await server.request("GET", "/v/watched/240p/seg_99999.ts", headers: two).status == 404)

                // The players' reports; a malformed one is refused by field, an unknown asset's is a 404.
                for beacon in [#"{"event":"startup","ms":800}"#, #"{"event":"startup","ms":400}"#, #"{"event":"rebuffer","ms":250}"#,
                               #"{"event":"switch","rendition":"240p"}"#, #"{"event":"error","code":"network"}"#] {
                    #expect(try await server.request("POST", "/v/watched/beacon", headers: ["Content-Type": "text/plain"], body: beacon).status == 204)
                }
                let bad = try await server.request("POST", "/v/watched/beacon", body: #"{"event":"startup","ms":-5}"#)
                #expect(bad.status == 400 && bad.body.contains("'ms'"), "\(bad.body)")
                #expect(try await server.request("POST", "/v/watched/beacon", body: #"{"event":"party"}"#).status == 400)
                #expect(try await server.request("POST", "/v/watched/beacon", body: String(repeating: " ", count: 2000)).status == 413)
                #expect(try await server.request("POST", "/v/invented/beacon", body: #"{"event":"startup","ms":1}"#).status == 404)
                for index in 0..<50 {
                    #expect(try await server.request("GET", "/v/invented-\(index)/master.m3u8", headers: ["User-Agent": "bot-\(index)"]).status == 404)
                }

                // The tallies reach Redis within a flush.
                var report: [String: Any] = [:]
                let auth = ["Authorization": "Bearer \(Self.apiKey)"]
                let arrived = try await eventually(within: 10) {
                    let answer = try await server.request("GET", "/v1/assets/watched/analytics?minutes=5", headers: auth)
                    report = (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any] ?? [:]
                    let totals = report["totals"] as? [String: Any]
                    return (totals?["experience"] as? [String: Any])?["switches"] as? Int == 1 && totals?["errors_4xx"] as? Int == 1
                }
                #expect(arrived, "\(report)")
                let totals = try #require(report["totals"] as? [String: Any])
                #expect(totals["views"] as? Int == 2, "\(totals)")
                #expect(totals["viewers"] as? Int == 2, "\(totals)")
                let renditions = try #require(totals["renditions"] as? [String: Int])
                #expect(renditions == ["360p": segments.count, "240p": 1], "\(renditions)")
                // Viewer one watched the whole clip; viewer two one 240p segment of it.
                let watched = try #require(totals["watch_s"] as? Double)
                let oneSegment = duration / Double(segments.count)
                #expect(abs(watched - duration - oneSegment) < 0.5, "watched \(watched) s of a \(duration) s clip")
                #expect((totals["bytes"] as? Int ?? 0) > 10_000)
                let experience = try #require(totals["experience"] as? [String: Any])
                #expect(experience["startups"] as? Int == 2 && experience["startup_ms_mean"] as? Double == 600)
                #expect(experience["rebuffers"] as? Int == 1 && experience["rebuffer_ms"] as? Int == 250 && experience["errors"] as? Int == 1)
                #expect(report["peak_concurrent_viewers"] as? Int == 2)

                // The command line reads the same report from Redis.
                let cli = try await run(streamgateBinary, ["analytics", "watched", "--redis", redis.urlString, "--minutes", "5", "--json"])
                let printed = try #require(try JSONSerialization.jsonObject(with: cli.stdoutData) as? [String: Any], "\(cli.stderr)")
                #expect((printed["totals"] as? [String: Any])?["views"] as? Int == 2)
                let text = try await run(streamgateBinary, ["analytics", "watched", "--redis", redis.urlString])
                #expect(text.stdout.contains("views 2, unique viewers 2"), "\(text.stdout)")

                // Nothing was kept of the invented assets.
                let keys = try await redis.client(connections: 1).send(["KEYS", "*invented*"]).array ?? []
                #expect(keys.isEmpty, "\(keys)")
                let refused = try await server.request("GET", "/v1/assets/watched/analytics?minutes=99999", headers: auth)
                #expect(refused.status == 400 && refused.body.contains("minutes"))
                #expect(try await server.request("GET", "/v1/assets/watched/analytics").status == 401)
            }
        }
    }
}
