import Foundation
import LocalChain
import Processes
import TestSupport
import Testing

/// The web console in a real browser: Playwright (PyPI) drives Debian's chromium through
/// scripts/console_browser.py against a real stack (redis-server, a farm of two workers, `streamgate
/// serve` with NFT gating, a local EVM). The script reports what the pages showed; this judges it.
@Suite("web console: a real browser signs in, uploads, watches, plays, scales, cancels, gates", .serialized)
struct ConsoleTests {
    static let apiKey = "console-test-api-key-0123456789"
    static let asset = "console-clip"

    @Test("the console, end to end in chromium, and the viewer's page with an owner's and a stranger's wallet", .tags(.endToEnd))
    func consoleInChromium() async throws {
        let chain = try await offPool { try LocalChainProcess() }
        defer { chain.stop() }
        let owner = chain.accounts[1], stranger = chain.accounts[2]
        _ = try await chain.call("sg_mint721", [.string(owner.address.checksummed), 1])
        let policy = #"{"chain_id":\#(chain.chainID),"condition":{"erc721":{"contract":"\#(chain.contract("erc721").checksummed)","token_ids":["1"]}}}"#
        let longClip = await FarmHarness.longClip
        try await withFarm { farm in
            try FileManager.default.createDirectory(atPath: farm.store, withIntermediateDirectories: true)
            try farm.startFarm(workers: 2)
            let prometheus = try await Self.startPrometheus(in: farm.folder.path)
            defer { _ = prometheus.process.terminate(grace: 2) }
            // The viewer's page signs in for the origin it was loaded from: the SIWE domain is it.
            let port = try LoopbackListener.freePort()
            let secret = Data((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 5 &+ 2) }).base64EncodedString()
            try await withServe(
                store: farm.store, port: port,
                arguments: [
                    "--redis", farm.redis.urlString, "--siwe-domain", "localhost:\(port)", "--siwe-uri", "http://localhost:\(port)/",
                    "--rpc", "\(chain.chainID)=\(chain.rpcURL)", "--chain-poll", "0.2", "--prometheus-url", prometheus.url,
                ],
                environment: farm.environment.merging(["STREAMGATE_TOKEN_SECRET": secret, "STREAMGATE_API_KEYS": Self.apiKey]) { $1 },
                log: farm.folder.path + "/serve.log"
            ) { origin in
                let screenshots = packageRoot.appendingPathComponent(".build/console-screenshots").path
                try? FileManager.default.removeItem(atPath: screenshots)
                try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
                let config: [String: String] = [
                    "base": "http://localhost:\(port)", "api_key": Self.apiKey, "asset": Self.asset, "policy": policy,
                    "clip": packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, "long_clip": longClip,
                    "owner_key": "0x" + owner.privateKey.map { String(format: "%02x", $0) }.joined(),
                    "stranger_key": "0x" + stranger.privateKey.map { String(format: "%02x", $0) }.joined(),
                    "screenshots": screenshots,
                ]
                let output = try await run(
                    packageRoot.appendingPathComponent(".venv/bin/python").path,
                    [packageRoot.appendingPathComponent("scripts/console_browser.py").path, String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)],
                    timeout: 420
                )
                let line = output.stdout.split(separator: "\n").last.map(String.init) ?? ""
                let report = try #require(
                    try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    "console_browser.py said: \(output.stdout.suffix(2000)) \(output.stderr.suffix(3000))"
                )
                #expect((report["page_errors"] as? [String])?.isEmpty == true, "scripts threw in the page: \(report["page_errors"] ?? "")")
                guard report["error"] == nil else {
                    Issue.record("the browser stopped: \(report["error"] ?? "") (screenshot .build/console-screenshots/failure.png); \(report)")
                    return
                }
                Self.judge(report)
                // What the console did, seen from the server's side.
                let policyRead = try await origin.request("GET", "/v1/assets/\(Self.asset)/policy", headers: ["Authorization": "Bearer \(Self.apiKey)"])
                #expect(policyRead.status == 200 && policyRead.body.lowercased().contains(chain.contract("erc721").checksummed.lowercased()), "\(policyRead.body)")
                #expect(try await farm.queue.farm("default").desired == 3)
            }
        }
    }

    @Test("the console's files: built into the binary, gzipped for a browser that takes it, revalidated by ETag, under a strict CSP")
    func consoleFiles() async throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.path + "/store", withIntermediateDirectories: true)
        try await withServe(store: folder.path + "/store") { origin in
            let base = origin.baseURL
            let plain = try await run("/usr/bin/curl", ["-s", "-D", "-", "-o", folder.path + "/plain.js", base + "/console/console.js"])
            let zipped = try await run("/usr/bin/curl", ["-s", "-D", "-", "-H", "Accept-Encoding: gzip", "-o", folder.path + "/console.js.gz", base + "/console/console.js"])
            #expect(plain.stdout.contains("200 OK") && !plain.stdout.lowercased().contains("content-encoding"), "\(plain.stdout)")
            #expect(zipped.stdout.lowercased().contains("content-encoding: gzip"), "\(zipped.stdout)")
            let unzipped = try await run("/usr/bin/gzip", ["-dc", folder.path + "/console.js.gz"])
            let original = try Data(contentsOf: URL(fileURLWithPath: folder.path + "/plain.js"))
            #expect(unzipped.stdoutData == original && original.count > 10_000)
            let compressed = try Data(contentsOf: URL(fileURLWithPath: folder.path + "/console.js.gz"))
            #expect(compressed.count * 2 < original.count, "gzip more than halves it: \(compressed.count) of \(original.count)")

            let page = try await run("/usr/bin/curl", ["-s", "-D", "-", "-o", "/dev/null", base + "/console/"])
            for header in ["content-security-policy: default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "x-content-type-options: nosniff", "cache-control: no-cache"] {
                #expect(page.stdout.lowercased().contains(header), "\(header) in \(page.stdout)")
            }
            let etag = try #require(page.stdout.split(separator: "\r\n").first { $0.lowercased().hasPrefix("etag:") }?.dropFirst(5).trimmingCharacters(in: .whitespaces))
            let again = try await run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "If-None-Match: \(etag)", base + "/console/"])
            #expect(again.stdout == "304")
            for path in ["/console/nothing.js", "/console/..%2fconsole.html", "/console/console.js/x"] {
                #expect(try await origin.get(path).status == 404, "\(path)")
            }
            #expect(try await origin.get("/watch/any-asset").status == 200, "the viewer's page is public")
            // Without Redis there is no job API: signing in says so rather than pretending.
            #expect(try await origin.request("POST", "/v1/session", body: #"{"api_key":"x"}"#).status == 404)
        }
    }

    /// A real Prometheus (Debian's) evaluating one rule that always fires, so the console has an
    /// alert to show; returns once it answers ready.
    static func startPrometheus(in folder: String) async throws -> (process: ChildProcess, url: String) {
        try """
        groups:
          - name: console-test
            rules:
              - alert: StreamGateConsoleTestAlert
                expr: vector(1)
                labels: {severity: ticket}
                annotations: {summary: "An alert that always fires, for the console's test", runbook_url: docs/runbooks/README.md}
        """.write(toFile: folder + "/rules.yml", atomically: true, encoding: .utf8)
        try "global: {evaluation_interval: 1s}\nrule_files: [\(folder)/rules.yml]\n".write(toFile: folder + "/prometheus.yml", atomically: true, encoding: .utf8)
        let port = try LoopbackListener.freePort()
        let process = try ChildProcess(
            executable: "/usr/bin/prometheus",
            arguments: ["--config.file=\(folder)/prometheus.yml", "--storage.tsdb.path=\(folder)/prometheus-data", "--web.listen-address=127.0.0.1:\(port)"],
            stdout: .file(folder + "/prometheus.log"), stderr: .file(folder + "/prometheus.log")
        )
        let url = "http://127.0.0.1:\(port)"
        guard try await eventually(within: 30, { try await run("/usr/bin/curl", ["-sf", url + "/-/ready"]).status == 0 }) else {
            throw TestFailure("prometheus did not become ready: \((try? String(contentsOfFile: folder + "/prometheus.log", encoding: .utf8))?.suffix(1500) ?? "")")
        }
        return (process, url)
    }

    /// What the browser must have seen, step by step.
    static func judge(_ report: [String: Any]) {
        #expect((report["wrong_key"] as? String)?.contains("unknown API key") == true, "\(report["wrong_key"] ?? "")")
        let cookie = report["cookie"] as? [String: Any]
        #expect(cookie?["http_only"] as? Bool == true && cookie?["same_site"] as? String == "Strict" && cookie?["readable_by_page"] as? Bool == false, "\(cookie ?? [:])")
        #expect(report["change_without_csrf"] as? Int == 403, "a change without X-CSRF-Token: \(report["change_without_csrf"] ?? "")")
        #expect((report["first_paint_s"] as? Double ?? 99) < 5)

        let states = report["job_states"] as? [String] ?? []
        let progress = report["job_progress"] as? [Double] ?? []
        #expect(states.last == "succeeded" && states.count >= 2, "the job's row changed live, without a reload: \(states)")
        #expect(progress.last == 100, "its progress bar reached 100 %: \(progress)")

        let player = report["console_player"] as? [String: Any] ?? [:]
        #expect((player["current_time"] as? Double ?? 0) > 1.5 && (player["frames"] as? Int ?? 0) > 20, "the console's <video> played: \(player)")
        #expect((player["width"] as? Int ?? 0) > 0 && (player["renditions"] as? Int ?? 0) >= 2, "\(player)")
        #expect((player["poster"] as? String)?.contains("poster") == true, "\(player)")
        #expect((report["storyboard_preview"] as? String)?.contains("storyboard") == true, "seek previews from the storyboard: \(report["storyboard_preview"] ?? "")")
        #expect((report["policy_saved"] as? String)?.contains("saved") == true && report["policy_read_back"] as? Int == 200)
        let patches = report["upload_patches"] as? [String: Int] ?? [:]
        #expect(patches["dropped"] == 1 && (patches["sent"] ?? 0) >= 5, "a 37 MB upload in 8 MiB chunks, one connection dropped, resumed: \(patches)")
        let live = report["live_progress"] as? Double ?? 0
        #expect(live > 0 && live < 100, "a running job's progress seen moving: \(live) \(report["live_figures"] ?? "")")
        #expect((report["live_figures"] as? String)?.contains("fps") == true, "\(report["live_figures"] ?? "")")
        #expect(report["cancelled_job"] as? String == "cancelled")
        #expect(report["workers_before"] as? Int == 2 && report["workers_after"] as? Int == 3, "scaled 2 → 3: \(report["workers_before"] ?? "") → \(report["workers_after"] ?? "")")
        #expect((report["health_values"] as? [String])?.filter { $0 != "–" }.count ?? 0 >= 3, "\(report["health_values"] ?? "")")
        #expect((report["alerts"] as? String)?.contains("StreamGateConsoleTestAlert firing · ticket") == true, "Prometheus's alert shown: \(report["alerts"] ?? "")")
        #expect((report["unlabelled_controls"] as? [String]) == [], "form controls without a label: \(report["unlabelled_controls"] ?? "")")
        #expect((report["phone_overflow_px"] as? Int ?? 1) <= 0, "sideways scrolling at a phone's width: \(report["phone_overflow_px"] ?? "")")

        let owner = report["watch_owner"] as? [String: Any] ?? [:]
        #expect((owner["current_time"] as? Double ?? 0) > 1 && (owner["frames"] as? Int ?? 0) > 10 && (owner["refusal"] as? String) == "", "the owner's wallet plays the gated asset: \(owner)")
        let stranger = report["watch_stranger"] as? [String: Any] ?? [:]
        #expect((stranger["refusal"] as? String)?.contains("cannot watch this stream") == true, "a stranger's wallet is refused in words: \(stranger)")
        #expect((stranger["current_time"] as? Double ?? 1) == 0, "and plays nothing: \(stranger)")
        #expect((report["retry_refusal"] as? String)?.contains("upload the file again") == true, "\(report["retry_refusal"] ?? "")")
        #expect(report["after_withdraw"] as? Int == 404, "withdrawn from the console: \(report["after_withdraw"] ?? "")")
    }
}
