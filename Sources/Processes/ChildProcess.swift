import CLinux
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How a child ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "killed by signal \(signal) (\(String(cString: strsignal(signal))))"
        }
    }
}

/// A child process, started with only the descriptors it is given and reaped with `waitpid`:
/// exact control over its signals, its process group, when it is reaped and, sandboxed, what it
/// may reach. Every child dies with the process that started it (`PR_SET_PDEATHSIG`), however that
/// process dies.
public final class ChildProcess: @unchecked Sendable {
    /// Where a standard stream of the child goes.
    public enum Stream: Sendable {
        case null
        case inherit
        /// Appended to this file (created 0600); for standard input, read from it.
        case file(String)
        /// A pipe; the parent's end is ``stdinPipe``, ``stdoutPipe`` or ``stderrPipe``.
        case pipe
    }

    /// What a sandboxed child may not do: reach any network, open any socket, trace or read other
    /// processes, dump core, or use more than its limits. See ``network`` for what took effect.
    public struct Sandbox: Sendable, Equatable {
        /// A network namespace of its own, where the kernel allows one (root, or user namespaces).
        public var isolateNetwork = true
        /// socket(2) fails (seccomp), whatever the namespace: the part enforced everywhere.
        public var denySockets = true
        /// RLIMIT_CPU, RLIMIT_FSIZE and RLIMIT_NOFILE. (An address-space cap is best set by the
        /// program once it has loaded: at exec it would count the program's own libraries.)
        public var cpuSeconds: Int?
        public var fileSizeBytes: Int?
        public var openFiles: Int? = 256

        public init(cpuSeconds: Int? = nil, fileSizeBytes: Int? = nil, openFiles: Int? = 256) {
            self.cpuSeconds = cpuSeconds
            self.fileSizeBytes = fileSizeBytes
            self.openFiles = openFiles
        }
    }

    /// The network a child has.
    public enum Network: Sendable, Equatable {
        /// The parent's (not sandboxed, or no namespace allowed: sockets are still refused).
        case shared
        /// A namespace of its own.
        case isolated
    }

    public let pid: pid_t
    /// The parent's write end when stdin is `.pipe`; the caller closes it.
    public let stdinPipe: Int32?
    /// The parent's read end when stdout is `.pipe`; the caller closes it.
    public let stdoutPipe: Int32?
    public let stderrPipe: Int32?
    public let network: Network
    private let lock = NSLock()
    private var status: ExitStatus?

    /// The most descriptors a child gets besides its standard ones.
    public static let maxExtraDescriptors = Int(CLINUX_SPAWN_MAX_DESCRIPTORS) - 3

    /// Starts `executable` with `arguments`.
    /// - Parameters:
    ///   - environment: nil inherits this process's.
    ///   - processGroup: when true, the child leads a new process group, so ``signalGroup(_:)``
    ///     reaches everything it starts.
    ///   - deathSignal: what the child gets when this process ends (nil: nothing).
    ///   - extraDescriptors: given to the child as its descriptors 3, 4… in this order (at most
    ///     ``maxExtraDescriptors``); nothing else of this process's is. They stay the caller's:
    ///     it closes its copies (a socket's or pipe's peer sees EOF only once every copy of the
    ///     child's end is closed, so close it right after the start).
    public init(
        executable: String, arguments: [String], environment: [String: String]? = nil,
        stdin: Stream = .null, stdout: Stream = .inherit, stderr: Stream = .inherit, processGroup: Bool = false,
        deathSignal: Int32? = SIGTERM, sandbox: Sandbox? = nil, extraDescriptors: [Int32] = []
    ) throws {
        guard extraDescriptors.count <= Self.maxExtraDescriptors else {
            throw ChildProcessError(executable: executable, reason: "\(extraDescriptors.count) extra descriptors; at most \(Self.maxExtraDescriptors) can be given")
        }
        var parentEnds: [Int32?] = [nil, nil, nil]
        var childEnds: [Int32] = []
        defer { childEnds.forEach { close($0) } }
        func fail(_ reason: String) -> ChildProcessError {
            parentEnds.compactMap { $0 }.forEach { close($0) }
            return ChildProcessError(executable: executable, reason: reason)
        }
        var fds: [Int32] = [0, 1, 2]
        for (index, stream) in [stdin, stdout, stderr].enumerated() {
            let reading = index == 0
            switch stream {
            case .inherit: break
            case .null, .file:
                let path: String
                if case .file(let file) = stream { path = file } else { path = "/dev/null" }
                let flags = reading ? O_RDONLY : O_WRONLY | O_CREAT | O_APPEND
                let fd = open(path, flags | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw fail("\(path): \(String(cString: strerror(errno)))") }
                childEnds.append(fd)
                fds[index] = fd
            case .pipe:
                var ends: [Int32] = [0, 0]
                guard clinux_pipe_cloexec(&ends) == 0 else { throw fail("pipe: \(String(cString: strerror(errno)))") }
                parentEnds[index] = reading ? ends[1] : ends[0]
                childEnds.append(reading ? ends[0] : ends[1])
                fds[index] = reading ? ends[0] : ends[1]
            }
        }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentList = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { environmentList.forEach { free($0) } }
        var limits = clinux_sandbox()
        if let sandbox {
            limits.isolate_network = sandbox.isolateNetwork ? 1 : 0
            limits.deny_sockets = sandbox.denySockets ? 1 : 0
            limits.cpu_seconds = Int64(sandbox.cpuSeconds ?? 0)
            limits.file_size_bytes = Int64(sandbox.fileSizeBytes ?? 0)
            limits.open_files = Int64(sandbox.openFiles ?? 0)
        }
        fds += extraDescriptors
        let given = fds
        let started = Spawner.shared.run { () -> (pid: pid_t, network: Int32) in
            var network: Int32 = 0
            let pid = argv.withUnsafeBufferPointer { argv in
                environmentList.withUnsafeBufferPointer { envp in
                    withUnsafePointer(to: &limits) { limits in
                        clinux_spawn(
                            executable, argv.baseAddress, envp.baseAddress, given, Int32(given.count), processGroup ? 1 : 0, deathSignal ?? 0,
                            sandbox == nil ? nil : limits, &network
                        )
                    }
                }
            }
            return (pid, network)
        }
        guard started.pid > 0 else { throw fail(String(cString: strerror(-started.pid))) }
        pid = started.pid
        network = started.network == 0 ? .shared : .isolated
        stdinPipe = parentEnds[0]
        stdoutPipe = parentEnds[1]
        stderrPipe = parentEnds[2]
    }

    /// Sends `signal` to the child.
    public func signal(_ signal: Int32) {
        guard exitStatus == nil else { return }
        kill(pid, signal)
    }

    /// Sends `signal` to the child's process group (started with `processGroup: true`).
    public func signalGroup(_ signal: Int32) {
        guard exitStatus == nil else { return }
        kill(-pid, signal)
    }

    /// The exit status if the child has ended (reaping it), else nil. Never blocks.
    public var exitStatus: ExitStatus? {
        lock.lock()
        defer { lock.unlock() }
        if let status { return status }
        var raw: Int32 = 0
        let reaped = waitpid(pid, &raw, WNOHANG)
        guard reaped == pid else { return nil }
        status = Self.decode(raw)
        return status
    }

    public var isRunning: Bool { exitStatus == nil }

    /// Waits for the child to end, polling; nil when `timeout` (seconds) passes first.
    public func wait(timeout: Double? = nil) -> ExitStatus? {
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        var pause: useconds_t = 1_000
        while true {
            if let status = exitStatus { return status }
            if let deadline, Date() >= deadline { return nil }
            usleep(pause)
            pause = min(pause * 2, 50_000)
        }
    }

    /// Async wait that never blocks a cooperative thread for long.
    public func exited(timeout: Double? = nil) async -> ExitStatus? {
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        var pause = 1
        while true {
            if let status = exitStatus { return status }
            if let deadline, Date() >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(pause))
            pause = min(pause * 2, 50)
        }
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; waits for the end.
    @discardableResult
    public func terminate(grace: Double = 5, group: Bool = false) -> ExitStatus {
        group ? signalGroup(SIGTERM) : signal(SIGTERM)
        if let status = wait(timeout: grace) { return status }
        group ? signalGroup(SIGKILL) : signal(SIGKILL)
        return wait()!
    }

    private static func decode(_ raw: Int32) -> ExitStatus {
        let signal = raw & 0x7f
        return signal == 0 ? .exited((raw >> 8) & 0xff) : .signaled(signal)
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public let executable: String
    public let reason: String
    public var description: String { "cannot start \(executable): \(reason)" }
}

/// Starts every child from one thread that lives as long as the process. `PR_SET_PDEATHSIG`
/// fires when the thread that forked the child ends, not the process: a child started from a pool
/// thread that later retires would be killed with it.
final class Spawner: @unchecked Sendable {
    static let shared = Spawner()
    private let condition = NSCondition()
    private var pending: [() -> Void] = []

    private init() {
        let thread = Thread { [unowned self] in self.serve() }
        thread.name = "streamgate.spawner"
        thread.start()
    }

    /// Runs `work` on the spawner thread and waits for it.
    func run<Result>(_ work: @escaping () -> Result) -> Result {
        let done = DispatchSemaphore(value: 0)
        var result: Result?
        condition.lock()
        pending.append {
            result = work()
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
        return result!
    }

    private func serve() {
        while true {
            condition.lock()
            while pending.isEmpty { condition.wait() }
            let work = pending.removeFirst()
            condition.unlock()
            work()
        }
    }
}
