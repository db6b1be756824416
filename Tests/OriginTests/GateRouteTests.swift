import Foundation
import Gate
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Jobs
import Logging
import NIOCore
@testable import Origin
import Store
import Testing
import TestSupport
import Redis
import Ethereum

/// The gate's routes over real sockets, a real redis-server and the local chain: what an
/// unauthenticated client can make the origin write or answer.
@Suite("gate routes: tailored playlists, gated keys without a gate, revocations, readiness")
struct GateRouteTests {
    /// A `?token=` is written into every key URI of a tailored playlist: only a token's grammar may
    /// be, else a `%0A` adds playlist lines (a key with `METHOD=NONE`, another variant) and a `%22`
    /// ends the `URI` attribute.
    @Test func tokenCannotInjectPlaylistLines() async throws {
        let chain = try await OriginChain.shared
        try await withGateStack(chain: chain) { stack in
            let owner = try EthereumAddress(bytes: (0..<20).map { _ in UInt8.random(in: 0...255) })
            let tokenID = OriginChain.freshTokenID()
            _ = try await chain.call("sg_mint721", [.string(owner.checksummed), .integer(tokenID)])
            try await stack.gateFilm(on: chain, tokenID: tokenID)
            let token = stack.tokens.encode(try stack.tokens.issue(for: owner, lifetime: 600))
            let injections = [
                "/v/film/360p/index.m3u8?token=abc%0A%23EXT-X-KEY:METHOD=NONE",
                "/v/film/360p/index.m3u8?token=\(token)%0D%0A%23EXT-X-KEY:METHOD=NONE%0A00000.ts",
                "/v/film/360p/index.m3u8?token=\(token)%22,URI=%22https://evil.example/key",
                "/v/film/master.m3u8?token=x%0A%23EXT-X-STREAM-INF:BANDWIDTH=1%0Ahttps://evil.example/v.m3u8",
                "/v/film/360p/index.m3u8?token=" + String(repeating: "a", count: 600) + ".b",
            ]
            try await withOrigin(stack.application()) { origin in
                for path in injections {
                    try await origin.client.execute(uri: path, method: .get) { response in
                        let body = String(buffer: response.body)
                        #expect(response.status == .unauthorized, "\(path): \(response.status) \(body)")
                        #expect(body.contains("\"reason\":\"malformed\""), "\(body)")
                        #expect(!body.contains("#EXT") && !body.contains("evil.example"), "\(body)")
                        #expect(response.headers[.cacheControl] == "no-store")
                    }
                }
                // A token of the right shape rides along, and only adds `?token=…` to the key URIs.
                let plain = try await origin.client.execute(uri: "/v/film/360p/index.m3u8", method: .get) { String(buffer: $0.body) }
                let tailored = try await origin.client.execute(uri: "/v/film/360p/index.m3u8?token=\(token)", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.cacheControl] == "private, no-store")
                    return String(buffer: response.body)
                }
                let plainLines = plain.split(separator: "\n", omittingEmptySubsequences: false)
                let tailoredLines = tailored.split(separator: "\n", omittingEmptySubsequences: false)
                #expect(plainLines.count == tailoredLines.count, "no line added")
                for (before, after) in zip(plainLines, tailoredLines) where before != after {
                    let keyURI = "/keys/\(stack.film.contentKey.id)\""
                    #expect(before.hasPrefix("#EXT-X-KEY:"), "only key lines change: \(before) → \(after)")
                    #expect(after == before.replacingOccurrences(of: keyURI, with: "/keys/\(stack.film.contentKey.id)?token=\(token)\""))
                }
                // A gated asset's poster: refused without a token, private to the owner with one.
                try await origin.client.execute(uri: "/v/film/poster.jpg", method: .get) { #expect($0.status == .unauthorized) }
                try await origin.client.execute(uri: "/v/film/poster.jpg?token=\(token)", method: .get) { response in
                    #expect(response.status == .ok && response.headers[.cacheControl] == "private, no-store")
                }
                // Its storyboard names its sheets with the viewer's token, and they are served to it.
                let index = try await origin.client.execute(uri: "/v/film/storyboard.vtt?token=\(token)", method: .get) { response in
                    #expect(response.status == .ok && response.headers[.cacheControl] == "private, no-store")
                    return String(buffer: response.body)
                }
                let cue = try #require(index.split(separator: "\n").first { $0.contains("#xywh=") })
                #expect(cue.hasSuffix("/storyboard/000.jpg?token=\(token)#xywh=0,0,160,90"), "\(cue)")
                try await origin.client.execute(uri: "/v/film/" + cue.split(separator: "#")[0], method: .get) { response in
                    #expect(response.status == .ok && String(buffer: response.body) == "sheet 0", "\(cue)")
                }
                // The tailored key URI works for the owner: the whole path, the chain included.
                let keyLine = try #require(tailoredLines.first { $0.hasPrefix("#EXT-X-KEY:") })
                let uri = try #require(keyLine.split(separator: "\"").dropFirst().first)
                #expect(uri.hasPrefix("../v"))
                try await origin.client.execute(uri: "/v/film/" + uri.dropFirst(3), method: .get) { response in
                    #expect(response.status == .ok, "\(String(buffer: response.body))")
                    #expect(Array(buffer: response.body) == stack.film.contentKey.bytes)
                }
            }
        }
    }

    /// An origin with Redis and no `--siwe-domain` still reads policies, and refuses the key of an
    /// asset that has one, on the router and on the fast path, even when that key was served (and
    /// kept in memory) while the asset was public.
    @Test func gatedAssetNeedsAGate() async throws {
        try await withGateStack(chain: nil) { stack in
            let keyID = stack.film.contentKey.id
            let paths = ["/v/film/keys/\(keyID)", "/v/film/\(stack.film.version.version)/keys/\(keyID)"]
            // As with announcements up: what memory knows stays fresh for 30 s, however slow the machine.
            stack.routes.announcements(listening: true)
            try await withOrigin(stack.application()) { origin in
                for path in paths + paths {
                    try await origin.client.execute(uri: path, method: .get) { #expect($0.status == .ok && $0.body.readableBytes == 16) }
                }
                #expect(stack.routes.statistics.fastPath >= 2, "a public asset's key is served from memory")
                let policy = try AccessPolicy(json: #"{"chain_id":1,"condition":{"erc721":{"contract":"0x00000000000000000000000000000000000c0de1"}}}"#)
                try await stack.policies.setPolicy(policy, of: "film")
                let answeredEarly = stack.routes.statistics.fastPath
                for path in paths + paths + paths {
                    try await origin.client.execute(uri: path, method: .get) { response in
                        let body = String(buffer: response.body)
                        #expect(response.status == .serviceUnavailable, "\(path): \(body)")
                        #expect(body.contains("\"reason\":\"gate_not_configured\""))
                        #expect(body.contains("this asset is gated and this origin has no gate configured"))
                        #expect(response.headers[.cacheControl] == "no-store")
                    }
                }
                #expect(stack.routes.statistics.fastPath > answeredEarly, "once the policy is known, the refusal comes from memory too")
                // The stills are pictures of the film, not ciphertext: gated like its keys.
                let version = stack.film.version.version
                for path in ["/v/film/poster.jpg", "/v/film/storyboard.vtt", "/v/film/\(version)/storyboard/000.jpg"] {
                    try await origin.client.execute(uri: path, method: .get) { response in
                        #expect(response.status == .serviceUnavailable, "\(path): \(String(buffer: response.body))")
                        #expect(!String(buffer: response.body).contains("poster") && !String(buffer: response.body).contains("WEBVTT"))
                    }
                }

                // Public again: served again, stills too, with the version's cache rules.
                try await stack.policies.setPolicy(nil, of: "film")
                try await origin.client.execute(uri: paths[0], method: .get) { #expect($0.status == .ok) }
                try await origin.client.execute(uri: "/v/film/poster.jpg", method: .get) { response in
                    #expect(response.status == .ok && String(buffer: response.body) == "poster 0")
                    #expect(response.headers[.contentType] == "image/jpeg" && response.headers[.cacheControl]?.hasPrefix("public") == true)
                }
                try await origin.client.execute(uri: "/v/film/storyboard.vtt", method: .get) { response in
                    #expect(String(buffer: response.body).contains("\n\(stack.film.version.version)/storyboard/000.jpg#xywh=0,0,160,90"), "the entry index names the version")
                }

                // Policies unreadable: no key either (an unknown policy is not an absent one).
                stack.redis.stop()
                stack.policies.forget("film")
                try await origin.client.execute(uri: paths[0], method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(String(buffer: response.body).contains("policy_unavailable"))
                }
            }
        }
    }

    /// Revoked token ids are remembered only while their tokens live, in every origin's memory and
    /// in Redis; an expired token stays refused for its expiry alone.
    @Test func revocationsArePruned() async throws {
        try await withRedis { redis in
            let client = redis.client(connections: 2)
            let keys = Keyspace()
            let clock = TestClock(Date())
            // The announcing origin and another one; Redis keeps each revocation 0.5 s past its token.
            let here = AnnouncedRevocations(redis: client, keys: keys, margin: 0.5, clock: clock.function)
            let there = AnnouncedRevocations(redis: client, keys: keys, margin: 0.5, clock: clock.function)
            let authority = try PlaybackTokenAuthority(secret: GateStack.secret, revocations: here, clock: clock.function)
            let address = try EthereumAddress(hex: "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")
            let short = try authority.issue(for: address, lifetime: 60)
            let long = try authority.issue(for: address, lifetime: 600)
            try await authority.revoke(short)
            try await authority.revoke(long)
            there.announced(short.id)
            there.announced(long.id)
            #expect(here.count == 2 && there.count == 2)
            await #expect(throws: PlaybackTokenError.revoked(id: short.id)) { try await authority.verify(authority.encode(short)) }

            // `there` learns each revocation's time from Redis (in the background).
            var waited = 0
            while Self.remembered(there, short.id) == true, waited < 300 {
                clock.set(short.expiresAt.addingTimeInterval(1))
                there.prune()
                try await Task.sleep(for: .milliseconds(50))
                waited += 1
            }
            clock.set(short.expiresAt.addingTimeInterval(1))
            here.prune()
            there.prune()
            #expect(here.count == 1 && there.count == 1, "only the live token's revocation is remembered")
            await #expect(throws: PlaybackTokenError.expired(short.expiresAt)) { try await authority.verify(authority.encode(short)) }
            await #expect(throws: PlaybackTokenError.revoked(id: long.id)) { try await authority.verify(authority.encode(long)) }

            // An origin coming up loads only what is still in force.
            let later = AnnouncedRevocations(redis: client, keys: keys, margin: 0.5, clock: clock.function)
            await later.listening(true)
            #expect(later.count == 1)
            #expect(Self.remembered(later, long.id) == true && Self.remembered(later, short.id) == false)
            // Redis forgets it at the next revocation, and never expires the set itself.
            try await authority.revoke(try authority.issue(for: address, lifetime: 600))
            #expect(try await here.stored.revokedUntil(id: short.id) == nil)
            #expect(try await client.send(["ZCARD", here.stored.key]) == .integer(2))
            #expect(try await client.send(["PTTL", here.stored.key]) == .integer(-1))
        }
    }

    /// Redis as shipped (`maxmemory` + `volatile-lru`) under more than it can hold: keys with a TTL
    /// (nonces, caches) make room; a policy and a revocation, state without a TTL, stay.
    @Test func gateStateSurvivesEviction() async throws {
        try await withRedis(RedisOptions(maxMemory: "8mb")) { redis in
            let client = redis.client(connections: 2)
            let policies = PolicyStore(redis: client, keys: Keyspace())
            let revocations = RedisTokenRevocations(client: client)
            let nonces = RedisNonceStore(client: client)
            let policy = try AccessPolicy(json: #"{"chain_id":1,"condition":{"erc721":{"contract":"0x00000000000000000000000000000000000c0de1"}}}"#)
            try await policies.setPolicy(policy, of: "film")
            try await revocations.revoke(id: String(repeating: "ab", count: 16), expiresAt: Date().addingTimeInterval(600))
            _ = try await nonces.issue()
            // 16 MB of cache-like entries with a TTL, in twice the memory Redis may use.
            let filler = String(repeating: "x", count: 1024)
            for batch in 0..<32 {
                let replies = try await client.pipeline((0..<500).map { ["SET", "{sg}:l2:o:filler-\(batch)-\($0)", filler, "PX", "600000"] })
                for case .error(let message) in replies { Issue.record("a write was refused: \(message)") }
            }
            let info = try await client.send(["INFO", "stats"]).text ?? ""
            let evicted = info.split(separator: "\r\n").first { $0.hasPrefix("evicted_keys:") }.flatMap { Int($0.dropFirst(13)) } ?? 0
            #expect(evicted > 0, "Redis made room by evicting")
            policies.forget("film")
            #expect(try await policies.policy(of: "film").value?.canonicalJSON == policy.canonicalJSON)
            #expect(try await revocations.isRevoked(id: String(repeating: "ab", count: 16)))
            #expect(try await nonces.consume(try await nonces.issue()) == .consumed, "sign-in still works")
        }
    }

    /// `/readyz` answers anyone: generic problem names only; the store's path and Redis's error
    /// text go to the log.
    @Test func readyzLeaksNothing() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-ready-\(UUID().uuidString)")
        let store = try AssetStore(root: folder.path + "/store")
        defer { try? FileManager.default.removeItem(at: folder) }
        try await withRedis { redis in
            let queue = JobQueue(redis: redis.client(connections: 1, timeout: 1, reconnectWindow: 0.2))
            let log = LogRecorder()
            let logger = log.logger("test.ready")
            let application = originApplication(
                routes: OriginRoutes(store: store, unwrapKey: { _, _, _ in [] }, logger: logger),
                health: HealthRoutes(store: store, queue: queue, metrics: nil, logger: logger), logger: logger
            )
            try await withOrigin(application) { origin in
                let client = origin.client
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == #"{"problems":[],"status":"ready"}"#)
                }
                redis.stop()
                try FileManager.default.removeItem(at: folder)
                try await client.execute(uri: "/readyz", method: .get) { response in
                    let body = String(buffer: response.body)
                    #expect(response.status == .serviceUnavailable)
                    #expect(body == #"{"problems":["store","redis"],"status":"unavailable"}"#, "\(body)")
                    for secret in [folder.path, redis.directory, "sock", "/tmp", "connect"] { #expect(!body.contains(secret), "\(secret) in \(body)") }
                }
            }
            let warning = try #require(log.lines.first { $0.hasPrefix("warning not ready") })
            #expect(warning.contains(folder.path) && warning.contains("redis"), "the detail is logged: \(warning)")
        }
    }

    /// What `revocations` holds in memory for `id` (nil: it would ask Redis).
    static func remembered(_ revocations: AnnouncedRevocations, _ id: String) -> Bool? {
        if case .known(let revoked) = revocations.revocation(of: id) { return revoked }
        return nil
    }
}
