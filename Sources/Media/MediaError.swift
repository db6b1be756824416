import CFFmpeg

/// An error from the FFmpeg libraries or from the transcode pipeline around them.
///
/// Built at the failing call: it carries the operation that failed, FFmpeg's own message
/// (`av_strerror`) and, when libav* logged something more specific just before failing (such as
/// "moov atom not found"), that line too.
public struct MediaError: Error, CustomStringConvertible, Sendable {
    /// What the pipeline was doing, e.g. "open input" or "encode video (720p)".
    public let operation: String
    /// The AVERROR code, when the failure came from an FFmpeg call.
    public let code: Int32?
    /// The human reason.
    public let reason: String
    /// The input's bytes could not be read, for the source's sake rather than theirs (a
    /// `SourceUnavailableError`: the object store, the worker serving them).
    public let isSourceUnavailable: Bool

    public init(operation: String, reason: String, code: Int32? = nil, isSourceUnavailable: Bool = false) {
        self.operation = operation
        self.reason = reason
        self.code = code
        self.isSourceUnavailable = isSourceUnavailable
    }

    /// An error for a failed FFmpeg call, with `av_strerror`'s text and the last error libav* logged.
    public init(_ operation: String, code: Int32) {
        var reason = MediaError.string(for: code)
        if let detail = FFmpegLog.takeLastError(), !detail.isEmpty, !reason.localizedStandardContains(detail) {
            reason += " (\(detail))"
        }
        self.init(operation: operation, reason: reason, code: code)
    }

    public var description: String { "\(operation): \(reason)" }

    /// `av_strerror`'s text for an AVERROR code.
    public static func string(for code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(AV_ERROR_MAX_STRING_SIZE))
        if av_strerror(code, &buffer, buffer.count) < 0 {
            return "error \(code)"
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Int32 {
    /// Throws a ``MediaError`` for a negative FFmpeg return value; returns non-negative ones.
    @discardableResult
    func check(_ operation: @autoclosure () -> String) throws(MediaError) -> Int32 {
        if self < 0 { throw MediaError(operation(), code: self) }
        return self
    }
}

/// AVERROR values Swift cannot import as macros.
enum AVErr {
    static let again = CFFmpeg_AVERROR_EAGAIN()
    static let eof = CFFmpeg_AVERROR_EOF()
    static let noMemory = CFFmpeg_AVERROR_ENOMEM()
    static let invalidData = CFFmpeg_AVERROR_INVALIDDATA()
    static let exit = CFFmpeg_AVERROR_EXIT()
    static let io = CFFmpeg_AVERROR_EIO()
}

let noPTS: Int64 = CFFmpeg_AV_NOPTS_VALUE()

import Foundation
