import Foundation
import TestSupport
import Testing
import Processes

/// Children get only what they are given, die with their parent, and, sandboxed, reach nothing.
/// Each test is named after what it prevents.
@Suite("child processes and the transcode sandbox")
struct ChildProcessTests {
    /// Runs `script` with /bin/sh and returns its exit status and standard output.
    static func shell(
        _ script: String, environment: [String: String]? = nil, sandbox: ChildProcess.Sandbox? = nil
    ) throws -> (status: Processes.ExitStatus, output: String, network: ChildProcess.Network) {
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", script], environment: environment, stdout: .pipe, stderr: .null, sandbox: sandbox
        )
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(child.stdoutPipe!, &buffer, buffer.count)
            if count <= 0 { break }
            output += buffer[0..<count]
        }
        close(child.stdoutPipe!)
        let status = try #require(child.wait(timeout: 30))
        return (status, String(decoding: output, as: UTF8.self), child.network)
    }

    @Test("a child inherits no descriptor of its parent's, close-on-exec or not")
    func childrenInheritNoDescriptors() throws {
        let leaky = open("/etc/hostname", O_RDONLY)  // no O_CLOEXEC: exactly what used to leak
        defer { close(leaky) }
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listening) }
        #expect(leaky >= 0 && listening >= 0)
        for sandbox in [nil, ChildProcess.Sandbox()] {
            // The shell lists its own descriptors (ls itself opens one more, to read the folder).
            let result = try Self.shell("ls /proc/$$/fd", sandbox: sandbox)
            let open = Set(result.output.split(separator: "\n").compactMap { Int($0) })
            #expect(result.status == .exited(0))
            #expect(open == [0, 1, 2], "open in the child: \(open.sorted())")
        }
    }

    @Test("a sandboxed child cannot open a socket, reach a listening port, or read the environment")
    func sandboxedChildReachesNothing() throws {
        let listener = try LoopbackListener()
        let port = listener.port
        // Python opens sockets the way any program would; exit 7 when refused.
        let probe = """
        python3 -c '
        import socket, sys
        try:
            s = socket.create_connection(("127.0.0.1", \(port)), timeout=2)
        except OSError as e:
            print("refused", e.errno)
            sys.exit(7)
        print("connected")
        '
        """
        let open = try Self.shell(probe)
        #expect(open.output.contains("connected"), "without a sandbox the port is reachable: \(open.output)")
        #expect(listener.acceptPending() == 1)

        let boxed = try Self.shell(probe, environment: [:], sandbox: ChildProcess.Sandbox())
        #expect(boxed.status == .exited(7), "\(boxed.output)")
        #expect(boxed.output.contains("refused"))
        #expect(listener.acceptPending() == 0, "the sandboxed child reached the listener")
        let unix = try Self.shell(
            #"python3 -c 'import socket; socket.socket(socket.AF_UNIX)' 2>/dev/null && echo opened || echo refused"#,
            environment: [:], sandbox: ChildProcess.Sandbox()
        )
        #expect(unix.output.hasPrefix("refused"))
        let environment = try Self.shell("env", environment: [:], sandbox: ChildProcess.Sandbox())
        #expect(environment.output.split(separator: "\n").allSatisfy { $0.hasPrefix("PWD=") }, "\(environment.output)")
    }

    @Test("a sandboxed child runs under its limits and never dumps core")
    func sandboxedChildIsLimited() throws {
        let sandbox = ChildProcess.Sandbox(cpuSeconds: 7, fileSizeBytes: 1 << 20, openFiles: 32)
        let result = try Self.shell("ulimit -t; ulimit -f; ulimit -n; ulimit -c", sandbox: sandbox)
        #expect(result.output.split(separator: "\n") == ["7", "2048", "32", "0"], "\(result.output)")
        // Where the kernel allows a network namespace (root here), the child has one of its own.
        if getuid() == 0 {
            #expect(result.network == .isolated)
            let links = try Self.shell("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '", sandbox: sandbox)
            #expect(links.output.split(separator: "\n") == ["lo"], "\(links.output)")
        }
        // Writing past RLIMIT_FSIZE fails (SIGXFSZ) instead of filling the disk.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-fsize-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let big = try Self.shell("head -c 4000000 /dev/zero > \(folder)/big; echo $?", sandbox: sandbox)
        #expect(big.output != "0\n")
        let size = (try? FileManager.default.attributesOfItem(atPath: folder + "/big")[.size] as? Int) ?? 0
        #expect(size <= 1 << 20)
    }

    @Test("extra descriptors arrive as 3, 4… in order and nothing else does; a sandboxed child talks over an inherited socketpair")
    func extraDescriptors() throws {
        var ends: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0)
        var side: [Int32] = [-1, -1]
        #expect(pipe(&side) == 0)
        defer { close(ends[0]); close(side[0]) }
        // The shell lists its descriptors before any redirection (dash keeps a copy of one while it
        // redirects); then fd 4, a pipe, says "four", and fd 3 answers on the socket (socket(2) is
        // refused in the sandbox, an inherited socket is not).
        let script = #"ls /proc/$$/fd; echo four >&4; read line <&3; echo "got $line" >&3"#
        let child = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", script], environment: [:], stdout: .pipe, stderr: .null,
            sandbox: ChildProcess.Sandbox(), extraDescriptors: [ends[1], side[1]]
        )
        close(ends[1])
        close(side[1])
        defer { close(child.stdoutPipe!) }
        #expect(write(ends[0], "hello\n", 6) == 6)
        func readAll(_ fd: Int32) -> String {
            var all: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 256)
            while true {
                let got = read(fd, &buffer, buffer.count)
                if got <= 0 { break }
                all += buffer[0..<got]
            }
            return String(decoding: all, as: UTF8.self)
        }
        #expect(readAll(ends[0]) == "got hello\n")
        #expect(readAll(side[0]) == "four\n")
        let open = Set(readAll(child.stdoutPipe!).split(separator: "\n").compactMap { Int($0) })
        #expect(open == [0, 1, 2, 3, 4], "open in the child: \(open.sorted())")
        #expect(child.wait(timeout: 30) == .exited(0))
        #expect(throws: ChildProcessError.self) {
            _ = try ChildProcess(executable: "/bin/true", arguments: [], extraDescriptors: Array(repeating: 0, count: ChildProcess.maxExtraDescriptors + 1))
        }
    }

    @Test("a child outlives the thread that started it (it dies with the process, not the thread)")
    func childrenOutliveTheirStartingThread() throws {
        // PR_SET_PDEATHSIG fires when the thread that forked the child ends: children are forked
        // from one thread that lives as long as the process, whichever thread asks.
        let box = LockedBox<ChildProcess?>(nil)
        let thread = Thread { box.value = try? ChildProcess(executable: "/bin/sleep", arguments: ["30"], deathSignal: SIGKILL) }
        thread.start()
        while box.value == nil { usleep(10_000) }
        usleep(500_000)  // the thread has ended by now
        let child = try #require(box.value)
        #expect(child.isRunning)
        child.signal(SIGKILL)
        #expect(child.wait(timeout: 5) == .signaled(SIGKILL))
    }
}

final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
