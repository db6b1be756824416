import Ethereum

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
