import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import Ethereum

/// A block to read state at.
public enum BlockTag: Sendable, Hashable, CustomStringConvertible {
    case latest, safe, finalized, pending, earliest
    case number(UInt64)

    /// The JSON-RPC parameter: the tag's name, or the number in `0x` hex.
    public var json: JSONValue {
        switch self {
        case .latest: "latest"
        case .safe: "safe"
        case .finalized: "finalized"
        case .pending: "pending"
        case .earliest: "earliest"
        case .number(let number): .string("0x" + String(number, radix: 16))
        }
    }

    public var description: String {
        if case .number(let number) = self { return String(number) }
        return json.string!
    }
}

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

/// One JSON-RPC request.
public struct RPCRequest: Sendable, Hashable {
    public var method: String
    public var params: [JSONValue]

    public init(_ method: String, _ params: [JSONValue] = []) {
        self.method = method
        self.params = params
    }
}

/// A JSON-RPC error object.
public struct RPCErrorObject: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    /// A contract revert (or another failure of the call's own execution): an answer about the
    /// call, the same on every node, never a reason to ask another one.
    public var isExecutionFailure: Bool {
        if code == 3 || message.hasPrefix("execution reverted") { return true }
        guard code == -32000 else { return false }
        let lower = message.lowercased()
        return ["out of gas", "invalid opcode", "invalid jump", "stack underflow", "stack overflow", "write protection"].contains { lower.contains($0) }
    }

    /// Our request was wrong (parse error, invalid request or params): no node will answer better.
    public var isClientError: Bool { code == -32700 || code == -32600 || code == -32602 }

    /// The revert data, when the node gave it.
    public var revertData: [UInt8] {
        guard let text = data?.string ?? data?["data"]?.string else { return [] }
        return (try? EthereumHex.decode(text)) ?? []
    }

    public var description: String { "JSON-RPC error \(code): \(message)" }
}

/// One answer of a JSON-RPC request.
public enum RPCAnswer: Sendable, Hashable {
    case result(JSONValue)
    case error(RPCErrorObject)
}

/// What an `eth_call` answered.
public enum CallResult: Sendable, Hashable {
    /// The call returned this data.
    case success([UInt8])
    /// The call reverted (or failed in the EVM): an answer, not a node failure.
    case reverted(data: [UInt8], message: String)

    public var data: [UInt8]? { if case .success(let data) = self { data } else { nil } }
}

/// An `eth_call` to make.
public struct EthCall: Sendable, Hashable {
    public var to: EthereumAddress
    public var data: [UInt8]
    /// Send as its own `eth_call` even when Multicall3 is configured (answers larger than
    /// Multicall3 passes through, such as `getIncomingDelegations`).
    public var direct: Bool

    public init(to: EthereumAddress, data: [UInt8], direct: Bool = false) {
        self.to = to
        self.data = data
        self.direct = direct
    }

    var json: JSONValue { ["to": .string(to.lowercasedHex), "data": .string(EthereumHex.encode(data))] }
}

/// An `eth_getLogs` filter.
public struct LogFilter: Sendable, Hashable {
    public var fromBlock: BlockTag
    public var toBlock: BlockTag
    public var addresses: [EthereumAddress]
    /// Per position: nil for any topic, else any of the listed topics.
    public var topics: [[[UInt8]]?]

    public init(fromBlock: BlockTag, toBlock: BlockTag, addresses: [EthereumAddress] = [], topics: [[[UInt8]]?] = []) {
        self.fromBlock = fromBlock
        self.toBlock = toBlock
        self.addresses = addresses
        self.topics = topics
    }

    var json: JSONValue {
        var object: [String: JSONValue] = ["fromBlock": fromBlock.json, "toBlock": toBlock.json]
        if !addresses.isEmpty { object["address"] = .array(addresses.map { .string($0.lowercasedHex) }) }
        if !topics.isEmpty {
            object["topics"] = .array(topics.map { position in
                position.map { .array($0.map { .string(EthereumHex.encode($0)) }) } ?? .null
            })
        }
        return .object(object)
    }
}

/// One log entry.
public struct EthereumLog: Sendable, Hashable {
    public var address: EthereumAddress
    public var topics: [[UInt8]]
    public var data: [UInt8]
    public var blockNumber: UInt64
    public var logIndex: UInt64
    public var transactionHash: String
    public var removed: Bool
}

/// Why a JSON-RPC call has no answer.
public enum EthereumRPCError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No endpoint answered (connection errors, timeouts, HTTP errors, node failures, a wrong
    /// chain id); the reasons per endpoint.
    case unavailable(String)
    /// The node refused our request as malformed (a bug here, not an outage).
    case rejected(RPCErrorObject)
    /// An answer that is not what the method returns.
    case badResponse(String)

    public var description: String {
        switch self {
        case .unavailable(let reason): "chain unavailable: \(reason)"
        case .rejected(let error): "request rejected: \(error)"
        case .badResponse(let reason): "bad response: \(reason)"
        }
    }
}

/// A JSON-RPC 2.0 client for one EVM chain over HTTP, with failover between endpoints.
///
/// Every endpoint's `eth_chainId` is checked against the configuration before its first use; an
/// endpoint on another chain is never used. A call goes to the first healthy endpoint and moves to
/// the next on a connection error, a timeout, HTTP 5xx or 429, an unreadable answer, or a JSON-RPC
/// error that is the node's (internal error, header not found, rate limits…). A revert is an
/// answer (``CallResult/reverted(data:message:)``) and never fails over. An endpoint that failed is
/// tried after the others for ``EthereumRPCConfiguration/endpointCooldown``.
///
/// All requests go through one `HTTPClient` (its own unless one is passed in); call
/// ``shutdown()`` when done.
public final class EthereumRPC: Sendable {
    public let configuration: EthereumRPCConfiguration
    private let client: HTTPClient
    private let ownsClient: Bool
    private let logger: Logger
    private let state: NIOLockedValueBox<State>
    private let endpoints: [Endpoint]

    private struct Endpoint: Sendable {
        let url: String
        /// `host:port`, the metrics label (never the path, which may hold an API key).
        let label: String
        let timer: Timer
    }

    private struct EndpointState {
        var chainCheck: ChainCheck = .unchecked
        var downUntil: NIODeadline?
    }

    private enum ChainCheck {
        case unchecked
        case verified
        case wrong(UInt64)
    }

    private struct State {
        var nextID: UInt64 = 1
        var httpRequests = 0
        var requests = 0
        var endpoints: [EndpointState]
        var counters: [String: Counter] = [:]
    }

    /// - Parameters:
    ///   - httpClient: shared with other users when given (and then not shut down here).
    public init(configuration: EthereumRPCConfiguration, httpClient: HTTPClient? = nil, logger: Logger = Logger(label: "streamgate.gate.rpc")) {
        precondition(!configuration.endpoints.isEmpty, "an EthereumRPC needs at least one endpoint")
        self.configuration = configuration
        if let httpClient {
            client = httpClient
            ownsClient = false
        } else {
            var http = HTTPClient.Configuration()
            http.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 16
            client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
            ownsClient = true
        }
        self.logger = logger
        endpoints = configuration.endpoints.map { url in
            let label = Self.label(url)
            return Endpoint(url: url, label: label, timer: Timer(label: "streamgate_gate_rpc_duration_seconds", dimensions: [("endpoint", label)]))
        }
        state = NIOLockedValueBox(State(endpoints: Array(repeating: EndpointState(), count: configuration.endpoints.count)))
    }

    /// Shuts the HTTP client down when it is this client's own.
    public func shutdown() async throws {
        if ownsClient { try await client.shutdown() }
    }

    /// HTTP requests sent so far (chain id checks and retries included).
    public var httpRequestCount: Int { state.withLockedValue { $0.httpRequests } }

    /// JSON-RPC requests sent so far, each request of a batch counted (what hosted nodes bill):
    /// an `aggregate3` of 100 calls is one, a batch of 100 `eth_call`s is 100.
    public var requestCount: Int { state.withLockedValue { $0.requests } }

    // MARK: Methods

    /// `eth_chainId` of the first endpoint that answers.
    public func chainID() async throws(EthereumRPCError) -> UInt64 {
        try quantity(try await send(RPCRequest("eth_chainId")), "eth_chainId")
    }

    /// `eth_blockNumber`.
    public func blockNumber() async throws(EthereumRPCError) -> UInt64 {
        try quantity(try await send(RPCRequest("eth_blockNumber")), "eth_blockNumber")
    }

    /// `eth_getCode` of `address` at `block`.
    public func code(at address: EthereumAddress, block: BlockTag = .latest) async throws(EthereumRPCError) -> [UInt8] {
        let value = try await send(RPCRequest("eth_getCode", [.string(address.lowercasedHex), block.json]))
        guard let text = value.string, let bytes = try? EthereumHex.decode(text) else {
            throw .badResponse("eth_getCode answered \(value.kind)")
        }
        return bytes
    }

    /// `eth_call` at `block`; a revert is an answer.
    public func call(_ call: EthCall, block: BlockTag = .latest) async throws(EthereumRPCError) -> CallResult {
        try await calls([call], block: block)[0]
    }

    /// Several `eth_call`s at `block` in one JSON-RPC batch (one HTTP request per
    /// ``EthereumRPCConfiguration/maxBatchSize`` calls).
    public func calls(_ calls: [EthCall], block: BlockTag = .latest) async throws(EthereumRPCError) -> [CallResult] {
        let answers = try await batch(calls.map { RPCRequest("eth_call", [$0.json, block.json]) })
        var results: [CallResult] = []
        results.reserveCapacity(answers.count)
        for answer in answers { results.append(try Self.callResult(answer)) }
        return results
    }

    /// Reads `calls` at `block` in as few HTTP requests as possible: through Multicall3's
    /// `aggregate3` (each call allowed to fail) when it is configured, as plain `eth_call`s in one
    /// batch otherwise; ``EthCall/direct`` calls always go as plain `eth_call`s in the same batch.
    /// `extra` requests (`eth_blockNumber`…) ride along in the batch, ahead of the calls (a node
    /// answers a batch in order, so a block number asked first is never newer than the calls' state).
    public func read(_ calls: [EthCall], block: BlockTag = .latest, extra: [RPCRequest] = []) async throws(EthereumRPCError) -> (calls: [CallResult], extra: [RPCAnswer]) {
        guard let multicall = configuration.multicall3 else {
            let requests = extra + calls.map { RPCRequest("eth_call", [$0.json, block.json]) }
            let answers = try await batch(requests)
            var results: [CallResult] = []
            for answer in answers.dropFirst(extra.count) { results.append(try Self.callResult(answer)) }
            return (results, Array(answers.prefix(extra.count)))
        }
        // Multicall3 forwards at most 2,048 bytes of call data per call here; longer ones go direct.
        let viaMulticall = calls.indices.filter { !calls[$0].direct && calls[$0].data.count <= 2048 }
        let direct = calls.indices.filter { calls[$0].direct || calls[$0].data.count > 2048 }
        var chunks: [[Int]] = []
        var start = 0
        while start < viaMulticall.count {
            chunks.append(Array(viaMulticall[start..<min(viaMulticall.count, start + configuration.maxMulticallSize)]))
            start += configuration.maxMulticallSize
        }
        var requests: [RPCRequest] = extra
        requests += chunks.map { chunk in
            let data = Self.aggregate3Data(chunk.map { calls[$0] })
            return RPCRequest("eth_call", [EthCall(to: multicall, data: data).json, block.json])
        }
        requests += direct.map { RPCRequest("eth_call", [calls[$0].json, block.json]) }
        let all = try await batch(requests)
        let extraAnswers = Array(all.prefix(extra.count))
        let answers = Array(all.dropFirst(extra.count))
        var results = [CallResult?](repeating: nil, count: calls.count)
        for (chunkIndex, chunk) in chunks.enumerated() {
            let outer = try Self.callResult(answers[chunkIndex])
            guard case .success(let data) = outer else {
                throw .badResponse("aggregate3 reverted: \(outer)")
            }
            let decoded: [ABI.Value]
            do {
                decoded = try ABI.decode(.array(.tuple([.bool, .bytes])), from: data).array ?? []
            } catch {
                throw .badResponse("aggregate3 answer: \(error)")
            }
            guard decoded.count == chunk.count else { throw .badResponse("aggregate3 answered \(decoded.count) results for \(chunk.count) calls") }
            for (position, index) in chunk.enumerated() {
                let members = decoded[position].tuple ?? []
                let returned = members.count == 2 ? members[1].bytes ?? [] : []
                results[index] = members.first?.bool == true ? .success(returned) : .reverted(data: returned, message: "")
            }
        }
        for (position, index) in direct.enumerated() {
            results[index] = try Self.callResult(answers[chunks.count + position])
        }
        return (results.map { $0! }, extraAnswers)
    }

    /// Multicall3 `aggregate3` call data for `calls`, every one allowed to fail.
    public static func aggregate3Data(_ calls: [EthCall]) -> [UInt8] {
        ABI.call("aggregate3((address,bool,bytes)[])", [.array(calls.map { .tuple([.address($0.to), .bool(true), .bytes($0.data)]) })])
    }

    /// `eth_getLogs`.
    public func logs(_ filter: LogFilter) async throws(EthereumRPCError) -> [EthereumLog] {
        let value = try await send(RPCRequest("eth_getLogs", [filter.json]))
        guard let entries = value.array else { throw .badResponse("eth_getLogs answered \(value.kind)") }
        var logs: [EthereumLog] = []
        for entry in entries {
            guard let addressText = entry["address"]?.string, let address = try? EthereumAddress(hex: addressText.lowercased()),
                let topics = entry["topics"]?.array?.compactMap({ $0.string.flatMap { try? EthereumHex.decode($0) } }),
                let blockNumber = entry["blockNumber"]?.uint64
            else {
                throw .badResponse("eth_getLogs entry without address, topics or block number")
            }
            let data = entry["data"]?.string.flatMap { try? EthereumHex.decode($0) } ?? []
            logs.append(EthereumLog(
                address: address, topics: topics, data: data, blockNumber: blockNumber,
                logIndex: entry["logIndex"]?.uint64 ?? 0, transactionHash: entry["transactionHash"]?.string ?? "",
                removed: entry["removed"]?.bool ?? false
            ))
        }
        return logs
    }

    /// One request; a JSON-RPC error that is not the node's is thrown as ``EthereumRPCError/rejected(_:)``.
    public func send(_ request: RPCRequest) async throws(EthereumRPCError) -> JSONValue {
        switch try await batch([request])[0] {
        case .result(let value): return value
        case .error(let error): throw .rejected(error)
        }
    }

    /// Requests as JSON-RPC batches (one HTTP request per ``EthereumRPCConfiguration/maxBatchSize``
    /// requests), answers in the order of `requests`. Answers that are the node's failures are asked
    /// again of the next endpoint; reverts and other answers come back as they are.
    public func batch(_ requests: [RPCRequest]) async throws(EthereumRPCError) -> [RPCAnswer] {
        if requests.count <= configuration.maxBatchSize { return try await exchange(requests) }
        var answers: [RPCAnswer] = []
        var start = 0
        while start < requests.count {
            let end = min(requests.count, start + configuration.maxBatchSize)
            answers += try await exchange(Array(requests[start..<end]))
            start = end
        }
        return answers
    }

    // MARK: Failover

    private func exchange(_ requests: [RPCRequest]) async throws(EthereumRPCError) -> [RPCAnswer] {
        guard !requests.isEmpty else { return [] }
        var answers = [RPCAnswer?](repeating: nil, count: requests.count)
        var pending = Array(requests.indices)
        var failures: [String] = []
        for index in endpointOrder() {
            let endpoint = endpoints[index]
            do {
                try await verifyChain(index)
            } catch {
                if Task.isCancelled { throw .unavailable("cancelled") }
                failures.append("\(endpoint.label): \(error.reason)")
                continue
            }
            let got: [RPCAnswer]
            do {
                got = try await post(pending.map { requests[$0] }, to: index)
            } catch {
                // A cancelled caller says nothing about the endpoint.
                if Task.isCancelled { throw .unavailable("cancelled") }
                markDown(index, reason: error.reason)
                failures.append("\(endpoint.label): \(error.reason)")
                continue
            }
            var stillPending: [Int] = []
            var nodeFailure: String?
            for (position, requestIndex) in pending.enumerated() {
                let answer = got[position]
                if case .error(let error) = answer, !error.isExecutionFailure, !error.isClientError {
                    stillPending.append(requestIndex)
                    nodeFailure = nodeFailure ?? error.description
                } else {
                    answers[requestIndex] = answer
                }
            }
            pending = stillPending
            if pending.isEmpty { return answers.map { $0! } }
            markDown(index, reason: nodeFailure ?? "node failure")
            failures.append("\(endpoint.label): \(nodeFailure ?? "node failure")")
        }
        throw .unavailable(failures.joined(separator: "; "))
    }

    /// Healthy endpoints in configured order, then those cooling down (oldest failure first).
    private func endpointOrder() -> [Int] {
        let now = NIODeadline.now()
        return state.withLockedValue { state in
            var healthy: [Int] = []
            var cooling: [(Int, NIODeadline)] = []
            for (index, endpoint) in state.endpoints.enumerated() {
                if case .wrong = endpoint.chainCheck { continue }
                if let until = endpoint.downUntil, until > now { cooling.append((index, until)) } else { healthy.append(index) }
            }
            return healthy + cooling.sorted { $0.1 < $1.1 }.map(\.0)
        }
    }

    private func markDown(_ index: Int, reason: String) {
        let until = NIODeadline.now() + .nanoseconds(Int64(configuration.endpointCooldown.components.seconds) * 1_000_000_000 + configuration.endpointCooldown.components.attoseconds / 1_000_000_000)
        state.withLockedValue { $0.endpoints[index].downUntil = until }
        logger.warning("RPC endpoint failing over", metadata: ["endpoint": .string(endpoints[index].label), "reason": .string(reason)])
    }

    private func verifyChain(_ index: Int) async throws(Failure) {
        let check = state.withLockedValue { $0.endpoints[index].chainCheck }
        switch check {
        case .verified: return
        case .wrong(let actual): throw Failure("eth_chainId is \(actual), expected \(configuration.chainID)")
        case .unchecked: break
        }
        let answers: [RPCAnswer]
        do {
            answers = try await post([RPCRequest("eth_chainId")], to: index)
        } catch {
            if !Task.isCancelled { markDown(index, reason: error.reason) }
            throw error
        }
        guard case .result(let value) = answers[0], let actual = value.uint64 else {
            markDown(index, reason: "eth_chainId failed")
            throw Failure("eth_chainId answered \(answers[0])")
        }
        if actual == configuration.chainID {
            state.withLockedValue { $0.endpoints[index].chainCheck = .verified }
        } else {
            state.withLockedValue { $0.endpoints[index].chainCheck = .wrong(actual) }
            logger.error("RPC endpoint is on another chain; not used", metadata: ["endpoint": .string(endpoints[index].label), "chain_id": .stringConvertible(actual)])
            throw Failure("eth_chainId is \(actual), expected \(configuration.chainID)")
        }
    }

    private struct Failure: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// One HTTP request to one endpoint; the answers in request order. Throws for anything that
    /// makes the whole exchange the endpoint's failure.
    private func post(_ requests: [RPCRequest], to index: Int) async throws(Failure) -> [RPCAnswer] {
        let endpoint = endpoints[index]
        let firstID: UInt64 = state.withLockedValue { state in
            state.httpRequests += 1
            state.requests += requests.count
            let id = state.nextID
            state.nextID += UInt64(requests.count)
            return id
        }
        let messages: [JSONValue] = requests.enumerated().map { position, request in
            ["jsonrpc": "2.0", "id": .integer(firstID + UInt64(position)), "method": .string(request.method), "params": .array(request.params)]
        }
        let body: Data
        do {
            body = try JSONEncoder().encode(requests.count == 1 ? messages[0] : .array(messages))
        } catch {
            throw Failure("cannot encode the request: \(error)")
        }
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let started = ContinuousClock.now
        let timeout = configuration.timeout.components
        let amount = TimeAmount.nanoseconds(timeout.seconds * 1_000_000_000 + timeout.attoseconds / 1_000_000_000)
        defer {
            let elapsed = (ContinuousClock.now - started).components
            endpoint.timer.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        }
        let status: UInt
        let bytes: ByteBuffer
        do {
            let response = try await client.execute(request, timeout: amount, logger: nil)
            status = response.status.code
            bytes = try await response.body.collect(upTo: configuration.maxResponseBytes)
        } catch {
            let timedOut = (error as? HTTPClientError) == .deadlineExceeded || (error as? HTTPClientError) == .readTimeout
                || (error as? HTTPClientError) == .connectTimeout
            let outcome = timedOut ? "timeout" : "transport_error"
            for request in requests { count(endpoint: endpoint.label, method: request.method, outcome: outcome) }
            throw Failure(timedOut ? "timed out after \(configuration.timeout)" : "\(error)")
        }
        if status >= 500 || status == 429 {
            for request in requests { count(endpoint: endpoint.label, method: request.method, outcome: "http_error") }
            throw Failure("HTTP \(status)")
        }
        let decoded: JSONValue
        do {
            decoded = try JSONDecoder().decode(JSONValue.self, from: Data(bytes.readableBytesView))
        } catch {
            for request in requests { count(endpoint: endpoint.label, method: request.method, outcome: "bad_response") }
            throw Failure("HTTP \(status), body is not JSON")
        }
        var byID: [UInt64: JSONValue] = [:]
        for message in decoded.array ?? [decoded] {
            if let id = message["id"]?.uint64 { byID[id] = message }
        }
        if byID.isEmpty, let error = decoded["error"], requests.count > 1 {
            // A node that refuses the whole batch (too large, batches disabled) answers one error.
            for request in requests { count(endpoint: endpoint.label, method: request.method, outcome: "error") }
            throw Failure("batch refused: \(error["message"]?.string ?? "error")")
        }
        var answers: [RPCAnswer] = []
        answers.reserveCapacity(requests.count)
        for (position, request) in requests.enumerated() {
            let answer: RPCAnswer
            let fallback: JSONValue? = requests.count == 1 && decoded["id"] == .null ? decoded : nil
            if let message = byID[firstID + UInt64(position)] ?? fallback {
                if let error = message["error"], error != .null {
                    answer = .error(RPCErrorObject(code: error["code"]?.int ?? -32603, message: error["message"]?.string ?? "", data: error["data"]))
                } else if let result = message["result"] {
                    answer = .result(result)
                } else {
                    answer = .error(RPCErrorObject(code: -32603, message: "answer has neither result nor error", data: nil))
                }
            } else {
                answer = .error(RPCErrorObject(code: -32603, message: "no answer for this request in the batch (HTTP \(status))", data: nil))
            }
            let outcome: String
            switch answer {
            case .result: outcome = "ok"
            case .error(let error): outcome = error.isExecutionFailure ? "reverted" : "error"
            }
            count(endpoint: endpoint.label, method: request.method, outcome: outcome)
            answers.append(answer)
        }
        return answers
    }

    private func count(endpoint: String, method: String, outcome: String) {
        let key = "\(endpoint)|\(method)|\(outcome)"
        let counter = state.withLockedValue { state in
            if let counter = state.counters[key] { return counter }
            let counter = Counter(label: "streamgate_gate_rpc_calls_total", dimensions: [("endpoint", endpoint), ("method", method), ("outcome", outcome)])
            state.counters[key] = counter
            return counter
        }
        counter.increment()
    }

    // MARK: Helpers

    static func callResult(_ answer: RPCAnswer) throws(EthereumRPCError) -> CallResult {
        switch answer {
        case .result(let value):
            guard let text = value.string, let data = try? EthereumHex.decode(text) else {
                throw .badResponse("eth_call answered \(value.kind)")
            }
            return .success(data)
        case .error(let error):
            guard error.isExecutionFailure else { throw .rejected(error) }
            return .reverted(data: error.revertData, message: error.message)
        }
    }

    private func quantity(_ value: JSONValue, _ method: String) throws(EthereumRPCError) -> UInt64 {
        guard let number = value.uint64 else { throw .badResponse("\(method) answered \(value.kind), not a quantity") }
        return number
    }

    static func label(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return "endpoint" }
        let port = components.port ?? (components.scheme == "https" ? 443 : 80)
        return "\(host):\(port)"
    }
}
