import Ethereum

extension EthereumRPC {
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
}
