import Foundation
import Jobs
import TestSupport
import Testing

/// Every `/metrics` StreamGate serves (a server's, a worker's, a farm's) passes Prometheus's own
/// linter, `promtool check metrics`: names, types, units and a help text for every metric.
@Suite("metrics endpoints", .serialized)
struct MetricsEndpointTests {
    static let apiKey = "metrics-test-api-key-0123456789"

    /// `promtool check metrics` of `text`: its exit status and what it said.
    static func lint(_ text: Data) async throws -> ProcessOutput {
        try await run("/usr/bin/promtool", ["check", "metrics"], stdin: text)
    }

    static func scrape(_ port: Int) async throws -> Data {
        let output = try await run("/usr/bin/curl", ["-s", "-f", "http://127.0.0.1:\(port)/metrics"])
        guard output.status == 0 else { throw TestFailure("no /metrics on port \(port): \(output.stderr)") }
        return output.stdoutData
    }

    @Test("the server's, a worker's and a farm's /metrics pass promtool check metrics after real work", .tags(.endToEnd))
    func promtoolClean() async throws {
        // The linter is not blind: a metric without help text fails it.
        #expect(try await Self.lint(Data("# TYPE streamgate_unexplained_total counter\nstreamgate_unexplained_total 1\n".utf8)).status != 0)

        try await withFarm { farm in
            let workerPort = try freePort(), farmPort = try freePort()
            try farm.startWorker("measured", extra: ["--metrics-port", String(workerPort)])
            try farm.startFarm(workers: 1, extra: ["--metrics-port", String(farmPort), "--name", "linted"])
            #expect(try await eventually(within: 20) { FileManager.default.fileExists(atPath: farm.store + "/assets") })
            try await withServe(
                store: farm.store, arguments: ["--redis", farm.redis.urlString, "--source-root", packageRoot.appendingPathComponent("fixtures/good").path],
                environment: ["STREAMGATE_API_KEYS": Self.apiKey]
            ) { server in
                let id = try await farm.queue.enqueue(JobSpec(
                    source: packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, profile: "fast", assetID: "linted"
                )).jobID
                #expect(try await farm.wait(for: id) { $0.state.isTerminal }.state == .succeeded)
                // Playback, the API and a refusal, so every kind of series exists.
                #expect(try await server.get("/v/linted/master.m3u8").status == 200)
                #expect(try await server.get("/v/linted/master.m3u8").status == 200)
                #expect(try await server.request("GET", "/v1/queue", headers: ["Authorization": "Bearer \(Self.apiKey)"]).status == 200)
                #expect(try await server.request("GET", "/v1/queue").status == 401)
                try await Task.sleep(for: .seconds(6))  // the queue gauges' refresh

                for (what, port) in [("server", server.port), ("worker", workerPort), ("farm", farmPort)] {
                    let text = try await Self.scrape(port)
                    #expect(!text.isEmpty, "\(what) serves metrics")
                    let lint = try await Self.lint(text)
                    #expect(lint.status == 0, "\(what): \(lint.stdout)\(lint.stderr)")
                }
                let server = String(decoding: try await Self.scrape(server.port), as: UTF8.self)
                #expect(server.contains("streamgate_api_requests_total{route=\"/v1/queue\",method=\"GET\",status=\"200\"} 1"), "\(server)")
                #expect(server.contains("streamgate_queue_refreshed_timestamp_seconds"))
                let farmText = String(decoding: try await Self.scrape(farmPort), as: UTF8.self)
                #expect(farmText.contains("streamgate_farm_worker_restarts_total{farm=\"linted\"} 0"), "\(farmText)")
            }
        }
    }
}
