import Foundation
import Jobs
import Media

/// SIGTERM and SIGINT ask a running transcode to stop: it abandons the work at the next packet and
/// ends as cancelled, its staging folder removed by whoever owns it (the transcode run by hand, the
/// worker for its child), so a cancelled or drained job leaves nothing behind.
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
            // ignored), not raise SIGPIPE: the transcode stops at the next packet and exits cancelled.
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

/// `transcode --events`: one ``TranscodeEvent`` a line on standard output, for the worker that runs
/// the transcode as a child process: progress at most twice a second, then `published` or `failed`.
enum EventWriter {
    static func progress(_ progress: TranscodeProgress) {
        write(.progress(TranscodeEvent.Progress(
            frames: progress.frames, fps: progress.framesPerSecond, speed: progress.speed,
            processedSeconds: progress.processedSeconds, percent: progress.fraction.map { $0 * 100 },
            etaSeconds: progress.etaSeconds
        )))
    }

    static func write(_ event: TranscodeEvent) {
        let data: Data
        do {
            data = try event.line()
        } catch {
            FileHandle.standardError.write(Data("streamgate: cannot encode a transcode event: \(error)\n".utf8))
            return
        }
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

enum ResourceLimitError: Error, CustomStringConvertible {
    /// `--memory-limit-mib` was zero or negative: the command line's fault.
    case notPositive
    /// setrlimit(2) refused: the system's.
    case refused(mebibytes: Int, errno: Int32)

    var description: String {
        switch self {
        case .notPositive: "--memory-limit-mib must be positive"
        case .refused(let mebibytes, let code): "cannot set a memory limit of \(mebibytes) MiB: \(String(cString: strerror(code)))"
        }
    }
}

enum ResourceLimits {
    /// Caps this process's address space, so a hostile file that makes a decoder allocate without
    /// bound fails this one transcode instead of exhausting the machine.
    static func capAddressSpace(mebibytes: Int) throws {
        guard mebibytes > 0 else { throw ResourceLimitError.notPositive }
        let bytes = rlim_t(mebibytes) * 1024 * 1024
        var limit = rlimit(rlim_cur: bytes, rlim_max: bytes)
        guard setrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0 else {
            throw ResourceLimitError.refused(mebibytes: mebibytes, errno: errno)
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
