import Foundation
import Gate
import TestSupport
import Testing
import LocalChain
import Ethereum

/// NFT-gated playback end to end: a real EVM (fixtures/chain), a real redis-server, `streamgate
/// serve` with gating on, viewers who sign in with eth-account (PyPI) and ffmpeg as the player.
@Suite("gated playback: sign in with Ethereum, own the NFT, get the key", .serialized)
struct GatedPlaybackTests {
    static let domain = "localhost"
    static let apiKey = "gated-test-api-key-0123456789"

    /// A chain, a redis-server and `streamgate serve` gating `asset`, a transcoded clip; made by
    /// ``withStack(isolation:_:)``, which stops all three.
    final class Stack: @unchecked Sendable {
        let folder: TemporaryFolder
        let chain: LocalChainProcess
        let server: OriginServer
        let store: String
        let asset = GatedPlaybackTests.asset
        let keyID: String

        init(folder: TemporaryFolder, chain: LocalChainProcess, server: OriginServer, store: String, keyID: String) {
            self.folder = folder
            self.chain = chain
            self.server = server
            self.store = store
            self.keyID = keyID
        }

        var erc721: EthereumAddress { chain.contract("erc721") }

        func setPolicy(_ json: String) async throws {
            let put = try await server.request("PUT", "/v1/assets/\(asset)/policy", headers: ["Authorization": "Bearer \(GatedPlaybackTests.apiKey)"], body: json)
            guard put.status == 200 else { throw TestFailure("PUT policy: \(put.status) \(put.body)") }
        }

        /// Signs in as `account` (a nonce from the server, an EIP-4361 message signed by eth-account)
        /// and returns the playback token.
        func signIn(_ account: LocalChainProcess.Account) async throws -> String {
            let nonce = try await server.request("POST", "/v1/auth/nonce")
            let nonceValue = try #require(try JSONSerialization.jsonObject(with: Data(nonce.body.utf8)) as? [String: String])["nonce"]!
            let message = GatedPlaybackTests.message(address: account.address, nonce: nonceValue)
            let signature = try await GatedPlaybackTests.sign(message, key: account.privateKey)
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["message": message, "signature": signature]), as: UTF8.self)
            let answer = try await server.request("POST", "/v1/auth/siwe", headers: ["Content-Type": "application/json"], body: body)
            guard answer.status == 200, let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: String],
                  let token = object["token"]
            else { throw TestFailure("sign-in: \(answer.status) \(answer.body)") }
            #expect(object["address"] == account.address.checksummed)
            return token
        }

        func key(token: String?) async throws -> (status: Int, body: String) {
            try await server.request("GET", "/v/\(asset)/keys/\(keyID)", headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
        }

        func play(token: String) async throws -> ProcessOutput {
            try await run("/usr/bin/ffmpeg", ["-v", "error", "-i", "\(server.baseURL)/v/\(asset)/master.m3u8?token=\(token)", "-map", "0", "-f", "null", "-"])
        }
    }

    static let asset = "gated-film"

    /// Runs `body` with a ``Stack``; afterwards, whatever `body` did, the server, Redis and the
    /// chain are stopped.
    static func withStack<T>(isolation: isolated (any Actor)? = #isolation, _ body: (Stack) async throws -> T) async throws -> T {
        let folder = try TemporaryFolder()
        let chain = try await offPool { try LocalChainProcess() }
        defer { chain.stop() }
        return try await withRedis { redis in
            let store = folder.path + "/store"
            let transcode = try await run(streamgateBinary, [
                "transcode", packageRoot.appendingPathComponent("fixtures/good/short.mp4").path,
                "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path, "--out", store, "--asset-id", asset,
            ], environment: streamgateEnvironment())
            guard transcode.status == 0 else { throw TestFailure("transcode failed: \(transcode.stderr)") }
            let keys = try FileManager.default.contentsOfDirectory(atPath: store + "/assets/\(asset)/keys")
            let keyID = String(try #require(keys.first).dropLast(4))
            let secret = Data((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 9 &+ 1) }).base64EncodedString()
            return try await withServe(
                store: store,
                arguments: [
                    "--redis", redis.urlString, "--siwe-domain", domain, "--rpc", "\(chain.chainID)=\(chain.rpcURL)",
                    "--chain-poll", "0.2",
                ],
                environment: ["STREAMGATE_TOKEN_SECRET": secret, "STREAMGATE_API_KEYS": apiKey],
                log: folder.path + "/serve.log"
            ) { server in
                try await body(Stack(folder: folder, chain: chain, server: server, store: store, keyID: keyID))
            }
        }
    }

    static func message(address: EthereumAddress, nonce: String, domain: String = domain, uri: String = "https://localhost/watch", chainID: UInt64 = 31337) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return """
        \(domain) wants you to sign in with your Ethereum account:
        \(address.checksummed)

        Watch the gated film.

        URI: \(uri)
        Version: 1
        Chain ID: \(chainID)
        Nonce: \(nonce)
        Issued At: \(formatter.string(from: Date()))
        """
    }

    /// `personal_sign` by eth-account, the Python wallet library: an implementation independent of
    /// StreamGate's.
    static func sign(_ message: String, key: [UInt8]) async throws -> String {
        let script = """
        import sys
        from eth_account import Account
        from eth_account.messages import encode_defunct
        signature = Account.sign_message(encode_defunct(text=sys.stdin.read()), private_key=sys.argv[1]).signature.hex()
        print(signature if signature.startswith("0x") else "0x" + signature)
        """
        let python = packageRoot.appendingPathComponent(".venv/bin/python").path
        let output = try await run(python, ["-c", script, "0x" + key.map { String(format: "%02x", $0) }.joined()], stdin: Data(message.utf8))
        guard output.status == 0 else { throw TestFailure("eth-account: \(output.stderr)") }
        return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("an owner plays the gated stream with ffmpeg; others get 401 or 403 and no key; a sale revokes within a block")
    func ownerPlaysOthersDoNot() async throws {
        try await Self.withStack { stack in
            let owner = stack.chain.accounts[1], other = stack.chain.accounts[2], stranger = stack.chain.accounts[3]
            _ = try await stack.chain.call("sg_mint721", [.string(owner.address.checksummed), 1])
            try await stack.setPolicy(#"{"chain_id":\#(stack.chain.chainID),"condition":{"erc721":{"contract":"\#(stack.erc721.checksummed)","token_ids":["1"]}}}"#)

            // Public parts stay public: the playlist and segments, without any token.
            await #expect(try stack.server.get("/v/\(stack.asset)/master.m3u8").status == 200)
            let noToken = try await stack.key(token: nil)
            #expect(noToken.status == 401 && noToken.body.contains("missing_token"))
            await #expect(try stack.key(token: "forged.token").status == 401)

            let ownerToken = try await stack.signIn(owner)
            await #expect(try stack.key(token: ownerToken).status == 200)
            let keyBytes = try await stack.server.get("/v/\(stack.asset)/keys/\(stack.keyID)?token=\(ownerToken)")
            #expect(keyBytes.status == 200 && keyBytes.body.count == 16, "the 16-byte key, with the token in the query")
            // The second grant came from memory, on the event loop (token verified, grant cached).
            await #expect(try stack.server.metric("streamgate_origin_fast_path_total") >= 1)
            let play = try await stack.play(token: ownerToken)
            #expect(play.status == 0 && play.stderr.isEmpty, "ffmpeg playing the gated stream: \(play.stderr)")

            let otherToken = try await stack.signIn(other)
            let refused = try await stack.key(token: otherToken)
            #expect(refused.status == 403 && refused.body.contains("not_owner"), "\(refused)")
            #expect(try await stack.play(token: otherToken).status != 0, "no key, no playback")

            // The owner sells: refused within a block (the follower reads new blocks every 0.2 s).
            _ = try await stack.chain.call("sg_transfer721", [.string(owner.address.checksummed), .string(other.address.checksummed), 1])
            let sold = Date()
            var ownerStatus = 200
            while ownerStatus == 200, Date().timeIntervalSince(sold) < 3 {
                ownerStatus = try await stack.key(token: ownerToken).status
                if ownerStatus == 200 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(ownerStatus == 403, "the seller is refused after the transfer")
            var otherStatus = 403
            while otherStatus == 403, Date().timeIntervalSince(sold) < 15 {
                otherStatus = try await stack.key(token: otherToken).status
                if otherStatus == 403 { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(otherStatus == 200, "the buyer is admitted once the denial expires or is dropped")

            // A revoked token is refused everywhere.
            let revoke = try await stack.server.request("POST", "/v1/auth/revoke", headers: ["Authorization": "Bearer \(otherToken)"])
            #expect(revoke.status == 204)
            let revoked = try await stack.key(token: otherToken)
            #expect(revoked.status == 401 && revoked.body.contains("revoked"), "\(revoked)")

            // The chain stops: an answer that is not cached cannot be had, so no key (503).
            let strangerToken = try await stack.signIn(stranger)
            stack.chain.stop()
            let unavailable = try await stack.key(token: strangerToken)
            #expect(unavailable.status == 503, "\(unavailable)")
        }
    }

    @Test("sign-in refuses a wrong domain, a replayed nonce and a signature by another key")
    func signInRefusals() async throws {
        try await Self.withStack { stack in
            let account = stack.chain.accounts[4]
            func attempt(_ message: String, _ signature: String) async throws -> (status: Int, body: String) {
                let body = String(decoding: try JSONSerialization.data(withJSONObject: ["message": message, "signature": signature]), as: UTF8.self)
                return try await stack.server.request("POST", "/v1/auth/siwe", headers: ["Content-Type": "application/json"], body: body)
            }
            func nonce() async throws -> String {
                let answer = try await stack.server.request("POST", "/v1/auth/nonce")
                return (try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: String])?["nonce"] ?? ""
            }
            let wrongDomain = await Self.message(address: account.address, nonce: try nonce(), domain: "evil.example")
            await #expect(try attempt(wrongDomain, try Self.sign(wrongDomain, key: account.privateKey)).body.contains("wrong_domain"))

            let good = await Self.message(address: account.address, nonce: try nonce())
            let signature = try await Self.sign(good, key: account.privateKey)
            await #expect(try attempt(good, signature).status == 200)
            let replay = try await attempt(good, signature)
            #expect(replay.status == 401 && replay.body.contains("nonce_replayed"), "\(replay)")

            let forged = await Self.message(address: account.address, nonce: try nonce())
            let byOther = try await attempt(forged, try Self.sign(forged, key: stack.chain.accounts[5].privateKey))
            #expect(byOther.status == 401 && byOther.body.contains("bad_signature"), "\(byOther)")
            await #expect(try attempt("not a message", "0x00").status == 400)
        }
    }
}
