import CFFmpeg
import Foundation
import Synchronization

/// Routes libav*'s log into StreamGate.
///
/// libav* logs its most useful diagnostics ("moov atom not found") instead of returning them, so the
/// bridge keeps the last few error-level lines of each thread; ``MediaError`` attaches the last to
/// the failing call's error. Nothing reaches the terminal unless `STREAMGATE_FFMPEG_LOG` asks for it
/// (`error`, `warning`, `info`, `verbose` or `debug`), because a transcode command prints one clear
/// line on failure, not FFmpeg's chatter.
public enum FFmpegLog {
    private static let lastErrors = Mutex<[UInt: [String]]>([:])
    private static let kept = 8
    private static let installed = Mutex(false)
    nonisolated(unsafe) private static var echoLevel: Int32 = -8  // AV_LOG_QUIET

    /// Installs the bridge once per process; safe to call from any thread, any number of times.
    public static func install() {
        installed.withLock { done in
            guard !done else { return }
            done = true
            if let wanted = ProcessInfo.processInfo.environment["STREAMGATE_FFMPEG_LOG"] {
                echoLevel = level(named: wanted)
            }
            av_log_set_level(max(AV_LOG_ERROR, echoLevel))
            CFFmpeg_set_log_sink(sink)
        }
    }

    /// Returns and forgets the last error line libav* logged on this thread.
    static func takeLastError() -> String? {
        takeErrors().last
    }

    /// Returns and forgets the last error lines libav* logged on this thread, oldest first (a
    /// demuxer's "error reading header" often follows the line that says why).
    static func takeErrors() -> [String] {
        let thread = UInt(pthread_self())
        return lastErrors.withLock { $0.removeValue(forKey: thread) } ?? []
    }

    /// Forgets this thread's last error line, before a call whose failure should not inherit it.
    static func clear() { _ = takeLastError() }

    private static func level(named name: String) -> Int32 {
        switch name.lowercased() {
        case "error": AV_LOG_ERROR
        case "warning": AV_LOG_WARNING
        case "info": AV_LOG_INFO
        case "verbose": AV_LOG_VERBOSE
        case "debug": AV_LOG_DEBUG
        default: AV_LOG_WARNING
        }
    }

    private static let sink: @convention(c) (Int32, UnsafePointer<CChar>?) -> Void = { level, line in
        guard let line else { return }
        let text = String(cString: line)
        if level <= FFmpegLog.echoLevel {
            FileHandle.standardError.write(Data(("[ffmpeg] " + text).utf8))
        }
        if level <= AV_LOG_ERROR {
            let trimmed = FFmpegLog.withoutContextPrefix(text.trimmingCharacters(in: .whitespacesAndNewlines))
            guard !trimmed.isEmpty else { return }
            let thread = UInt(pthread_self())
            FFmpegLog.lastErrors.withLock { $0[thread, default: []] = Array(($0[thread, default: []] + [trimmed]).suffix(kept)) }
        }
    }

    /// Drops the "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d…] " prefix libav* puts before a context's lines.
    private static func withoutContextPrefix(_ line: String) -> String {
        guard line.hasPrefix("["), let end = line.range(of: "] ") else { return line }
        return String(line[end.upperBound...])
    }
}
