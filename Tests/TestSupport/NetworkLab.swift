import Foundation
import Processes

/// Test hosts on one machine: each a network namespace of its own (`ip netns`), joined to a bridge
/// on a private /24 made for the run, so processes on different "hosts" reach each other only
/// through the network, at their own addresses. The test process itself sits on the bridge
/// (`.1`), so it can talk to every host. Needs root (or CAP_NET_ADMIN) and `ip` (iproute2).
///
/// Made by ``withNetworkLab(_:)``, which removes the namespaces and the bridge afterwards, whatever
/// happened (and the processes in them with them: everything started through ``Host/start(_:_:environment:log:)``
/// is killed first).
public final class NetworkLab: @unchecked Sendable {
    /// One test host: a namespace and its address on the lab's subnet.
    public struct Host: Sendable {
        public let name: String
        public let namespace: String
        public let address: String
        /// What runs a command inside this host's namespace.
        public var launcher: [String] { [NetworkLab.ip, "netns", "exec", namespace] }
    }

    static let ip = FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip"
    /// `sg` + 5 random characters: namespace, bridge and veth names stay under Linux's 15 bytes.
    let tag: String
    let subnet: String
    private let lock = NSLock()
    private var hosts: [Host] = []
    private var processes: [ChildProcess] = []
    var bridge: String { "\(tag)br" }
    /// The test process's own address on the lab's subnet.
    public var gateway: String { "\(subnet).1" }

    /// Whether this process may make namespaces (root with iproute2); the tests that need a lab
    /// say so when it is missing.
    public static var available: Bool {
        geteuid() == 0 && FileManager.default.isExecutableFile(atPath: ip)
    }

    init() throws {
        tag = "sg" + String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(5))
        subnet = "10.213.\(Int.random(in: 2...250))"
        try Self.run(["link", "add", bridge, "type", "bridge"])
        try Self.run(["addr", "add", "\(gateway)/24", "dev", bridge])
        try Self.run(["link", "set", bridge, "up"])
    }

    /// A new host, `name` (a few letters), at the next address of the subnet.
    public func addHost(_ name: String) throws -> Host {
        let index = lock.withLock { hosts.count } + 2
        let host = Host(name: name, namespace: "\(tag)-\(name)", address: "\(subnet).\(index)")
        let outside = "\(tag)v\(index)", inside = "\(tag)i\(index)"
        try Self.run(["netns", "add", host.namespace])
        lock.withLock { hosts.append(host) }
        try Self.run(["link", "add", outside, "type", "veth", "peer", "name", inside])
        try Self.run(["link", "set", inside, "netns", host.namespace])
        try Self.run(["link", "set", outside, "master", bridge, "up"])
        try Self.run(["netns", "exec", host.namespace, Self.ip, "addr", "add", "\(host.address)/24", "dev", inside])
        try Self.run(["netns", "exec", host.namespace, Self.ip, "link", "set", inside, "up"])
        try Self.run(["netns", "exec", host.namespace, Self.ip, "link", "set", "lo", "up"])
        return host
    }

    /// Starts `command` on `host`, its output appended to `log`; stopped when the lab ends.
    @discardableResult
    public func start(on host: Host, _ command: [String], environment: [String: String], log: String) throws -> ChildProcess {
        let full = host.launcher + command
        let process = try ChildProcess(
            executable: full[0], arguments: Array(full.dropFirst()), environment: environment,
            stdout: .file(log), stderr: .file(log), processGroup: true
        )
        lock.withLock { processes.append(process) }
        return process
    }

    /// Kills every process started here, then removes the namespaces and the bridge.
    func end() {
        let (started, made) = lock.withLock { (processes, hosts) }
        for process in started {
            process.signalGroup(SIGKILL)
            _ = process.wait(timeout: 5)
        }
        for host in made { try? Self.run(["netns", "delete", host.namespace]) }
        try? Self.run(["link", "delete", bridge])
    }

    static func run(_ arguments: [String]) throws {
        let process = try ChildProcess(executable: ip, arguments: arguments, stdout: .null, stderr: .pipe)
        var errorText = Data()
        if let pipe = process.stderrPipe {
            errorText = FileHandle(fileDescriptor: pipe, closeOnDealloc: true).readDataToEndOfFile()
        }
        let status = process.wait()
        guard status == .exited(0) else {
            throw NetworkLabError("ip \(arguments.joined(separator: " ")): \(status!): \(String(decoding: errorText, as: UTF8.self))")
        }
    }
}

/// Runs `body` with a ``NetworkLab``; afterwards its processes, namespaces and bridge are gone.
public func withNetworkLab<T>(isolation: isolated (any Actor)? = #isolation, _ body: (NetworkLab) async throws -> T) async throws -> T {
    let lab = try NetworkLab()
    return try await withCleanup { try await body(lab) } cleanup: { _ = try? await offPool { lab.end() } }
}

public struct NetworkLabError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
