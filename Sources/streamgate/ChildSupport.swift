import Foundation
import Media
import Store

/// SIGTERM and SIGINT ask a running transcode to stop: it abandons the work at the next packet and
/// removes its staging folder, so a cancelled or drained job leaves nothing behind.
final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var requested = false
    private var signals: SignalCounter?
    private var timer: DispatchSourceTimer?

    var isRequested: Bool {
        lock.lock(); defer { lock.unlock() }
        return requested
    }

    private func request() {
        lock.lock()
        requested = true
        lock.unlock()
    }

    /// - Parameter watchParent: also stop when the parent process dies (a worker killed with
    ///   SIGKILL cannot stop its children; they must not run on, unowned, and publish anyway).
    static func install(watchParent: Bool = false) -> StopSignal {
        let stop = StopSignal()
        stop.signals = SignalCounter { _ in stop.request() }
        if watchParent {
            // A dead parent closes the pipe our events go to: the next write must fail (and be
            // ignored), not raise SIGPIPE and kill us before the staging folder is removed.
            signal(SIGPIPE, SIG_IGN)
            let parent = getppid()
            let timer = DispatchSource.makeTimerSource(queue: .global())
            timer.schedule(deadline: .now() + 0.2, repeating: 0.2)
            timer.setEventHandler { if getppid() != parent { stop.request() } }
            timer.resume()
            stop.timer = timer
        }
        return stop
    }
}

/// `transcode --events`: one JSON object per line on standard output, for the worker that runs the
/// transcode as a child process: `{"type":"progress",…}` at most twice a second, then
/// `{"type":"done","summary":{…}}`. Failures are the usual one line on standard error and exit code.
enum EventWriter {
    static func progress(_ progress: TranscodeProgress) {
        var object: [String: Any] = [
            "type": "progress", "frames": progress.frames, "fps": progress.framesPerSecond, "speed": progress.speed,
            "processed_s": progress.processedSeconds,
        ]
        if let fraction = progress.fraction { object["percent"] = fraction * 100 }
        if let eta = progress.etaSeconds { object["eta_s"] = eta }
        write(object)
    }

    static func done(_ summary: TranscodeSummary) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(summary), let object = try? JSONSerialization.jsonObject(with: data) else { return }
        write(["type": "done", "summary": object])
    }

    private static func write(_ object: [String: Any]) {
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(UInt8(ascii: "\n"))
        // Plain write(2): a reader that has gone away (EPIPE) is noticed by the parent watch, and
        // must not trap here.
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(STDOUT_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 { offset += written } else if written < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}

struct ResourceLimitError: Error, CustomStringConvertible {
    let description: String
}

enum ResourceLimits {
    /// Caps this process's address space, so a hostile file that makes a decoder allocate without
    /// bound fails this one transcode instead of exhausting the machine.
    static func capAddressSpace(mebibytes: Int) throws {
        guard mebibytes > 0 else { throw ResourceLimitError(description: "--memory-limit-mib must be positive") }
        let bytes = rlim_t(mebibytes) * 1024 * 1024
        var limit = rlimit(rlim_cur: bytes, rlim_max: bytes)
        guard setrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0 else {
            throw ResourceLimitError(description: "cannot set a memory limit of \(mebibytes) MiB: \(String(cString: strerror(errno)))")
        }
    }

    /// The most address space this process has had (`VmPeak`), bytes; nil when /proc cannot say.
    static func peakAddressSpace() -> Int? {
        guard let status = FileHandle(forReadingAtPath: "/proc/self/status")?.readDataToEndOfFile() else { return nil }
        for line in String(decoding: status, as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmPeak:") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })  // "VmPeak:", "123456", "kB"
            if fields.count >= 2, let kibibytes = Int(fields[1]) { return kibibytes * 1024 }
        }
        return nil
    }

    /// Whether a failed allocation can have been the address-space cap's doing: whether this
    /// process ever came within 2 GiB of `mebibytes`. libav* allocates at most that much at once
    /// (`av_max_alloc`'s default), so further from the cap its "Cannot allocate memory" is a
    /// request it refused whatever the cap (a table of 2^31 entries, a resampler for 2^31 Hz, both
    /// declared by the file): another attempt would fail the same way.
    static func cameNearAddressSpaceCap(mebibytes: Int) -> Bool {
        guard let peak = peakAddressSpace() else { return true }
        return peak + Int(Int32.max) >= mebibytes * 1024 * 1024
    }
}
