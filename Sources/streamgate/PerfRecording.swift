import Foundation
import Processes
import Profiling

/// One run of `perf record` and `perf script` in a temporary folder of its own: perf.data and
/// perf's messages live there and go with ``remove()``.
struct PerfRecording {
    let perf: String
    let folder: String
    var data: String { folder + "/perf.data" }

    init(perf: String) throws {
        self.perf = perf
        let pattern = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("streamgate-profile-XXXXXX").path
        var template = Array(pattern.utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CommandFailure(message: "cannot make a temporary folder: \(String(cString: strerror(errno)))", code: 73)
        }
        folder = String(cString: made)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// perf on PATH, as a shell would find it.
    static func locatePerf() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/perf"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CommandFailure(message: "perf is not installed (Debian: apt-get install linux-perf)", code: 69)
    }

    /// /proc/sys/kernel/perf_event_paranoid, for messages: what this machine lets users profile.
    static var paranoia: String {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/perf_event_paranoid", encoding: .utf8)) ?? "unknown"
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Samples `pid` for `seconds`; returns how long it did. SIGINT is ignored meanwhile: Ctrl-C
    /// reaches perf too (it is in our process group), which then ends early and keeps what it has.
    func record(pid: Int32, seconds: Double, frequency: Int, callGraph: String) throws -> Double {
        let log = folder + "/record.log"
        // -N: no copies of every binary sampled into ~/.debug; the script is made here and now.
        let arguments = ["record", "-N", "-F", "\(frequency)", "--call-graph", callGraph, "-p", "\(pid)", "-o", data, "--", "sleep", "\(seconds)"]
        let previous = signal(SIGINT, SIG_IGN)
        defer { signal(SIGINT, previous) }
        let child: ChildProcess
        do {
            child = try ChildProcess(executable: perf, arguments: arguments, stdout: .file(log), stderr: .file(log))
        } catch {
            throw CommandFailure(message: "\(error)", code: 69)
        }
        let started = Date()
        let status = child.wait() ?? .exited(-1)  // without a timeout it waits for the end
        let elapsed = min(seconds, Date().timeIntervalSince(started))
        let messages = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let recorded = ((try? FileManager.default.attributesOfItem(atPath: data))?[.size] as? Int ?? 0) > 0
        if status == .exited(0), recorded { return elapsed }
        if let failure = Self.failure(in: messages, pid: pid) { throw failure }
        // perf stopped by Ctrl-C exits non-zero but has written what it sampled.
        if recorded, case .signaled = status { return elapsed }
        if recorded, messages.contains("Captured and wrote") { return elapsed }
        throw CommandFailure(message: "perf record failed (\(status)): \(Self.firstReason(messages))", code: 70)
    }

    /// What perf's messages say went wrong, as one line, when it is something a user can fix.
    static func failure(in messages: String, pid: Int32) -> CommandFailure? {
        let lowered = messages.lowercased()
        if lowered.contains("perf_event_paranoid") || lowered.contains("permission") || lowered.contains("not permitted")
            || lowered.contains("access to performance monitoring")
        {
            return CommandFailure(
                message: "perf may not attach to process \(pid): permission refused (run as root or as its user with /proc/sys/kernel/perf_event_paranoid at 2 or less; now \(paranoia))",
                code: 77)
        }
        if lowered.contains("no such process") {
            return CommandFailure(message: "process \(pid) ended before perf could attach", code: 66)
        }
        return nil
    }

    /// The first line of perf's messages that says something (perf starts many with `Error:`).
    static func firstReason(_ messages: String) -> String {
        let lines = messages.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        return lines.first { !$0.isEmpty && $0 != "Error:" && !$0.hasPrefix("[ perf record") } ?? "no message"
    }

    /// Runs `perf script` on the recording and folds its output as it streams: a long profile's
    /// script text (several hundred MB with DWARF stacks) is never held whole.
    func fold() throws -> FoldedStacks {
        let log = folder + "/script.log"
        // comm,tid,ip,sym,dso: just what folding needs, so the header line is `thread tid`.
        // --no-inline: inline frames come from an addr2line child per binary, which took 20 s to
        // 80 s for a few hundred samples of a debug streamgate, against under a second without.
        let arguments = ["script", "--no-inline", "-i", data, "-F", "comm,tid,ip,sym,dso"]
        let child: ChildProcess
        do {
            child = try ChildProcess(executable: perf, arguments: arguments, stdout: .pipe, stderr: .file(log))
        } catch {
            throw CommandFailure(message: "\(error)", code: 69)
        }
        guard let pipe = child.stdoutPipe else { throw CommandFailure(message: "perf script: no output pipe", code: 70) }
        defer { close(pipe) }
        var splitter = LineSplitter()
        var parser = PerfScriptParser()
        var folder = StackFolder()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(pipe, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            splitter.feed(buffer[..<count]) { line in
                if let sample = parser.feed(line) { folder.add(sample) }
            }
        }
        splitter.finish { line in
            if let sample = parser.feed(line) { folder.add(sample) }
        }
        if let sample = parser.finish() { folder.add(sample) }
        let status = child.wait() ?? .exited(-1)  // without a timeout it waits for the end
        guard status == .exited(0) else {
            let messages = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw CommandFailure(message: "perf script failed (\(status)): \(Self.firstReason(messages))", code: 70)
        }
        return folder.folded
    }
}
