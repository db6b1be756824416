import Foundation
import Gate
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Jobs
import NIOCore
@testable import Origin
import Testing
import TestSupport

/// The sign-in routes answer anyone: each client's rate, each body's size and the nonces
/// outstanding are bounded.
@Suite("sign-in limits: rates per client, body sizes, nonces outstanding")
struct SignInLimitTests {
    /// One loopback client once got 63,479 nonces (each a Redis key) in 5 s. With loopback counted
    /// (as `--auth-rate-limit-loopback` does), it gets its burst and its rate, then 429s.
    @Test func nonceFloodIsRateLimited() async throws {
        let chain = try await OriginChain.shared
        try await withGateStack(chain: chain, options: .init(signInRateLimit: .init(rate: 0.05, burst: 20, includeLoopback: true))) { stack in
            let started = Date()
            let (statuses, refusals) = try await withOrigin(stack.application()) { origin in
                var statuses: [Int] = []
                var refusals: [(retryAfter: String?, body: String)] = []
                for _ in 0..<60 {
                    try await origin.client.execute(uri: "/v1/auth/nonce", method: .post) { response in
                        statuses.append(Int(response.status.code))
                        if response.status == .tooManyRequests { refusals.append((response.headers[.retryAfter], String(buffer: response.body))) }
                    }
                }
                // One bucket per client for the three routes.
                try await origin.client.execute(uri: "/v1/auth/siwe", method: .post, body: ByteBuffer(string: "{}")) { #expect($0.status == .tooManyRequests) }
                try await origin.client.execute(uri: "/v1/auth/revoke", method: .post) { #expect($0.status == .tooManyRequests) }
                return (statuses, refusals)
            }
            let elapsed = Date().timeIntervalSince(started)
            let granted = statuses.filter { $0 == 200 }.count
            #expect(granted >= 20 && Double(granted) <= 20 + 0.05 * elapsed + 1, "\(granted) nonces in \(elapsed) s")
            #expect(statuses.prefix(20).allSatisfy { $0 == 200 } && refusals.count == 60 - granted, "\(statuses)")
            for refusal in refusals {
                #expect((Int(refusal.retryAfter ?? "") ?? 0) >= 1, "Retry-After \(refusal.retryAfter ?? "none")")
                #expect(refusal.body.contains("\"reason\":\"rate_limited\""), "\(refusal.body)")
            }
            // Only the admitted requests wrote a nonce.
            #expect(try await stack.client.send(["ZCARD", stack.nonces.index]).int == Int64(granted))
            let written = try await stack.client.send(["KEYS", "{sg}:siwe:nonce:*"]).array?.count
            #expect(written == granted)

            // By default loopback is exempt, as for playback (behind a local proxy every viewer is
            // loopback), and the nonces outstanding stay bounded whatever the rate.
            try await withGateStack(chain: chain, maximumNonces: 30) { exempt in
                try await withOrigin(exempt.application()) { origin in
                    for index in 0..<32 {
                        try await origin.client.execute(uri: "/v1/auth/nonce", method: .post) { response in
                            if index < 30 {
                                #expect(response.status == .ok, "\(index)")
                            } else {
                                #expect(response.status == .serviceUnavailable)
                                #expect(String(buffer: response.body).contains("\"reason\":\"too_many_nonces\""))
                                #expect((Int(response.headers[.retryAfter] ?? "") ?? 0) >= 1)
                            }
                        }
                    }
                }
            }
        }
    }

    @Test("sign-in bodies over 16 KiB get 413; a small malformed one 400")
    func signInBodiesAreCapped() async throws {
        let chain = try await OriginChain.shared
        try await withGateStack(chain: chain) { stack in
            let large = #"{"message":""# + String(repeating: "a", count: 17 << 10) + #"","signature":"0x00"}"#
            try await withOrigin(stack.application()) { origin in
                for path in ["/v1/auth/siwe", "/v1/auth/nonce", "/v1/auth/revoke"] {
                    try await origin.client.execute(uri: path, method: .post, body: ByteBuffer(string: large)) { response in
                        #expect(response.status == .contentTooLarge, "\(path)")
                        #expect(String(buffer: response.body).contains("\"reason\":\"too_large\""))
                    }
                }
                let small = ByteBuffer(string: #"{"message":"hello","signature":"0x00"}"#)
                try await origin.client.execute(uri: "/v1/auth/siwe", method: .post, body: small) { response in
                    #expect(response.status == .badRequest)
                    #expect(String(buffer: response.body).contains("malformed"))
                }
            }
            #expect(try await stack.client.send(["EXISTS", stack.nonces.index]) == .integer(0), "no nonce was issued")
        }
    }

    @Test("clients are IPv4 addresses or IPv6 /64s; the table of clients stays bounded")
    func rateLimiterClientsAreBounded() throws {
        func key(_ address: String, loopback: Bool = false) throws -> String? {
            RateLimiter.client(try SocketAddress(ipAddress: address, port: 443), includeLoopback: loopback)?.description
        }
        #expect(try key("2001:db8:1:2::1") == "2001:db8:1:2::/64")
        #expect(try key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64", "one /64, one client")
        #expect(try key("2001:db8:1:3::1") == "2001:db8:1:3::/64")
        #expect(try key("::ffff:198.51.100.7") == "198.51.100.7", "IPv4-mapped: the IPv4 client")
        #expect(try key("::ffff:127.0.0.1") == nil && key("127.0.0.5") == nil && key("::1") == nil, "loopback is exempt by default")
        #expect(try key("::1", loopback: true) == "::1" && key("127.0.0.1", loopback: true) == "127.0.0.1")
        #expect(RateLimiter.client(nil, includeLoopback: false) == nil && RateLimiter.client(nil, includeLoopback: true) == .local)

        // A flood of new clients never grows the table past its bound, and never frees the
        // client that is over its rate (it is the most recently seen).
        let limiter = RateLimiter(options: .init(rate: 1, burst: 2, maximumClients: 100))
        var now: UInt64 = 1
        for _ in 0..<2 { #expect(limiter.admit(client: testClient("192.0.2.250"), now: now) == nil) }
        for index in 0..<5000 {
            now += 1000
            _ = limiter.admit(client: testClient("10.\(index / 256).\(index % 256).1"), now: now)
            if index % 10 == 0 { #expect(limiter.admit(client: testClient("192.0.2.250"), now: now) != nil) }
            #expect(limiter.clientCount <= 100)
        }
        // Every 10 s, buckets that have refilled are forgotten: they are as good as new.
        now += RateLimiter.sweepInterval
        _ = limiter.admit(client: testClient("192.0.2.251"), now: now)
        #expect(limiter.clientCount == 1)
    }
}
