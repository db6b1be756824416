import CFFmpeg
import Foundation
import Vault

/// A demuxer over one input: `avformat_open_input` + `avformat_find_stream_info`, closed in `deinit`.
///
/// Every input is read through a ``SourceIO`` of this process's own, over a file opened once
/// refusing symbolic links or over bytes given (a source channel from the worker); a sealed source
/// (an upload stored encrypted, see ``SealedSource``) is decrypted chunk by chunk on the way.
/// libavformat opens nothing by name: the format is probed
/// from the bytes and must be one of ``InputLimits/formats``, and any file or URL an input names
/// (a playlist's, a manifest's, a concat list's) is refused.
final class InputFile {
    let context: UnsafeMutablePointer<AVFormatContext>
    /// The input as messages name it: its path, or the name its bytes were given with.
    let name: String
    /// The input's reader. Stored properties outlive `deinit`'s body, so it is freed only after
    /// the format context reading through it is closed.
    private let io: SourceIO
    /// The streams cap, which libavformat enforces whenever a demuxer adds a stream.
    private let maxStreams: Int
    /// Whether the bytes are a sealed source (decrypted on the way to the demuxer).
    private let sealed: Bool

    /// Opens and probes the file at `path`, opened once refusing symbolic links. Errors name the
    /// failing step and libavformat's reason, or for a sealed source the chunk that does not
    /// decrypt. `keyring` is needed only for sealed sources.
    convenience init(path: String, keyring: Keyring? = nil, limits: InputLimits = InputLimits()) throws(MediaError) {
        try self.init(bytes: try PlainSourceFile.open(path: path), name: path, keyring: keyring, limits: limits)
    }

    /// Opens a transcode's input, a file or given bytes.
    convenience init(_ source: TranscodeInput, keyring: Keyring? = nil, limits: InputLimits = InputLimits()) throws(MediaError) {
        switch source {
        case .path(let path): try self.init(path: path, keyring: keyring, limits: limits)
        case .bytes(let bytes, let name): try self.init(bytes: bytes, name: name, keyring: keyring, limits: limits)
        }
    }

    /// Opens and probes the input read from `bytes` (a file, a source channel), called `name` in
    /// errors. Whether it is sealed is decided from the bytes, as for a path
    /// (`SealedSource.isSealed`); `keyring` is needed only then.
    init(bytes: any RandomAccessBytes, name: String, keyring: Keyring? = nil, limits: InputLimits = InputLimits()) throws(MediaError) {
        self.name = name
        maxStreams = limits.maxStreams
        FFmpegLog.clear()
        let sealed: Bool
        do {
            sealed = try SealedSource.isSealed(bytes)
        } catch {
            throw InputFile.readError(error, sealed: false)
        }
        self.sealed = sealed
        let reader: any RandomAccessBytes = sealed ? try InputFile.openSealed(bytes, name: name, keyring: keyring) : bytes
        guard reader.size > 0 else {
            throw MediaError(operation: "read", reason: sealed ? "file is empty (0 bytes once decrypted)" : "file is empty (0 bytes)")
        }
        let io = try SourceIO(reader: reader)
        self.io = io
        let format = try InputFile.probe(io, sealed: sealed)
        guard let allocated = avformat_alloc_context() else {
            throw MediaError(operation: "read", reason: "out of memory", code: AVErr.noMemory)
        }
        io.withContext { allocated.pointee.pb = $0 }
        allocated.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        CFFmpeg_refuse_nested_opens(allocated)
        var context: UnsafeMutablePointer<AVFormatContext>? = allocated
        // The same rules again as libavformat options, should any code path open past the probe.
        var options: OpaquePointer?
        av_dict_set(&options, "format_whitelist", InputLimits.formats.joined(separator: ","), 0)
        av_dict_set(&options, "protocol_whitelist", "none", 0)
        av_dict_set(&options, "max_streams", String(limits.maxStreams), 0)
        // No file name: the format comes from the bytes alone. On failure libavformat frees the
        // format context but not a caller's pb, which `io` still owns.
        let opened = avformat_open_input(&context, nil, format, &options)
        av_dict_free(&options)
        guard opened >= 0, let context else {
            if let failure = io.failure { throw InputFile.readError(failure, sealed: sealed) }
            let errors = FFmpegLog.takeErrors()
            if let capped = InputFile.streamsCapped(limits.maxStreams, errors) { throw capped }
            throw MediaError(operation: "read", reason: InputFile.unreadableReason(code: opened, detail: errors.last), code: opened)
        }
        self.context = context
        let probed = avformat_find_stream_info(context, nil)
        if let failure = io.failure {
            throw InputFile.readError(failure, sealed: sealed)
        }
        if probed < 0 {
            let errors = FFmpegLog.takeErrors()
            if let capped = InputFile.streamsCapped(limits.maxStreams, errors) { throw capped }
            throw MediaError(operation: "probe streams", reason: InputFile.unreadableReason(
                "its streams cannot be read", code: probed, detail: errors.last, early: "it ends before they begin"
            ), code: probed)
        }
        try check(limits)
    }

    deinit {
        var context: UnsafeMutablePointer<AVFormatContext>? = context
        avformat_close_input(&context)
    }

    /// The demuxer the bytes call for, when it is one of ``InputLimits/formats``.
    private static func probe(_ io: SourceIO, sealed: Bool) throws(MediaError) -> UnsafePointer<AVInputFormat> {
        var format: UnsafePointer<AVInputFormat>?
        let score = io.withContext { av_probe_input_buffer2($0, &format, nil, nil, 0, 0) }
        if let failure = io.failure { throw readError(failure, sealed: sealed) }
        guard score >= 0, let format else {
            throw MediaError(operation: "read", reason: unreadableReason(code: score < 0 ? score : AVErr.invalidData), code: score < 0 ? score : nil)
        }
        let name = String(cString: format.pointee.name)
        guard InputLimits.accepts(demuxer: name) else {
            let long = format.pointee.long_name.map { String(cString: $0) } ?? name
            throw MediaError(
                operation: "read",
                reason: "is \(long) ('\(name)'), which is not accepted: only media files are (MP4, MOV, Matroska, WebM, MPEG-TS, "
                    + "AVI, FLV, MXF, audio files…); playlists, manifests, lists of files and image sequences never are"
            )
        }
        return format
    }

    /// libavformat refuses a stream past `max_streams` (failing with ENOMEM, and saying why in its
    /// log) wherever a demuxer meets one: while opening, while probing, or, for MPEG-TS, whose
    /// streams appear with their packets, while reading. That is the streams cap, not memory.
    private static func streamsCapped(_ limit: Int, _ errors: [String]) -> MediaError? {
        guard errors.contains(where: { $0.contains("max_streams") }) else { return nil }
        return MediaError(operation: "probe streams", reason: "has more than \(limit) streams; at most \(limit) are accepted")
    }

    /// The caps that can be checked once the streams are known.
    private func check(_ limits: InputLimits) throws(MediaError) {
        if streamCount > limits.maxStreams {
            throw MediaError(operation: "probe streams", reason: "has \(streamCount) streams; at most \(limits.maxStreams) are accepted")
        }
        if let duration, duration > limits.maxDurationSeconds {
            throw MediaError(
                operation: "probe streams",
                reason: "declares \(Int(duration)) s of media; at most \(Int(limits.maxDurationSeconds)) s are accepted"
            )
        }
    }

    /// Opens the sealed source's reader (header, key unwrap, final chunk).
    private static func openSealed(_ bytes: any RandomAccessBytes, name: String, keyring: Keyring?) throws(MediaError) -> SealedSourceReader {
        guard let keyring else {
            throw MediaError(operation: "read", reason: "is a sealed source, and no keyring was given to decrypt it")
        }
        do {
            return try SealedSourceReader(bytes: bytes, name: name, keyring: keyring)
        } catch let error as VaultError {
            throw MediaError(operation: "open sealed source", reason: error.reason)
        } catch {
            throw readError(error, sealed: true)
        }
    }

    /// The reader's own reason ("chunk 2 does not authenticate: …", what a source channel's
    /// worker said), not libavformat's, which only saw an I/O error or an early end of file. A
    /// source that could not be read (`SourceUnavailableError`) is marked so: the transcode's
    /// failure is then ``TranscodeError/Kind/sourceUnavailable``, not bad input.
    private static func readError(_ failure: any Error, sealed: Bool) -> MediaError {
        switch failure {
        case let error as SourceUnavailableError: MediaError(operation: "read", reason: error.reason, isSourceUnavailable: true)
        case let error as VaultError: MediaError(operation: sealed ? "decrypt sealed source" : "read", reason: error.reason)
        case let error as MediaError: error
        default: MediaError(operation: "read", reason: "\(failure)")
        }
    }

    /// A user-facing reason for libavformat failing to open or probe an input read through this
    /// process's own AVIO: whatever its error code (invalid data, an early end, a feature it lacks,
    /// a nested open refused), the bytes are not media it can read, and the line it logged says
    /// best why ("moov atom not found"). Only "Cannot allocate memory" stays as it is: a memory
    /// failure is not a verdict on the bytes (the error's code tells the transcode command which).
    private static func unreadableReason(
        _ base: String = "not a media file FFmpeg can read", code: Int32, detail: String? = FFmpegLog.takeLastError(),
        early: String = "it ends inside its header"
    ) -> String {
        if code == AVErr.noMemory {
            return MediaError.string(for: code) + (detail.map { " (\($0))" } ?? "")
        }
        if code == AVErr.invalidData {
            return detail.map { "\(base) (\($0))" } ?? base
        }
        let why = code == AVErr.eof ? early : MediaError.string(for: code)
        return "\(base) (\(why)\(detail.map { ": \($0)" } ?? ""))"
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

    /// Reads the next packet. Returns false at end of input. Its errors' reasons stand alone
    /// after the file's name: "has more than 64 streams…", "cannot be read to its end (…)".
    func read(into packet: Packet) throws(MediaError) -> Bool {
        FFmpegLog.clear()
        let result = av_read_frame(context, packet.pointer)
        // A demuxer may report a chunk that failed to decrypt as an I/O error, or as a clean end
        // of file: either way the source is not what was uploaded, and the reader says why.
        if let failure = io.failure {
            throw InputFile.readError(failure, sealed: sealed)
        }
        if result == AVErr.eof { return false }
        if result < 0 {
            let errors = FFmpegLog.takeErrors()
            if let capped = InputFile.streamsCapped(maxStreams, errors) { throw capped }
            let detail = errors.last.map { ": \($0)" } ?? ""
            throw MediaError(operation: "read", reason: "cannot be read to its end (\(MediaError.string(for: result))\(detail))", code: result)
        }
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
