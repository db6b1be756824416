import CFFmpeg

/// What an input may be and how much work it may cause. A media file is data, never a program:
/// only real container formats are read (no playlists, manifests, lists of files or image
/// sequences, which name other files or URLs), nothing inside an input is ever opened, and the
/// pictures, length, streams and output a file declares are capped, so a hostile file fails fast
/// with a reason instead of exhausting the machine.
public struct InputLimits: Sendable, Equatable {
    /// Pixels of one picture (width × height), checked on the stream and enforced by the decoder.
    public var maxPixels: Int
    /// Seconds of media, declared or decoded.
    public var maxDurationSeconds: Double
    /// Streams in the container.
    public var maxStreams: Int
    /// Bytes the transcode may write (segments, at rest).
    public var maxOutputBytes: Int

    /// 8K pictures, 12 hours, 64 streams, 64 GiB out.
    public init(maxPixels: Int = 8192 * 4320, maxDurationSeconds: Double = 12 * 3600, maxStreams: Int = 64, maxOutputBytes: Int = 64 << 30) {
        self.maxPixels = maxPixels
        self.maxDurationSeconds = maxDurationSeconds
        self.maxStreams = maxStreams
        self.maxOutputBytes = maxOutputBytes
    }

    /// The demuxers an input may be read with (libavformat's names; one of a demuxer's names is
    /// enough). Everything a camera, phone, editor or encoder writes; no hls, dash, concat, image2,
    /// sdp, rtp, rtsp, data, tee, lavfi or anything else that opens what it names.
    public static let formats: [String] = [
        "mov", "mp4", "matroska", "webm", "mpegts", "avi", "flv", "mpeg", "mxf", "asf", "nut", "dv", "ivf",
        "h264", "hevc", "m4v", "mpegvideo", "yuv4mpegpipe",
        "mp3", "aac", "wav", "w64", "aiff", "caf", "flac", "ogg", "ac3", "eac3", "dts", "truehd", "amr",
    ]

    /// Whether a demuxer (its comma-separated names) may read an input.
    static func accepts(demuxer names: String) -> Bool {
        names.split(separator: ",").contains { formats.contains(String($0)) }
    }
}
