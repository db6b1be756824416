import Foundation
import TestSupport
import Testing
@testable import Gate
import Redis
import Ethereum

/// The verifier against a real redis-server: every rule, nonce single use, and the contract hook.
@Suite("sign-in verification")
struct SIWEVerifierTests {
    static let now = date("2025-01-15T12:00:30Z")
    static let configuration = SIWEVerifierConfiguration(
        domain: "stream.example.com",
        uri: .exact("https://stream.example.com/login"),
        chainIDs: [1, 137]
    )

    /// A verifier, its nonce store and clock, over a fresh Redis.
    struct Fixture {
        let client: RedisClient
        let nonces: RedisNonceStore
        let clock: TestClock
        let verifier: SIWEVerifier

        init(redis: RedisFixture, configuration: SIWEVerifierConfiguration, checker: (any ContractSignatureChecker)?) {
            client = redis.client()
            nonces = RedisNonceStore(client: client)
            clock = TestClock(SIWEVerifierTests.now)
            verifier = SIWEVerifier(configuration: configuration, nonces: nonces, contractChecker: checker, clock: clock.function)
        }

        /// A valid message for Alice with a freshly issued nonce, edited by `edit`.
        func message(_ edit: (inout SIWEMessage) -> Void = { _ in }) async throws -> SIWEMessage {
            var message = SIWEMessage(
                domain: "stream.example.com",
                address: Keys.aliceAddress,
                statement: "Sign in to watch members-only streams.",
                uri: "https://stream.example.com/login",
                chainID: 1,
                nonce: try await nonces.issue(),
                issuedAt: RFC3339Timestamp(SIWEVerifierTests.now.addingTimeInterval(-30)),
                expirationTime: RFC3339Timestamp(SIWEVerifierTests.now.addingTimeInterval(600))
            )
            edit(&message)
            return message
        }
    }

    /// Runs `body` with a ``Fixture`` over a redis-server of its own, stopped afterwards.
    static func withFixture<T>(
        configuration: SIWEVerifierConfiguration = SIWEVerifierTests.configuration, checker: (any ContractSignatureChecker)? = nil,
        isolation: isolated (any Actor)? = #isolation, _ body: (Fixture) async throws -> T
    ) async throws -> T {
        try await withRedis { redis in try await body(Fixture(redis: redis, configuration: configuration, checker: checker)) }
    }

    static func sign(_ text: String, key: [UInt8] = Keys.alice) -> [UInt8] {
        try! Secp256k1Signer.sign(hash: EIP191.personalMessageHash(text), privateKey: key)
    }

    @Test("a valid sign-in is accepted, once")
    func acceptsOnce() async throws {
        try await Self.withFixture { fixture in
            let text = try await fixture.message().text
            let signature = Self.sign(text)
            let verification = try await fixture.verifier.verify(message: text, signature: EthereumHex.encode(signature))
            #expect(verification.address == Keys.aliceAddress)
            #expect(verification.method == .externallyOwnedAccount)
            #expect(verification.message.statement == "Sign in to watch members-only streams.")
            let replay = await #expect(throws: SIWEVerificationError.self) { try await fixture.verifier.verify(message: text, signature: signature) }
            #expect(replay == .nonceReplayed)
            #expect(replay?.reason == "nonce_replayed")
        }
    }

    @Test("a message signed by eth-account, v as 0/1, is accepted")
    func ethAccountVector() async throws {
        try await Self.withFixture { fixture in
            let text = "stream.example.com wants you to sign in with your Ethereum account:\n0x2c7536E3605D9C16a7a3D7b1898e529396a65c23\n\nSign in to watch members-only streams.\n\nURI: https://stream.example.com/login\nVersion: 1\nChain ID: 1\nNonce: Qm9kZWdhR2F0ZTIwMjU\nIssued At: 2025-01-15T12:00:00Z\nExpiration Time: 2025-01-15T12:10:00Z"
            var signature = bytes("0x78f8c39ec2799ffc20d983068c208140c017750edb20519ce95d9724478043333261ce2735d7bb939f6a28563ee6e4229ff96a09f497fc1b81191f1a9010bc3d1c")
            signature[64] -= 27
            // Issued by hand: the store's own nonces are random.
            try await fixture.client.send(["SET", fixture.nonces.key("Qm9kZWdhR2F0ZTIwMjU"), "issued", "PX", "60000"])
            let verification = try await fixture.verifier.verify(message: text, signature: signature)
            #expect(verification.address == Keys.aliceAddress)
        }
    }

    /// Each case edits a valid message (and may sign with another key); the verifier must refuse it
    /// with this reason.
    static let refusals: [(name: String, edit: @Sendable (inout SIWEMessage) -> Void, key: [UInt8], reason: String)] = [
        ("wrong domain", { $0.domain = "evil.example.com" }, Keys.alice, "wrong_domain"),
        ("wrong port", { $0.domain = "stream.example.com:8443" }, Keys.alice, "wrong_domain"),
        ("wrong scheme", { $0.scheme = "http" }, Keys.alice, "wrong_domain"),
        ("wrong uri", { $0.uri = "https://evil.example.com/login" }, Keys.alice, "wrong_uri"),
        ("wrong chain", { $0.chainID = 5 }, Keys.alice, "wrong_chain"),
        ("expired beyond the skew", { $0.expirationTime = RFC3339Timestamp(now.addingTimeInterval(-61)) }, Keys.alice, "expired"),
        ("older than the maximum age", { $0.issuedAt = RFC3339Timestamp(now.addingTimeInterval(-361)); $0.expirationTime = nil }, Keys.alice, "expired"),
        ("not before, beyond the skew", { $0.notBefore = RFC3339Timestamp(now.addingTimeInterval(61)) }, Keys.alice, "not_yet_valid"),
        ("issued in the future", { $0.issuedAt = RFC3339Timestamp(now.addingTimeInterval(120)) }, Keys.alice, "not_yet_valid"),
        ("signed by another key", { _ in }, Keys.bob, "bad_signature"),
        ("unknown nonce", { $0.nonce = "NeverIssuedHere123" }, Keys.alice, "nonce_unknown"),
        ("not an EIP-4361 message", { $0.nonce = "short" }, Keys.alice, "malformed"),
    ]

    @Test("refusals carry their reason", arguments: 0..<refusals.count)
    func refusal(_ index: Int) async throws {
        let refusal = Self.refusals[index]
        try await Self.withFixture { fixture in
            let text = try await fixture.message(refusal.edit).text
            let error = await #expect(throws: SIWEVerificationError.self, "\(refusal.name)") {
                try await fixture.verifier.verify(message: text, signature: Self.sign(text, key: refusal.key))
            }
            #expect(error?.reason == refusal.reason, "\(refusal.name): \(String(describing: error))")
        }
    }

    @Test("within the clock skew, expiration and not-before still pass")
    func skew() async throws {
        try await Self.withFixture { fixture in
            let text = try await fixture.message {
                $0.expirationTime = RFC3339Timestamp(Self.now.addingTimeInterval(-59))
                $0.notBefore = RFC3339Timestamp(Self.now.addingTimeInterval(59))
            }.text
            _ = try await fixture.verifier.verify(message: text, signature: Self.sign(text))
        }
    }

    @Test("a message with a lowercase address is malformed: bad checksum")
    func lowercaseAddress() async throws {
        try await Self.withFixture { fixture in
            let text = try await fixture.message().text.replacingOccurrences(of: Keys.aliceAddress.checksummed, with: Keys.aliceAddress.lowercasedHex)
            let error = await #expect(throws: SIWEVerificationError.self) { try await fixture.verifier.verify(message: text, signature: Self.sign(text)) }
            #expect(error?.reason == "malformed")
            #expect(error?.message.contains("bad checksum") == true, "\(String(describing: error))")
        }
    }

    @Test("a tampered message, a high-s signature and non-hex are refused; a signature check spends the nonce")
    func tampered() async throws {
        try await Self.withFixture { fixture in
            let text = try await fixture.message().text
            let signature = Self.sign(text)
            // Not hex: refused before the nonce is looked at, so it stays unspent.
            let notHex = await #expect(throws: SIWEVerificationError.self) { try await fixture.verifier.verify(message: text, signature: "0xzz") }
            #expect(notHex?.reason == "malformed")

            let edited = text.replacingOccurrences(of: "members-only", with: "everyone's")
            let tampered = await #expect(throws: SIWEVerificationError.self) { try await fixture.verifier.verify(message: edited, signature: signature) }
            #expect(tampered?.reason == "bad_signature")
            // The tampered message carried the same nonce and spent it: a nonce buys one signature check.
            let replay = await #expect(throws: SIWEVerificationError.self) { try await fixture.verifier.verify(message: text, signature: signature) }
            #expect(replay?.reason == "nonce_replayed")

            // s → n − s, v flipped: the same signer, refused by EIP-2.
            let fresh = try await fixture.message().text
            let freshSignature = Self.sign(fresh)
            var highS = freshSignature
            let order: [UInt8] = bytes("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
            var borrow = 0
            for index in stride(from: 31, through: 0, by: -1) {
                let difference = Int(order[index]) - Int(freshSignature[32 + index]) - borrow
                highS[32 + index] = UInt8((difference + 256) % 256)
                borrow = difference < 0 ? 1 : 0
            }
            highS[64] = freshSignature[64] == 27 ? 28 : 27
            let malleated = await #expect(throws: SIWEVerificationError.self) { try await fixture.verifier.verify(message: fresh, signature: highS) }
            #expect(malleated?.reason == "bad_signature")
            #expect(malleated?.message.contains("EIP-2") == true, "\(String(describing: malleated))")

            // Refused before the nonce (another domain): the nonce is left for the genuine message.
            let early = try await fixture.message()
            var elsewhere = early
            elsewhere.domain = "evil.example.com"
            let wrongDomain = await #expect(throws: SIWEVerificationError.self) {
                try await fixture.verifier.verify(message: elsewhere.text, signature: Self.sign(elsewhere.text))
            }
            #expect(wrongDomain?.reason == "wrong_domain")
            _ = try await fixture.verifier.verify(message: early.text, signature: Self.sign(early.text))
        }
    }

    @Test("nonces outstanding are bounded: past the bound, issuing waits for the oldest to expire")
    func nonceStockIsBounded() async throws {
        try await withRedis { redis in
            let client = redis.client()
            let nonces = RedisNonceStore(client: client, lifetime: .seconds(60), maximumOutstanding: 3)
            let issued = try await (0..<3).asyncMap { _ in try await nonces.issue() }
            // A spent nonce still holds its key until it expires, so it still counts.
            #expect(try await nonces.consume(issued[0]) == .consumed)
            let full = await #expect(throws: NonceStoreFull.self) { try await nonces.issue() }
            let wait = try #require(full).retryAfter
            #expect(wait > .zero && wait <= .seconds(60), "\(wait)")
            #expect(try await client.send(["ZCARD", nonces.index]) == .integer(3))
            // Every key written has a TTL: under volatile-lru, nonces may be evicted, never pile up.
            for key in issued.map(nonces.key) + [nonces.index] {
                let ttl = try await client.send(["PTTL", key]).int ?? -1
                #expect(ttl > 0 && ttl <= 60_000, "PTTL \(key) \(ttl)")
            }

            // Once the oldest expire, nonces are issued again and the expired are forgotten.
            let brief = RedisNonceStore(client: client, prefix: "brief", lifetime: .seconds(2), maximumOutstanding: 1)
            let issuedAt = Date()
            _ = try await brief.issue()
            let refused: Bool
            do {
                _ = try await brief.issue()
                refused = false
            } catch is NonceStoreFull {
                refused = true
            }
            // A machine slow enough to take the whole lifetime between two calls proves nothing here.
            if Date().timeIntervalSince(issuedAt) < 2 { #expect(refused, "one nonce outstanding at most") }
            try await Task.sleep(for: .seconds(max(0, 2.3 - Date().timeIntervalSince(issuedAt))))
            let again = try await brief.issue()
            #expect(try await brief.consume(again) == .consumed)
            #expect(try await client.send(["ZCARD", brief.index]) == .integer(1), "the expired one was forgotten")
        }
    }

    @Test("URI rules match at a path boundary")
    func uriRules() {
        let prefix = SIWEVerifierConfiguration.URIRule.prefix("https://a.example/app")
        #expect(prefix.matches("https://a.example/app"))
        #expect(prefix.matches("https://a.example/app/login"))
        #expect(prefix.matches("https://a.example/app?x=1"))
        #expect(!prefix.matches("https://a.example/apple"))
        #expect(!prefix.matches("https://a.example/ap"))
        #expect(SIWEVerifierConfiguration.URIRule.prefix("https://a.example/").matches("https://a.example/anything"))
        #expect(!SIWEVerifierConfiguration.URIRule.exact("https://a.example/app").matches("https://a.example/app/"))
    }

    @Test("a URI prefix rule accepts paths under it only")
    func uriPrefix() async throws {
        var configuration = Self.configuration
        configuration.uri = .prefix("https://stream.example.com/v")
        try await Self.withFixture(configuration: configuration) { fixture in
            let good = try await fixture.message { $0.uri = "https://stream.example.com/v/a1" }.text
            _ = try await fixture.verifier.verify(message: good, signature: Self.sign(good))
            let bad = try await fixture.message { $0.uri = "https://stream.example.com/very-evil" }.text
            let error = await #expect(throws: SIWEVerificationError.self) { try await fixture.verifier.verify(message: bad, signature: Self.sign(bad)) }
            #expect(error?.reason == "wrong_uri")
        }
    }

    @Test("a nonce is spent exactly once among concurrent replicas")
    func singleUseAcrossReplicas() async throws {
        try await withRedis { redis in
            let clients = [redis.client(connections: 4), redis.client(connections: 4)]
            let replicas = clients.map { RedisNonceStore(client: $0) }
            let nonce = try await replicas[0].issue()
            #expect(nonce.count >= 16 && nonce.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            let outcomes = try await withThrowingTaskGroup(of: NonceConsumption.self) { group in
                for index in 0..<32 {
                    group.addTask { try await replicas[index % 2].consume(nonce) }
                }
                return try await group.reduce(into: [NonceConsumption]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .consumed }.count == 1)
            #expect(outcomes.filter { $0 == .alreadyUsed }.count == 31)
            #expect(try await replicas[1].consume("NeverIssuedHere123") == .unknown)
            #expect(try await replicas[1].consume("bad key:*") == .unknown)
        }
    }

    @Test("issued nonces are distinct, stored with their lifetime, and expire")
    func nonceLifetime() async throws {
        try await withRedis { redis in
            let client = redis.client()
            // The lifetime is checked on a long-lived store (a loaded machine may take seconds to issue
            // twenty), the expiry on a short-lived one.
            let long = RedisNonceStore(client: client, lifetime: .seconds(60))
            let nonces = try await (0..<20).asyncMap { _ in try await long.issue() }
            #expect(Set(nonces).count == 20)
            let ttl = try await client.send(["PTTL", long.key(nonces[19])]).int ?? -1
            #expect(ttl > 0 && ttl <= 60_000, "PTTL \(ttl)")
            let short = RedisNonceStore(client: client, lifetime: .milliseconds(300))
            let expiring = try await short.issue()
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await short.consume(expiring) == .unknown)
            #expect(try await long.consume(nonces[0]) == .consumed)
        }
    }

    @Test("when Redis is down the sign-in is unavailable, not accepted")
    func redisDown() async throws {
        try await withRedis { redis in
            let client = redis.client(reconnectWindow: 0.2)
            let nonces = RedisNonceStore(client: client)
            let verifier = SIWEVerifier(configuration: Self.configuration, nonces: nonces, clock: { SIWEVerifierTests.now })
            let text = SIWEMessage(
                domain: "stream.example.com", address: Keys.aliceAddress, uri: "https://stream.example.com/login",
                chainID: 1, nonce: try await nonces.issue(), issuedAt: RFC3339Timestamp(Self.now)
            ).text
            redis.stop()
            let error = await #expect(throws: SIWEVerificationError.self) { try await verifier.verify(message: text, signature: Self.sign(text)) }
            #expect(error?.reason == "unavailable")
        }
    }

    /// A contract account that accepts one signature: what the JSON-RPC EIP-1271 checker will do.
    final class StubContract: ContractSignatureChecker, @unchecked Sendable {
        let address: EthereumAddress
        let accepted: [UInt8]
        let verdict: Bool?
        let failure: Bool
        private let lock = NSLock()
        private var asked = 0

        init(address: EthereumAddress, accepted: [UInt8], verdict: Bool?, failure: Bool = false) {
            self.address = address
            self.accepted = accepted
            self.verdict = verdict
            self.failure = failure
        }

        var calls: Int { lock.withLock { asked } }

        func isValidSignature(address: EthereumAddress, hash: [UInt8], signature: [UInt8], chainID: UInt64) async throws -> Bool? {
            lock.withLock { asked += 1 }
            if failure { throw RedisError.server("node unreachable") }
            guard address == self.address, chainID == 1 else { return nil }
            return verdict.map { $0 && signature == accepted }
        }
    }

    @Test("contract accounts are asked only when ecrecover does not match", arguments: [
        (Bool?.some(true), false, "accepted"), (Bool?.some(false), false, "bad_signature"),
        (Bool?.none, false, "bad_signature"), (Bool?.some(true), true, "unavailable"),
    ])
    func contractAccounts(_ verdict: Bool?, _ failure: Bool, _ outcome: String) async throws {
        let wallet = try EthereumAddress(hex: "0x00000000000000000000000000000000000c0de1")
        let walletSignature = [UInt8](repeating: 0xab, count: 97)  // not an ECDSA signature at all
        let contract = StubContract(address: wallet, accepted: walletSignature, verdict: verdict, failure: failure)
        try await Self.withFixture(checker: contract) { fixture in
            let text = try await fixture.message { $0.address = wallet }.text
            do throws(SIWEVerificationError) {
                let verification = try await fixture.verifier.verify(message: text, signature: walletSignature)
                #expect(outcome == "accepted")
                #expect(verification.method == .contract)
                #expect(verification.address == wallet)
            } catch {
                #expect(error.reason == outcome, "\(error)")
            }
            #expect(contract.calls == 1)

            // An ordinary account's valid signature never reaches the contract checker.
            let eoa = try await fixture.message().text
            _ = try await fixture.verifier.verify(message: eoa, signature: Self.sign(eoa))
            #expect(contract.calls == 1)
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
