import AsyncHTTPClient
import Foundation
import Gate
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
@testable import Origin
import Store
import TestSupport
import Vault
import Redis
import LocalChain

/// The local EVM of `fixtures/chain` (needs `.venv`: `make bootstrap`), started once for this test
/// process on first use; `--exit-with-parent` ends it with the process.
enum OriginChain {
    private static let started = Task<LocalChainProcess, any Error> { try await LocalChainProcess.start() }

    static var shared: LocalChainProcess {
        get async throws { try await started.value }
    }

    private static let tokenIDs = NIOLockedValueBox<UInt64>(UInt64(Date().timeIntervalSince1970) % 1_000_000 * 1000 + 500)

    /// An ERC-721 token id no other test of this process mints.
    static func freshTokenID() -> UInt64 { tokenIDs.withLockedValue { $0 += 1; return $0 } }
}

/// ``FilmFixture``'s published asset behind routes with the gate's real parts: a redis-server of
/// its own (nonces, policies, revocations), the local chain (ownership, contract wallets) and the
/// real verifier and token authority. `gated: false` builds an origin with Redis and no gate.
final class GateStack: @unchecked Sendable {
    static let secret = [UInt8](repeating: 3, count: 32)
    let film: FilmFixture
    let redis: RedisFixture
    let client: RedisClient
    let keys = Keyspace()
    let policies: PolicyStore
    let revocations: AnnouncedRevocations
    let tokens: PlaybackTokenAuthority
    let nonces: RedisNonceStore
    let gate: PlaybackGate?
    let routes: OriginRoutes

    init(redis: RedisFixture, chain: LocalChainProcess?, options: PlaybackGate.Options, maximumNonces: Int) throws {
        film = try FilmFixture()
        self.redis = redis
        client = redis.client(connections: 4, timeout: 5, reconnectWindow: 0.2)
        policies = PolicyStore(redis: client, keys: keys)
        revocations = AnnouncedRevocations(redis: client, keys: keys)
        tokens = try PlaybackTokenAuthority(secret: Self.secret, revocations: revocations)
        nonces = RedisNonceStore(client: client, maximumOutstanding: maximumNonces)
        let logger = Logger(label: "test.gate")
        if let chain {
            let configuration = EthereumRPCConfiguration(chainID: chain.chainID, endpoints: [chain.rpcURL])
            let rpc = EthereumRPC(configuration: configuration, httpClient: HTTPClient.shared)
            gate = PlaybackGate(
                verifier: SIWEVerifier(
                    configuration: SIWEVerifierConfiguration(domain: "localhost", uri: .prefix("https://localhost/"), chainIDs: [chain.chainID]),
                    nonces: nonces, contractChecker: ContractWalletChecker(rpcs: [rpc])
                ),
                nonces: nonces, tokens: tokens, revocations: revocations, policies: policies,
                ownership: ChainOwnership(service: OwnershipService(rpcs: [rpc], redis: client, logger: logger)),
                options: options, logger: logger
            )
        } else {
            gate = nil
        }
        let keyring = film.keyring
        routes = OriginRoutes(
            store: film.store,
            unwrapKey: { asset, _, stored in try keyring.unwrap(try WrappedKey(serialized: stored), context: asset.rawValue).bytes },
            logger: logger, options: OriginOptions(l1Bytes: 64 << 20, warmSegments: 0), gate: gate,
            policies: gate == nil ? policies : nil
        )
    }

    func application() -> OriginApplication {
        originApplication(routes: routes, health: HealthRoutes(store: film.store, queue: nil, metrics: nil), logger: Logger(label: "test.gate"))
    }

    /// Gates `film` on owning ERC-721 `tokenID` of the chain's test contract.
    func gateFilm(on chain: LocalChainProcess, tokenID: UInt64) async throws {
        let contract = chain.contract("erc721").checksummed
        let json = #"{"chain_id":\#(chain.chainID),"condition":{"erc721":{"contract":"\#(contract)","token_ids":["\#(tokenID)"]}}}"#
        try await policies.setPolicy(try AccessPolicy(json: json), of: "film")
    }
}

/// Runs `body` with a ``GateStack`` on a redis-server of its own, stopped afterwards with its clients.
func withGateStack<T>(
    chain: LocalChainProcess?, options: PlaybackGate.Options = .init(), maximumNonces: Int = 100_000,
    isolation: isolated (any Actor)? = #isolation, _ body: (GateStack) async throws -> T
) async throws -> T {
    try await withRedis { redis in
        try await body(try GateStack(redis: redis, chain: chain, options: options, maximumNonces: maximumNonces))
    }
}

/// A clock the test sets.
final class TestClock: Sendable {
    private let current: NIOLockedValueBox<Date>
    init(_ start: Date) { current = NIOLockedValueBox(start) }
    func set(_ date: Date) { current.withLockedValue { $0 = date } }
    var function: @Sendable () -> Date { { self.current.withLockedValue { $0 } } }
}
