import AsyncHTTPClient
import Foundation
import Logging
import Traces
import Tracing
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import Ethereum

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
            // Chain calls get StreamGate's own span, and only in traced work (``tracedPost``).
            http.tracing.tracer = nil
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

    // MARK: Failover

    func exchange(_ requests: [RPCRequest]) async throws(EthereumRPCError) -> [RPCAnswer] {
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
                got = try await tracedPost(pending.map { requests[$0] }, to: index)
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

    /// ``post(_:to:)`` in a client span, when the request that needs it is traced.
    private func tracedPost(_ requests: [RPCRequest], to index: Int) async throws(Failure) -> [RPCAnswer] {
        let method = requests.count == 1 ? requests[0].method : "batch"
        let result: Result<[RPCAnswer], Failure> = await Traces.span("rpc \(method)", ofKind: .client) { span in
            span?.updateAttributes { attributes in
                attributes["rpc.system"] = "jsonrpc"
                attributes["rpc.method"] = method
                attributes["streamgate.rpc.endpoint"] = endpoints[index].label
                attributes["streamgate.rpc.requests"] = requests.count
            }
            do throws(Failure) {
                return .success(try await post(requests, to: index))
            } catch {
                span?.setStatus(SpanStatus(code: .error, message: error.reason))
                return .failure(error)
            }
        }
        return try result.get()
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

    static func label(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return "endpoint" }
        let port = components.port ?? (components.scheme == "https" ? 443 : 80)
        return "\(host):\(port)"
    }
}
