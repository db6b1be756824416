import Foundation
import Jobs
import Logging
import Store
import Processes
import Vault

/// One transcode running as `streamgate transcode --events` in a child process of its own, so a
/// crash, a hang or runaway memory on a hostile file costs that job only. What it says arrives as
/// ``TranscodeEvent`` lines on its standard output; how it ended, as its ``TranscodeExit`` status.
final class TranscodeChild: @unchecked Sendable {
    let process: ChildProcess
    private let logger: Logger
    private let lock = NSLock()
    private var latestProgress: TranscodeEvent.Progress?
    private var summary: TranscodeSummary?
    private var plan: SplitPlan?
    private var failure: (reason: String, status: TranscodeExit)?
    private var errorTail = ""
    private let onStored: @Sendable (String) -> Void
    private let onPlayable: @Sendable () -> Void
    private let onStage: @Sendable (TranscodeStage) -> Void
    /// Stage events heard: a child says a dozen; more is a child gone wrong, not heard further.
    private var stagesHeard = 0
    static let maximumStages = 64
    private let readers = DispatchGroup()
    /// Serves the source's bytes to the child, when they come from elsewhere (an object in a bucket).
    let sourceServer: SourceChannelServer?

    /// Starts the child sandboxed, with an empty environment and nothing open but its standard
    /// streams; `secrets` (the keyring's ``Keyring/handoff()``) goes to it on standard input.
    ///
    /// With a `source`, the child also gets a source channel as its descriptor 3 and
    /// `--source-channel 3` after `arguments`: it reads its input's bytes from `source` through
    /// this process (it has no network of its own), and the input argument is only `sourceName`,
    /// the name its messages use (the `s3://` URL). Serving ends when the child closes its end.
    /// `onStored` hears each file the child reports finished, and `onPlayable` when a growing
    /// version may be shown, in the order the child says them, on the thread reading its output;
    /// `onStage` each stage it measured (with `--stages`), for the job's trace.
    init(
        executable: String, arguments: [String], secrets: [UInt8], sandbox: ChildProcess.Sandbox, logger: Logger,
        source: (any RandomAccessSource)? = nil, sourceName: String = "source", onStored: @escaping @Sendable (String) -> Void = { _ in },
        onPlayable: @escaping @Sendable () -> Void = {}, onStage: @escaping @Sendable (TranscodeStage) -> Void = { _ in }
    ) throws {
        self.logger = logger
        self.onStored = onStored
        self.onPlayable = onPlayable
        self.onStage = onStage
        var channel: (worker: Int32, child: Int32)?
        if source != nil { channel = try SourceChannel.makePair() }
        do {
            process = try ChildProcess(
                executable: executable,
                arguments: arguments + (channel == nil ? [] : ["--source-channel", String(SourceChannel.childDescriptor)]),
                environment: [:], stdin: .pipe, stdout: .pipe, stderr: .pipe, processGroup: true, deathSignal: SIGTERM,
                sandbox: sandbox, extraDescriptors: channel.map { [$0.child] } ?? []
            )
        } catch {
            if let channel { close(channel.worker); close(channel.child) }
            throw error
        }
        // The child holds its end now: ours must go, or the child's exit would never read as EOF.
        if let channel { close(channel.child) }
        if let channel, let source {
            sourceServer = SourceChannelServer(descriptor: channel.worker, source: source, name: sourceName, logger: logger)
        } else {
            sourceServer = nil
        }
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

    /// The split the child planned (`--may-split`) instead of transcoding.
    var splitPlan: SplitPlan? {
        lock.lock(); defer { lock.unlock() }
        return plan
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

    /// Waits until both pipes are drained (after the child exited), and the source channel, if
    /// any, has seen the child's end close; one still served a second later (something the child
    /// started holds its end) is stopped.
    func drainOutput(timeout: Double = 5) {
        _ = readers.wait(timeout: .now() + timeout)
        guard let sourceServer else { return }
        let deadline = Date().addingTimeInterval(1)
        while sourceServer.ended == nil, Date() < deadline { usleep(1_000) }
        sourceServer.stop()
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
        switch event {
        case .stored(let file): return onStored(file)
        case .playable: return onPlayable()
        case .stage(let stage):
            let heard = lock.withLock { stagesHeard += 1; return stagesHeard }
            return heard <= Self.maximumStages ? onStage(stage) : ()
        default: break
        }
        lock.lock(); defer { lock.unlock() }
        switch event {
        case .progress(let progress): latestProgress = progress
        case .stored, .playable, .stage: break
        case .finished(let finished): summary = finished
        case .split(let split): plan = split
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
