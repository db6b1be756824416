import Foundation
import Jobs
import Logging
import Store
import Processes

/// One transcode running as `streamgate transcode --events` in a child process of its own, so a
/// crash, a hang or runaway memory on a hostile file costs that job only. What it says arrives as
/// ``TranscodeEvent`` lines on its standard output; how it ended, as its ``TranscodeExit`` status.
final class TranscodeChild: @unchecked Sendable {
    let process: ChildProcess
    private let logger: Logger
    private let lock = NSLock()
    private var latestProgress: TranscodeEvent.Progress?
    private var summary: TranscodeSummary?
    private var failure: (reason: String, status: TranscodeExit)?
    private var errorTail = ""
    private let onStored: @Sendable (String) -> Void
    private let readers = DispatchGroup()

    /// Starts the child sandboxed, with an empty environment and nothing open but its standard
    /// streams; `secrets` (the keyring's ``Keyring/handoff()``) goes to it on standard input.
    /// `onStored` hears each file the child reports finished, on the thread reading its output.
    init(
        executable: String, arguments: [String], secrets: [UInt8], sandbox: ChildProcess.Sandbox, logger: Logger,
        onStored: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.logger = logger
        self.onStored = onStored
        process = try ChildProcess(
            executable: executable, arguments: arguments, environment: [:],
            stdin: .pipe, stdout: .pipe, stderr: .pipe, processGroup: true, deathSignal: SIGTERM, sandbox: sandbox
        )
        let input = process.stdinPipe!
        secrets.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(input, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 { offset += written } else if written < 0, errno == EINTR { continue } else { break }
            }
        }
        close(input)
        read(process.stdoutPipe!) { [weak self] line in self?.handle(line: line) }
        read(process.stderrPipe!) { [weak self] line in self?.handle(errorLine: line) }
    }

    /// What the child last said about its progress.
    var progress: TranscodeEvent.Progress? {
        lock.lock(); defer { lock.unlock() }
        return latestProgress
    }

    /// What the child wrote, from its `done` event: every file is in the staging folder.
    var finished: TranscodeSummary? {
        lock.lock(); defer { lock.unlock() }
        return summary
    }

    /// Why the child failed and the status it said it would exit with, from its `failed` event;
    /// nil when it wrote none (a crash, a kill, arguments it refused).
    var failed: (reason: String, status: TranscodeExit)? {
        lock.lock(); defer { lock.unlock() }
        return failure
    }

    /// The end of what the child wrote on standard error, for the worker's log.
    var errorOutput: String {
        lock.lock(); defer { lock.unlock() }
        return errorTail
    }

    /// Waits until both pipes are drained (after the child exited).
    func drainOutput(timeout: Double = 5) {
        _ = readers.wait(timeout: .now() + timeout)
    }

    private func handle(line: String) {
        guard !line.isEmpty else { return }
        let event: TranscodeEvent
        do {
            event = try TranscodeEvent(line: line)
        } catch {
            logger.error("the transcode child wrote a line that is not an event", metadata: [
                "line": "\(error.line)", "why": "\(error.reason)", "pid": "\(process.pid)",
            ])
            return
        }
        if case .stored(let file) = event {
            onStored(file)
            return
        }
        lock.lock(); defer { lock.unlock() }
        switch event {
        case .progress(let progress): latestProgress = progress
        case .stored: break
        case .finished(let finished): summary = finished
        case .failed(let reason, let status): failure = (reason, status)
        }
    }

    private func handle(errorLine line: String) {
        lock.lock(); defer { lock.unlock() }
        errorTail = String((errorTail + line + "\n").suffix(4096))
    }

    /// Reads a pipe line by line on a thread of its own until EOF, then closes it.
    private func read(_ descriptor: Int32, _ onLine: @escaping @Sendable (String) -> Void) {
        readers.enter()
        let group = readers
        let thread = Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
                pending.append(contentsOf: buffer[0..<count])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    onLine(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
                if pending.count > 1 << 20 { pending.removeAll() }
            }
            if !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }
            close(descriptor)
            group.leave()
        }
        thread.start()
    }
}
