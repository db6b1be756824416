import Foundation
import Jobs

/// One transcode running as `streamgate transcode --events` in a child process of its own, so a
/// crash, a hang or runaway memory on a hostile file costs that job only.
final class TranscodeChild: @unchecked Sendable {
    /// What the child last said about its progress.
    struct Progress: Equatable {
        var percent: Double?
        var fps: Double?
        var speed: Double?
        var etaSeconds: Double?
    }

    let process: ChildProcess
    private let lock = NSLock()
    private var latest: Progress?
    private var summaryObject: [String: Any]?
    private var errorTail = ""
    private let readers = DispatchGroup()

    /// Starts the child sandboxed, with an empty environment and nothing open but its standard
    /// streams; `secrets` (the keyring's ``Keyring/handoff()``) goes to it on standard input.
    init(executable: String, arguments: [String], secrets: [UInt8], sandbox: ChildProcess.Sandbox) throws {
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

    var progress: Progress? {
        lock.lock(); defer { lock.unlock() }
        return latest
    }

    /// The published version from the final `done` line, when there was one.
    var publishedVersion: String? {
        lock.lock(); defer { lock.unlock() }
        return summaryObject?["version"] as? String
    }

    var finishedCleanly: Bool {
        lock.lock(); defer { lock.unlock() }
        return summaryObject != nil
    }

    /// The child's own one-line error (`streamgate: …`), without the prefix; empty when it ended
    /// without one (a crash prints a backtrace instead).
    var lastError: String {
        lock.lock(); defer { lock.unlock() }
        guard let line = errorTail.split(separator: "\n").last(where: { $0.hasPrefix("streamgate: ") }) else { return "" }
        return String(line.dropFirst("streamgate: ".count))
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
        guard let data = line.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return }
        lock.lock(); defer { lock.unlock() }
        switch object["type"] as? String {
        case "progress":
            latest = Progress(
                percent: object["percent"] as? Double, fps: object["fps"] as? Double,
                speed: object["speed"] as? Double, etaSeconds: object["eta_s"] as? Double
            )
        case "done":
            summaryObject = object["summary"] as? [String: Any]
        default:
            break
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
