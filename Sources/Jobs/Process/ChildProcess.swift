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

/// A child process started with `posix_spawn` and reaped with `waitpid`: exact control over its
/// signals, its process group and when it is reaped, from any thread.
public final class ChildProcess: @unchecked Sendable {
    /// Where a standard stream of the child goes.
    public enum Stream: Sendable {
        case null
        case inherit
        /// Appended to this file (created 0600).
        case file(String)
        /// A pipe; the parent's end is ``stdoutPipe`` / ``stderrPipe``.
        case pipe
    }

    public let pid: pid_t
    /// The parent's read end when stdout is `.pipe`; the caller closes it.
    public let stdoutPipe: Int32?
    public let stderrPipe: Int32?
    private let lock = NSLock()
    private var status: ExitStatus?

    /// Starts `executable` with `arguments`.
    /// - Parameter processGroup: when true, the child leads a new process group, so
    ///   ``signalGroup(_:)`` reaches everything it starts.
    public init(
        executable: String, arguments: [String], environment: [String: String]? = nil,
        stdout: Stream = .inherit, stderr: Stream = .inherit, processGroup: Bool = false
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if processGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        // The child starts with no blocked signals and default handlers, whatever the parent set.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var parentEnds: [Int32?] = [nil, nil]
        var childEnds: [Int32] = []
        for (index, stream) in [stdout, stderr].enumerated() {
            let target = Int32(index + 1)
            switch stream {
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            case .inherit: break
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            case .pipe:
                var fds: [Int32] = [0, 0]
                guard pipe(&fds) == 0, fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(fds[1], F_SETFD, FD_CLOEXEC) == 0 else {
                    throw ChildProcessError(executable: executable, reason: "pipe: \(String(cString: strerror(errno)))")
                }
                parentEnds[index] = fds[0]
                childEnds.append(fds[1])
                posix_spawn_file_actions_adddup2(&actions, fds[1], target)
            }
        }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentList = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { environmentList.forEach { free($0) } }

        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, environmentList)
        childEnds.forEach { close($0) }
        guard result == 0 else {
            parentEnds.compactMap { $0 }.forEach { close($0) }
            throw ChildProcessError(executable: executable, reason: String(cString: strerror(result)))
        }
        pid = child
        stdoutPipe = parentEnds[0]
        stderrPipe = parentEnds[1]
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
