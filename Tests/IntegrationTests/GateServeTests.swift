import Foundation
import Gate
import TestSupport
import Testing
import LocalChain

/// `streamgate serve`'s gate as an operator sets it up (or does not): flags, over a real socket.
@Suite("the gate of streamgate serve: sign-in limits, and no gate")
struct GateServeTests {
    /// Loopback is exempt by default (as for playback); `--auth-rate-limit-loopback` counts it, so
    /// a flood from this machine gets its burst, then 429 with Retry-After and a JSON reason.
    @Test func nonceFloodOverLoopbackIsRateLimited() async throws {
        let folder = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder.path + "/store", withIntermediateDirectories: true)
        let chain = try await offPool { try LocalChainProcess() }
        defer { chain.stop() }
        try await withRedis { redis in
            let secret = Data((0..<32).map { UInt8($0) }).base64EncodedString()
            try await withServe(
                store: folder.path + "/store",
                arguments: [
                    "--redis", redis.urlString, "--siwe-domain", "localhost", "--rpc", "\(chain.chainID)=\(chain.rpcURL)",
                    "--auth-rate-limit", "0.001", "--auth-rate-burst", "5", "--auth-rate-limit-loopback",
                ],
                environment: ["STREAMGATE_TOKEN_SECRET": secret], log: folder.path + "/serve.log"
            ) { server in
                var statuses: [Int] = []
                var refused: (status: Int, body: String)?
                for _ in 0..<8 {
                    let answer = try await server.request("POST", "/v1/auth/nonce")
                    statuses.append(answer.status)
                    if answer.status == 429 { refused = answer }
                }
                // One request in 1000 s after the burst: however slow the machine, the burst and no more.
                #expect(statuses == [200, 200, 200, 200, 200, 429, 429, 429], "\(statuses)")
                #expect(refused?.body.contains("\"reason\":\"rate_limited\"") == true, "\(refused?.body ?? "")")
                let large = try await server.request("POST", "/v1/auth/siwe", body: String(repeating: "a", count: 20_000))
                #expect(large.status == 429, "the limit comes before the body is read")
            }
        }
    }

    /// `serve --redis` without `--siwe-domain` reads policies, and refuses the key of an asset that
    /// has one instead of handing it to anyone.
    @Test func gatedAssetNeedsAGate() async throws {
        try await withSharedOrigins { harness in
            try harness.publish("film", generation: 0)
            let keyFile = try #require(try FileManager.default.contentsOfDirectory(atPath: harness.store.root + "/assets/film/keys").first)
            let path = "/v/film/keys/" + keyFile.dropLast(4)
            try await harness.withOrigin { origin in
                let open = try await origin.get(path)
                #expect(open.status == 200 && open.body.count == 16, "a public asset's key is served")

                // A policy, as another origin's PUT /v1/assets/film/policy stores and announces it.
                let policy = try AccessPolicy(json: #"{"chain_id":1,"condition":{"erc721":{"contract":"0x00000000000000000000000000000000000c0de1"}}}"#)
                try await harness.queue.redis.send(["SET", harness.queue.keys.policy("film"), policy.canonicalJSON])
                try await harness.queue.redis.send(["PUBLISH", harness.queue.keys.assetChanges, "film"])
                var answer = try await origin.request("GET", path)
                let deadline = Date().addingTimeInterval(15)
                while answer.status == 200, Date() < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                    answer = try await origin.request("GET", path)
                }
                #expect(answer.status == 503, "\(answer)")
                #expect(answer.body.contains("\"reason\":\"gate_not_configured\""), "\(answer.body)")
                for _ in 0..<3 { await #expect(try origin.get(path).status == 503) }
            }
        }
    }
}
