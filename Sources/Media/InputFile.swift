import CFFmpeg
import Foundation

/// A demuxer over one input: `avformat_open_input` + `avformat_find_stream_info`, closed in `deinit`.
final class InputFile {
    let context: UnsafeMutablePointer<AVFormatContext>
    let path: String

    /// Opens and probes `path`. Errors name the failing step and libavformat's reason.
    init(path: String) throws(MediaError) {
        self.path = path
        FFmpegLog.clear()
        var context: UnsafeMutablePointer<AVFormatContext>? = nil
        let opened = avformat_open_input(&context, path, nil, nil)
        guard opened >= 0, let context else {
            throw MediaError(operation: "read", reason: InputFile.unreadableReason(code: opened))
        }
        self.context = context
        let probed = avformat_find_stream_info(context, nil)
        if probed < 0 {
            throw MediaError(operation: "probe streams", reason: MediaError.string(for: probed))
        }
    }

    deinit {
        var context: UnsafeMutablePointer<AVFormatContext>? = context
        avformat_close_input(&context)
    }

    /// A user-facing reason for `avformat_open_input` failing: libavformat's logged detail is often
    /// clearer than the error code ("moov atom not found" for a truncated MP4).
    private static func unreadableReason(code: Int32) -> String {
        let detail = FFmpegLog.takeLastError()
        if code == AVErr.invalidData {
            let base = "not a media file FFmpeg can read"
            return detail.map { "\(base) (\($0))" } ?? base
        }
        let base = MediaError.string(for: code)
        return detail.map { "\(base) (\($0))" } ?? base
    }

    var streamCount: Int { Int(context.pointee.nb_streams) }

    func stream(_ index: Int32) -> UnsafeMutablePointer<AVStream> {
        context.pointee.streams[Int(index)]!
    }

    /// The container's duration in seconds, when it knows one.
    var duration: Double? {
        let value = context.pointee.duration
        guard value != noPTS, value > 0 else { return nil }
        return Double(value) / Double(AV_TIME_BASE)
    }

    /// The container's start time in seconds (0 when unknown).
    var startTime: Double {
        let value = context.pointee.start_time
        guard value != noPTS else { return 0 }
        return Double(value) / Double(AV_TIME_BASE)
    }

    /// The stream libavformat ranks best for a media type, with a decoder this build has.
    func bestStream(_ type: AVMediaType) -> Int32? {
        let index = av_find_best_stream(context, type, -1, -1, nil, 0)
        guard index >= 0 else { return nil }
        let parameters = stream(index).pointee.codecpar!
        // Cover art is a video stream of one picture; it is not the programme's video.
        if type == AVMEDIA_TYPE_VIDEO, stream(index).pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0 {
            return nil
        }
        guard avcodec_find_decoder(parameters.pointee.codec_id) != nil else { return nil }
        return index
    }

    /// Reads the next packet. Returns false at end of input.
    func read(into packet: Packet) throws(MediaError) -> Bool {
        let result = av_read_frame(context, packet.pointer)
        if result == AVErr.eof { return false }
        try result.check("read \(path)")
        return true
    }

    /// Names the streams there are, for "nothing decodable" errors: "subtitle (subrip), data".
    var streamSummary: String {
        (0..<Int32(streamCount)).map { index -> String in
            let parameters = stream(index).pointee.codecpar!.pointee
            let type = av_get_media_type_string(parameters.codec_type).map { String(cString: $0) } ?? "unknown"
            let codec = String(cString: avcodec_get_name(parameters.codec_id))
            return "\(type) (\(codec))"
        }.joined(separator: ", ")
    }
}
