import CFFmpeg
import Foundation
import Vault

/// A demuxer over one input: `avformat_open_input` + `avformat_find_stream_info`, closed in `deinit`.
///
/// A sealed source (an upload stored encrypted, see ``SealedSource``) is read through a decrypting
/// ``SealedSourceIO``; everything else is opened by path.
final class InputFile {
    let context: UnsafeMutablePointer<AVFormatContext>
    let path: String
    /// The decrypting I/O of a sealed source. Stored properties outlive `deinit`'s body, so it is
    /// freed only after the format context reading through it is closed.
    private let sealedIO: SealedSourceIO?

    /// Opens and probes `path`. Errors name the failing step and libavformat's reason, or for a
    /// sealed source the chunk that does not decrypt. `keyring` is needed only for sealed sources.
    init(path: String, keyring: Keyring? = nil) throws(MediaError) {
        self.path = path
        FFmpegLog.clear()
        var context: UnsafeMutablePointer<AVFormatContext>? = nil
        let opened: Int32
        var io: SealedSourceIO? = nil
        if SealedSource.isSealed(path: path) {
            let sealed = try InputFile.openSealed(path: path, keyring: keyring)
            io = sealed
            guard let allocated = avformat_alloc_context() else {
                throw MediaError(operation: "read", reason: "out of memory")
            }
            sealed.withContext { allocated.pointee.pb = $0 }
            allocated.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
            context = allocated
            // No file name: the format is probed from the decrypted bytes alone, as the sealed
            // file's name says nothing about what is inside. On failure libavformat frees the
            // format context but not a caller's pb, which `sealed` still owns.
            opened = avformat_open_input(&context, nil, nil, nil)
        } else {
            opened = avformat_open_input(&context, path, nil, nil)
        }
        sealedIO = io
        guard opened >= 0, let context else {
            if let failure = io?.failure { throw InputFile.decryptionError(failure) }
            throw MediaError(operation: "read", reason: InputFile.unreadableReason(code: opened))
        }
        self.context = context
        let probed = avformat_find_stream_info(context, nil)
        if let failure = io?.failure {
            throw InputFile.decryptionError(failure)
        }
        if probed < 0 {
            throw MediaError(operation: "probe streams", reason: MediaError.string(for: probed))
        }
    }

    deinit {
        var context: UnsafeMutablePointer<AVFormatContext>? = context
        avformat_close_input(&context)
    }

    /// Opens the sealed source's reader (header, key unwrap, final chunk) and its AVIO.
    private static func openSealed(path: String, keyring: Keyring?) throws(MediaError) -> SealedSourceIO {
        guard let keyring else {
            throw MediaError(operation: "read", reason: "is a sealed source, and no keyring was given to decrypt it")
        }
        let reader: SealedSourceReader
        do {
            reader = try SealedSourceReader(path: path, keyring: keyring)
        } catch let error as VaultError {
            throw MediaError(operation: "open sealed source", reason: error.reason)
        } catch {
            throw MediaError(operation: "open sealed source", reason: "\(error)")
        }
        guard reader.size > 0 else {
            throw MediaError(operation: "read", reason: "file is empty (0 bytes once decrypted)")
        }
        return try SealedSourceIO(reader: reader)
    }

    /// The reader's own reason ("chunk 2 does not authenticate: …"), not libavformat's, which only
    /// saw an I/O error or an early end of file.
    private static func decryptionError(_ failure: VaultError) -> MediaError {
        MediaError(operation: "decrypt sealed source", reason: failure.reason)
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
        // A demuxer may report a chunk that failed to decrypt as an I/O error, or as a clean end
        // of file: either way the source is not what was uploaded, and the reader says why.
        if let failure = sealedIO?.failure {
            throw InputFile.decryptionError(failure)
        }
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
