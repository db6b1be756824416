import ArgumentParser
import Foundation
import Profiling

/// `streamgate profile PID`: a CPU profile of a running origin or worker, taken by Linux perf from
/// outside (nothing restarts, nothing is built in), folded and drawn here.
struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Record a CPU profile of a running StreamGate process: folded stacks and a flame graph.",
        discussion: """
            Attaches Linux perf (Debian: linux-perf) to PID for --seconds without stopping it, then writes \
            DIR/profile.folded (`root;…;leaf count` a line, most samples first) and DIR/profile.svg (a flame graph), \
            and prints the ten frames with the most samples of their own. Ctrl-C ends the recording early. \
            Without root, /proc/sys/kernel/perf_event_paranoid must let this user attach perf (2 allows \
            user-space samples of one's own processes).
            """
    )

    @Argument(help: "The id of a running streamgate process (serve, worker, farm, transcode…).")
    var pid: Int32

    @Option(help: "How long to record, in seconds.")
    var seconds: Double = 10

    @Option(help: ArgumentHelp("Where to write profile.folded and profile.svg (default: streamgate-profile-PID).", valueName: "dir"))
    var out: String?

    // 99 Hz: each DWARF sample carries 32 KiB of stack, so a busy origin makes about 3 MiB a
    // second a thread; an odd rate also keeps clear of timers that fire in step with the sampling.
    @Option(help: ArgumentHelp("Samples a second, per busy thread.", valueName: "hz"))
    var frequency: Int = 99

    @Option(help: "How perf walks the stacks: dwarf (whole stacks through Swift, FFmpeg and libc) or fp (frame pointers: far less data, but frames built without them go missing).")
    var callGraph: CallGraph = .dwarf

    @Flag(help: "Profile the process even if it is not streamgate.")
    var anyProcess = false

    enum CallGraph: String, ExpressibleByArgument, CaseIterable {
        case dwarf, fp

        /// perf's `--call-graph` value. DWARF, because frame pointers lose frames: swiftc -O on Linux
        /// omits them and Debian builds FFmpeg without them. Measured on an origin under curl load
        /// and a 720p transcode, debug and release builds: with `fp` a transcode's samples averaged
        /// 2.4 frames (FFmpeg's Swift callers gone) and a release origin's stacks 22 frames against
        /// 28–30 unwound from DWARF. Whole stacks from DWARF took 16 KiB of stack a sample for
        /// release builds, 32 KiB for four in five of a debug origin's (64 KiB for all).
        var perfArgument: String {
            switch self {
            case .dwarf: "dwarf,32768"
            case .fp: "fp"
            }
        }
    }

    func run() throws {
        guard seconds > 0, seconds <= 3600 else { throw CommandFailure(message: "--seconds must be more than 0 and at most 3600, got \(seconds)", code: 64) }
        guard (1...20_000).contains(frequency) else { throw CommandFailure(message: "--frequency must be 1…20000 Hz, got \(frequency)", code: 64) }
        let target = try ProfiledProcess(pid: pid)
        guard target.isStreamGate || anyProcess else {
            throw CommandFailure(
                message: "process \(pid) is \(target.executableName), not streamgate (--any-process profiles it anyway)", code: 64)
        }
        let perf = try PerfRecording.locatePerf()
        let folder = out ?? "streamgate-profile-\(pid)"
        // Made first, so a folder that cannot be written fails before the minutes of recording.
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure(message: "\(folder): cannot make the folder: \(error.localizedDescription)", code: 73)
        }

        let recording = try PerfRecording(perf: perf)
        defer { recording.remove() }
        let elapsed = try recording.record(pid: pid, seconds: seconds, frequency: frequency, callGraph: callGraph.perfArgument)
        // Ctrl-C ends a recording early: say how long it really ran.
        let recorded = seconds - elapsed < 0.5 ? seconds : (elapsed * 10).rounded() / 10
        let folded = try recording.fold()
        guard folded.totalSamples > 0 else {
            throw CommandFailure(message: "perf took no samples of process \(pid) in \(Self.seconds(recorded)) s: it used no CPU", code: 1)
        }

        let graph = FlameGraph().svg(folded, header: FlameGraph.Header(process: "\(target.commandLine) (pid \(pid))", seconds: recorded, frequency: frequency))
        let foldedPath = URL(fileURLWithPath: folder).appendingPathComponent("profile.folded").path
        let svgPath = URL(fileURLWithPath: folder).appendingPathComponent("profile.svg").path
        do {
            try Data(folded.text.utf8).write(to: URL(fileURLWithPath: foldedPath), options: .atomic)
            try Data(graph.utf8).write(to: URL(fileURLWithPath: svgPath), options: .atomic)
        } catch {
            throw CommandFailure(message: "\(folder): cannot write the profile: \(error.localizedDescription)", code: 73)
        }

        print("folded stacks: \(foldedPath)")
        print("flame graph:   \(svgPath)")
        print("\(folded.totalSamples) samples of \(target.executableName) (pid \(pid)) in \(Self.seconds(recorded)) s; top frames by self time:")
        for (frame, samples) in folded.topSelf(10) {
            let percent = Double(samples) * 100 / Double(folded.totalSamples)
            print(String(format: "%6.2f%% %7d  ", percent, samples) + Self.shortened(frame))
        }
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    /// Demangled Swift names can run to hundreds of characters; a terminal line shows their start.
    static func shortened(_ name: String, limit: Int = 160) -> String {
        name.count <= limit ? name : String(name.prefix(limit - 1)) + "…"
    }
}

/// The process to profile, as /proc tells of it.
struct ProfiledProcess {
    let pid: Int32
    /// The executable's path (without the `(deleted)` a replaced binary gets).
    let executable: String
    /// Its command line, shortened, for the flame graph's title.
    let commandLine: String

    var executableName: String { URL(fileURLWithPath: executable).lastPathComponent }
    var isStreamGate: Bool { executableName == "streamgate" }

    init(pid: Int32) throws {
        self.pid = pid
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else {
            throw CommandFailure(message: "no process \(pid)", code: 66)
        }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        guard length > 0 else {
            let reason = errno
            if reason == ENOENT || reason == ESRCH {
                // A kernel thread has no executable; a process that just ended has no /proc entry.
                throw CommandFailure(message: kill(pid, 0) == 0 || errno == EPERM ? "process \(pid) has no executable (a kernel thread?)" : "no process \(pid)", code: 66)
            }
            throw CommandFailure(
                message: "cannot inspect process \(pid) (/proc/\(pid)/exe: \(String(cString: strerror(reason)))): permission refused; run as its user or root, and see /proc/sys/kernel/perf_event_paranoid (now \(PerfRecording.paranoia))",
                code: 77)
        }
        var path = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
        executable = path
        let arguments = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")))?
            .split(separator: 0).map { String(decoding: $0, as: UTF8.self) } ?? []
        var line = ([URL(fileURLWithPath: path).lastPathComponent] + arguments.dropFirst()).joined(separator: " ")
        if line.count > 120 { line = String(line.prefix(119)) + "…" }
        commandLine = line
    }
}
