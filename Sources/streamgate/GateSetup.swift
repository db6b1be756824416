import ArgumentParser
import Foundation
import Gate
import Jobs
import Logging
import Origin
import Vault
import Ethereum

/// `serve`'s NFT-gating options. Gating is on when `--siwe-domain` is given; it needs `--redis`
/// (nonces, revocations, policies, shared ownership answers) and at least one `--rpc`.
struct GateCommandOptions: ParsableArguments {
    @Option(help: "The domain viewers sign in to (EIP-4361 'domain'); turns NFT gating on.")
    var siweDomain: String?

    @Option(help: "The URI (or URI prefix) sign-in messages must name; default https://<domain>/.")
    var siweURI: String?

    @Option(help: "A chain's JSON-RPC endpoint, CHAIN_ID=URL (repeatable; several per chain fail over in order).")
    var rpc: [String] = []

    @Option(help: "A chain's Multicall3 contract, CHAIN_ID=ADDRESS: one aggregate3 call per batch of checks.")
    var multicall: [String] = []

    @Option(help: "A file holding the playback-token secret (base64, 32 bytes or more); else STREAMGATE_TOKEN_SECRET.")
    var tokenSecretFile: String?

    @Option(help: ArgumentHelp("How long a playback token lives.", valueName: "duration"))
    var tokenLifetime = DurationValue(seconds: 900)

    @Option(help: ArgumentHelp(
        "How long a granted ownership answer is reused, in whole seconds (denials: a sixth of it); transfers revoke sooner.",
        valueName: "duration"
    ))
    var ownershipTTL = DurationValue(seconds: 60)

    @Option(help: ArgumentHelp("How often new blocks are read for transfers that revoke cached grants.", valueName: "duration"))
    var chainPoll = DurationValue(seconds: 1)

    @OptionGroup var signInLimits: SignInLimitOptions

    var enabled: Bool { siweDomain != nil }

    func validate() throws {
        // The denial TTL is a whole-seconds sixth of it, as it was when the option took an Int.
        guard ownershipTTL.wholeSeconds != nil else { throw ValidationError("--ownership-ttl must be whole seconds, got \(ownershipTTL)") }
    }

    /// Chain id → endpoints, in the order given.
    func endpoints() throws -> [UInt64: [String]] {
        var chains: [UInt64: [String]] = [:]
        for entry in rpc {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let chain = UInt64(parts[0]), parts[1].hasPrefix("http://") || parts[1].hasPrefix("https://") else {
                throw CommandFailure(message: "--rpc '\(entry)': expected CHAIN_ID=http(s)://host/path", code: 78)
            }
            chains[chain, default: []].append(parts[1])
        }
        return chains
    }

    func multicalls() throws -> [UInt64: EthereumAddress] {
        var result: [UInt64: EthereumAddress] = [:]
        for entry in multicall {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let chain = UInt64(parts[0]), let address = try? EthereumAddress(hex: parts[1]) else {
                throw CommandFailure(message: "--multicall '\(entry)': expected CHAIN_ID=0x… (a checksummed or lowercase address)", code: 78)
            }
            result[chain] = address
        }
        return result
    }

    func tokenSecret() throws -> [UInt8] {
        let text: String
        if let tokenSecretFile {
            guard let contents = try? String(contentsOfFile: tokenSecretFile, encoding: .utf8) else {
                throw CommandFailure(message: "\(tokenSecretFile): cannot read the playback-token secret", code: 78)
            }
            text = contents
        } else if let environment = ProcessInfo.processInfo.environment["STREAMGATE_TOKEN_SECRET"] {
            text = environment
        } else {
            throw CommandFailure(message: "NFT gating needs a playback-token secret: --token-secret-file FILE or STREAMGATE_TOKEN_SECRET (base64, 32 bytes or more)", code: 78)
        }
        guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count >= 32 else {
            throw CommandFailure(message: "the playback-token secret must be base64 of 32 bytes or more", code: 78)
        }
        return Array(bytes)
    }
}

/// The bounds of the sign-in routes (`/v1/auth/*`), which answer anyone: `serve`'s and `dev`'s.
struct SignInLimitOptions: ParsableArguments {
    @Option(help: "Sign-in requests (/v1/auth/*) a second each client (an IPv4 address or an IPv6 /64) may make; 0 turns the limit off.")
    var authRateLimit: Double = 5

    @Option(help: "Sign-in requests a client may make at once before --auth-rate-limit applies.")
    var authRateBurst: Double = 20

    @Flag(help: "Rate-limit sign-ins from loopback too (exempt by default, like playback: behind a local proxy every viewer is loopback).")
    var authRateLimitLoopback = false

    @Option(help: "Sign-in nonces that may be outstanding at once across the deployment; more are answered 503 until some expire.")
    var maxNonces: Int = 100_000

    func validate() throws {
        guard authRateLimit >= 0, authRateBurst >= 1 else {
            throw ValidationError("--auth-rate-limit must be 0 or more and --auth-rate-burst at least 1")
        }
        guard maxNonces >= 1 else { throw ValidationError("--max-nonces must be at least 1") }
    }

    /// The sign-in limiter's options; nil when turned off.
    func rateLimit() -> RateLimiter.Options? {
        guard authRateLimit > 0 else { return nil }
        return RateLimiter.Options(rate: authRateLimit, burst: authRateBurst, includeLoopback: authRateLimitLoopback)
    }
}

/// The running parts of NFT gating: the gate for the routes, and what must be stopped after.
struct GateRuntime: Sendable {
    let gate: PlaybackGate
    let ownership: OwnershipService
    let followers: [OwnershipFollower]
    let rpcs: [EthereumRPC]

    init(options: GateCommandOptions, queue: JobQueue, logger: Logger) throws {
        guard let domain = options.siweDomain else { throw CommandFailure(message: "--siwe-domain is required for NFT gating", code: 78) }
        let chains = try options.endpoints()
        guard !chains.isEmpty else {
            throw CommandFailure(message: "NFT gating needs a chain: --rpc CHAIN_ID=URL (repeatable)", code: 78)
        }
        let multicalls = try options.multicalls()
        let secret = try options.tokenSecret()
        rpcs = chains.keys.sorted().map { chain in
            EthereumRPC(
                configuration: EthereumRPCConfiguration(chainID: chain, endpoints: chains[chain]!, multicall3: multicalls[chain]),
                logger: logger
            )
        }
        guard let ownershipSeconds = options.ownershipTTL.wholeSeconds else {
            throw CommandFailure(message: "--ownership-ttl must be whole seconds, got \(options.ownershipTTL)", code: 64)
        }
        ownership = OwnershipService(
            rpcs: rpcs, redis: queue.redis,
            configuration: OwnershipConfiguration(
                grantTTL: .seconds(ownershipSeconds), denialTTL: .seconds(max(1, ownershipSeconds / 6)),
                redisPrefix: queue.keys.prefix
            ),
            logger: logger
        )
        let ownership = self.ownership
        followers = try chains.keys.sorted().map { chain in
            try OwnershipFollower(service: ownership, chainID: chain, interval: options.chainPoll.duration, logger: logger)
        }
        let revocations = AnnouncedRevocations(redis: queue.redis, keys: queue.keys)
        let uri = options.siweURI ?? "https://\(domain)/"
        let nonces = RedisNonceStore(client: queue.redis, prefix: queue.keys.prefix, maximumOutstanding: options.signInLimits.maxNonces)
        gate = PlaybackGate(
            verifier: SIWEVerifier(
                configuration: SIWEVerifierConfiguration(domain: domain, uri: .prefix(uri), chainIDs: Set(chains.keys)),
                nonces: nonces,
                contractChecker: ContractWalletChecker(rpcs: rpcs)
            ),
            nonces: nonces,
            tokens: try PlaybackTokenAuthority(secret: secret, revocations: revocations),
            revocations: revocations,
            policies: PolicyStore(redis: queue.redis, keys: queue.keys),
            ownership: ChainOwnership(service: ownership),
            options: .init(tokenLifetime: options.tokenLifetime.seconds, signInRateLimit: options.signInLimits.rateLimit()),
            logger: logger
        )
    }
}
