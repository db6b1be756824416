import AsyncHTTPClient
import Foundation
import Gate
import NIOConcurrencyHelpers
import NIOCore
import Processes

#if canImport(Glibc)
import Glibc
import Ethereum
#endif

/// The local EVM of `fixtures/chain/chain.py` as a child process: a real chain with the test token
/// contracts, Multicall3 and the delegate registry, for the gate's tests and `streamgate dev`.
///
/// Started through Jobs' ``ChildProcess`` (posix_spawn; Foundation's `Process` can hang waiting
/// for its child off the main thread), with `--exit-with-parent` so it never outlives the tests.
/// It is ready once its ready file appears; ``stop()`` (or releasing the value) ends it.
public final class LocalChainProcess: @unchecked Sendable {
    /// A funded account of the chain.
    public struct Account: Sendable, Hashable {
        public let address: EthereumAddress
        /// The 32-byte secp256k1 key.
        public let privateKey: [UInt8]
    }

    /// The JSON-RPC endpoint, `http://127.0.0.1:<port>`.
    public let rpcURL: String
    public let chainID: UInt64
    /// Contract addresses by the ready file's names: `erc721`, `erc1155`, `erc4907`, `wallet1271`,
    /// `multicall3`, `delegateRegistry`.
    public let contracts: [String: EthereumAddress]
    /// The ten funded accounts; the first deployed the contracts.
    public let accounts: [Account]
    /// The owner of `wallet1271` at startup.
    public let walletOwner: EthereumAddress?
    /// The folder of the ready file and the chain's log.
    public let directory: String
    private let process: ChildProcess
    private let lock = NSLock()
    private var stopped = false
    private let nextID = NIOLockedValueBox<UInt64>(1)

    /// Starts the chain and waits (blocking this thread) until it is ready. From async code prefer
    /// ``start(repositoryRoot:arguments:timeout:)``, which does not hold a thread while it waits.
    ///
    /// - Parameters:
    ///   - repositoryRoot: the folder holding `fixtures/chain/chain.py` and `.venv`; found from the
    ///     working directory or the executable's location (upwards) when nil.
    ///   - arguments: more options for chain.py (`--block-time 1`, `--chain-id 5`…).
    ///   - timeout: how long to wait for the ready file, in seconds.
    public convenience init(repositoryRoot: String? = nil, arguments: [String] = [], timeout: Double = 60) throws(LocalChainError) {
        let launch = try Launch(repositoryRoot: repositoryRoot, arguments: arguments)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let ready = try launch.ready(deadline: deadline, timeout: timeout) {
                try self.init(launch: launch, ready: ready)
                return
            }
            usleep(20_000)
        }
    }

    /// Starts the chain and waits until it is ready, sleeping between looks at the ready file.
    public static func start(repositoryRoot: String? = nil, arguments: [String] = [], timeout: Double = 60) async throws(LocalChainError) -> LocalChainProcess {
        let launch = try Launch(repositoryRoot: repositoryRoot, arguments: arguments)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let ready = try launch.ready(deadline: deadline, timeout: timeout) {
                return try LocalChainProcess(launch: launch, ready: ready)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// A started chain.py whose ready file is awaited.
    private struct Launch {
        let process: ChildProcess
        let folder: String
        let readyFile: String
        let log: String

        init(repositoryRoot: String?, arguments: [String]) throws(LocalChainError) {
            guard let root = repositoryRoot ?? LocalChainProcess.findRepositoryRoot() else {
                throw .notFound("fixtures/chain/chain.py not found above the working directory or the executable; pass repositoryRoot")
            }
            let python = root + "/.venv/bin/python"
            let script = root + "/fixtures/chain/chain.py"
            guard FileManager.default.isExecutableFile(atPath: python) else {
                throw .notFound("\(python) is missing: run scripts/python-env.sh (it creates .venv with the chain's Python packages)")
            }
            guard FileManager.default.fileExists(atPath: script) else { throw .notFound("\(script) is missing") }
            LocalChainProcess.removeAbandonedFolders()
            folder = NSTemporaryDirectory() + "sg-chain-" + String(UUID().uuidString.prefix(8))
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw .startFailed("cannot create \(folder): \(error)")
            }
            readyFile = folder + "/ready.json"
            log = folder + "/chain.log"
            do {
                process = try ChildProcess(
                    executable: python,
                    arguments: [script, "--port", "0", "--ready-file", readyFile, "--exit-with-parent"] + arguments,
                    stdout: .null, stderr: .file(log),
                    // Its own group: a Ctrl-C at the terminal reaches the parent, which stops it.
                    processGroup: true
                )
            } catch {
                try? FileManager.default.removeItem(atPath: folder)
                throw .startFailed("\(error)")
            }
        }

        /// The ready file's content once written; nil while waiting; throws when the chain died or
        /// the deadline passed (stopping it and removing its folder).
        func ready(deadline: Date, timeout: Double) throws(LocalChainError) -> JSONValue? {
            if let data = FileManager.default.contents(atPath: readyFile), let value = try? JSONDecoder().decode(JSONValue.self, from: data) {
                return value
            }
            if let status = process.exitStatus {
                let tail = LocalChainProcess.tail(log)
                try? FileManager.default.removeItem(atPath: folder)
                throw .startFailed("chain.py \(status): \(tail)")
            }
            if Date() >= deadline {
                abandon()
                throw .startFailed("chain.py did not write its ready file within \(Int(timeout)) s: \(LocalChainProcess.tail(log))")
            }
            return nil
        }

        func abandon() {
            process.terminate(grace: 2, group: true)
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    private init(launch: Launch, ready: JSONValue) throws(LocalChainError) {
        guard let rpc = ready["rpc"]?.string, let chainID = ready["chain_id"]?.uint64 else {
            launch.abandon()
            throw .startFailed("ready file without rpc or chain_id")
        }
        process = launch.process
        directory = launch.folder
        rpcURL = rpc
        self.chainID = chainID
        var contracts: [String: EthereumAddress] = [:]
        for (name, value) in ready["contracts"]?.object ?? [:] {
            if let text = value.string, let address = try? EthereumAddress(hex: text) { contracts[name] = address }
        }
        self.contracts = contracts
        accounts = (ready["accounts"]?.array ?? []).compactMap { entry in
            guard let address = entry["address"]?.string.flatMap({ try? EthereumAddress(hex: $0) }),
                let key = entry["privateKey"]?.string.flatMap({ try? EthereumHex.decode($0, count: 32) })
            else { return nil }
            return Account(address: address, privateKey: key)
        }
        walletOwner = ready["wallet1271_owner"]?.string.flatMap { try? EthereumAddress(hex: $0) }
    }

    deinit { stop() }

    /// The process id of the chain.
    public var processIdentifier: Int32 { process.pid }

    /// The contract of the ready file named `name`.
    public func contract(_ name: String) -> EthereumAddress {
        guard let address = contracts[name] else { preconditionFailure("the local chain has no contract named \(name)") }
        return address
    }

    /// Calls a JSON-RPC method (the `sg_*` and `evm_*` admin methods, or any standard one) and
    /// answers its result; a JSON-RPC error is thrown.
    @discardableResult
    public func call(_ method: String, _ params: [JSONValue] = []) async throws -> JSONValue {
        let id = nextID.withLockedValue { id in
            defer { id += 1 }
            return id
        }
        let body = try JSONEncoder().encode(JSONValue.object(["jsonrpc": "2.0", "id": .integer(id), "method": .string(method), "params": .array(params)]))
        var request = HTTPClientRequest(url: rpcURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let answer = try JSONDecoder().decode(JSONValue.self, from: Data(bytes.readableBytesView))
        if let error = answer["error"], error != .null {
            throw LocalChainError.callFailed(method: method, message: "\(error["code"]?.int ?? 0) \(error["message"]?.string ?? "")")
        }
        return answer["result"] ?? .null
    }

    /// Stops the chain (SIGTERM, then SIGKILL after 5 s) and removes its folder.
    public func stop() {
        lock.lock()
        let already = stopped
        stopped = true
        lock.unlock()
        guard !already else { return }
        process.terminate(grace: 5, group: true)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The repository root: the first folder holding `fixtures/chain/chain.py`, going up from the
    /// working directory, then from the executable's folder.
    public static func findRepositoryRoot() -> String? {
        var starts = [FileManager.default.currentDirectoryPath]
        if let executable = Bundle.main.executablePath { starts.append((executable as NSString).deletingLastPathComponent) }
        starts.append(CommandLine.arguments.first.map { (($0 as NSString).standardizingPath as NSString).deletingLastPathComponent } ?? "")
        for start in starts where !start.isEmpty {
            var folder = (start as NSString).standardizingPath
            while true {
                if FileManager.default.fileExists(atPath: folder + "/fixtures/chain/chain.py") { return folder }
                let parent = (folder as NSString).deletingLastPathComponent
                if parent == folder || parent.isEmpty { break }
                folder = parent
            }
        }
        return nil
    }

    /// Removes the folders of chains that were not stopped (a test process that exited without
    /// releasing its chain: the chain followed its parent, the folder stayed). A folder is
    /// abandoned when the pid of its ready file is gone, or when it has no ready file and is older
    /// than ten minutes.
    static func removeAbandonedFolders() {
        let temporary = NSTemporaryDirectory()
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: temporary) else { return }
        for name in names where name.hasPrefix("sg-chain-") {
            let folder = temporary + (temporary.hasSuffix("/") ? "" : "/") + name
            if let data = FileManager.default.contents(atPath: folder + "/ready.json"),
                let pid = (try? JSONDecoder().decode(JSONValue.self, from: data))?["pid"]?.uint64
            {
                if kill(pid_t(truncatingIfNeeded: pid), 0) == 0 || errno != ESRCH { continue }
            } else {
                let modified = (try? FileManager.default.attributesOfItem(atPath: folder)[.modificationDate] as? Date) ?? Date()
                if Date().timeIntervalSince(modified) < 600 { continue }
            }
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    private static func tail(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(5).joined(separator: " | ")
    }
}

/// Why the local chain could not be started or asked.
public enum LocalChainError: Error, CustomStringConvertible, Sendable {
    case notFound(String)
    case startFailed(String)
    case callFailed(method: String, message: String)

    public var description: String {
        switch self {
        case .notFound(let reason): "local chain: \(reason)"
        case .startFailed(let reason): "local chain did not start: \(reason)"
        case .callFailed(let method, let message): "local chain: \(method) failed: \(message)"
        }
    }
}
