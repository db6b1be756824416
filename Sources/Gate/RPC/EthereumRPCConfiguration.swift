import Ethereum

/// Where and how an ``EthereumRPC`` reaches one chain.
public struct EthereumRPCConfiguration: Sendable {
    /// The EIP-155 chain id every endpoint must answer to `eth_chainId` (checked at first use).
    public var chainID: UInt64
    /// JSON-RPC HTTP(S) URLs, in order of preference: a call goes to the first healthy one and
    /// fails over to the next.
    public var endpoints: [String]
    /// How long one HTTP request to one endpoint may take.
    public var timeout: Duration
    /// How long an endpoint that failed is tried only after the others.
    public var endpointCooldown: Duration
    /// The Multicall3 contract, when the chain has one: many `eth_call`s then travel as one
    /// `aggregate3` call. Nil sends them as a JSON-RPC batch instead.
    public var multicall3: EthereumAddress?
    /// Most requests in one JSON-RPC batch (geth refuses more than 1,000).
    public var maxBatchSize: Int
    /// Most calls in one `aggregate3` (the local chain's Multicall3 takes at most 256).
    public var maxMulticallSize: Int
    /// Largest response body read.
    public var maxResponseBytes: Int

    /// Multicall3's address on every chain it is deployed to.
    public static let canonicalMulticall3 = try! EthereumAddress(hex: "0xcA11bde05977b3631167028862bE2a173976CA11")

    public init(
        chainID: UInt64,
        endpoints: [String],
        timeout: Duration = .seconds(5),
        endpointCooldown: Duration = .seconds(5),
        multicall3: EthereumAddress? = nil,
        maxBatchSize: Int = 500,
        maxMulticallSize: Int = 200,
        maxResponseBytes: Int = 32 << 20
    ) {
        self.chainID = chainID
        self.endpoints = endpoints
        self.timeout = timeout
        self.endpointCooldown = endpointCooldown
        self.multicall3 = multicall3
        self.maxBatchSize = max(1, maxBatchSize)
        self.maxMulticallSize = max(1, maxMulticallSize)
        self.maxResponseBytes = maxResponseBytes
    }
}
