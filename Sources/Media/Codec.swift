import CFFmpeg

/// What a send/receive call of libavcodec's state machine produced. EAGAIN and EOF are results here,
/// not errors: they are how the decode and encode loops know to feed input or stop.
enum CodecResult {
    case produced
    case needsInput
    case endOfStream
}

/// An owned `AVCodecContext` with the send/receive calls both decoders and encoders use.
class CodecContext {
    let pointer: UnsafeMutablePointer<AVCodecContext>
    /// Names the codec in errors: "decode video", "encode 720p".
    let role: String

    init(codec: UnsafePointer<AVCodec>, role: String) throws(MediaError) {
        guard let context = avcodec_alloc_context3(codec) else {
            throw MediaError(operation: role, reason: "cannot allocate a codec context", code: AVErr.noMemory)
        }
        self.pointer = context
        self.role = role
    }

    deinit {
        var context: UnsafeMutablePointer<AVCodecContext>? = pointer
        avcodec_free_context(&context)
    }

    var timeBase: AVRational { pointer.pointee.time_base }
}

/// A decoder for one input stream.
final class Decoder: CodecContext {
    let streamTimeBase: AVRational

    /// - Parameter maxPixels: the largest picture the decoder may produce (libavcodec refuses
    ///   bigger ones before allocating them); nil: libavcodec's own limit.
    init(stream: UnsafeMutablePointer<AVStream>, maxPixels: Int? = nil) throws(MediaError) {
        let parameters = stream.pointee.codecpar!
        let kind = parameters.pointee.codec_type == AVMEDIA_TYPE_VIDEO ? "video" : "audio"
        guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
            let name = String(cString: avcodec_get_name(parameters.pointee.codec_id))
            throw MediaError(operation: "decode \(kind)", reason: "no decoder for \(name)")
        }
        streamTimeBase = stream.pointee.time_base
        try super.init(codec: codec, role: "decode \(kind)")
        try avcodec_parameters_to_context(pointer, parameters).check("\(role): copy stream parameters")
        pointer.pointee.pkt_timebase = stream.pointee.time_base
        // Frame and slice threads: decoding is done once per asset, so it should use every core.
        pointer.pointee.thread_count = 0
        pointer.pointee.thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE
        if let maxPixels { pointer.pointee.max_pixels = Int64(maxPixels) }
        FFmpegLog.clear()
        try avcodec_open2(pointer, codec, nil).check("\(role): open \(String(cString: codec.pointee.name))")
    }

    /// Sends a packet, or `nil` to start draining. Returns false when the decoder rejected the
    /// packet: a damaged packet is skipped, not fatal, whatever code the decoder gives for it
    /// (mostly AVERROR_INVALIDDATA, but AAC also answers EPERM, AVERROR_PATCHWELCOME or numbers of
    /// its own for a damaged bitstream). Running out of memory still ends the transcode.
    func send(_ packet: Packet?) throws(MediaError) -> Bool {
        let result = avcodec_send_packet(pointer, packet?.pointer)
        if result >= 0 || result == AVErr.eof { return true }
        // Draining (a nil packet) can answer for the damage too.
        if Decoder.isDamage(result) { return false }
        try result.check(role)
        return true
    }

    /// A frame, or why there is none. A frame the decoder could not rebuild from damaged packets
    /// (frame threads report a packet's damage here) is skipped like the packet.
    func receive(into frame: Frame) throws(MediaError) -> CodecResult {
        let result = avcodec_receive_frame(pointer, frame.pointer)
        if result == AVErr.again { return .needsInput }
        if result == AVErr.eof { return .endOfStream }
        if Decoder.isDamage(result) { return .needsInput }
        try result.check(role)
        return .produced
    }

    /// Whether a decoder's error code means damaged input rather than this process's trouble
    /// (memory) or a misuse of the API (EAGAIN, EOF), which stay errors.
    private static func isDamage(_ code: Int32) -> Bool {
        code < 0 && code != AVErr.noMemory && code != AVErr.again && code != AVErr.eof
    }
}

/// An encoder; the caller configures the context between `init` and ``open(options:)``.
final class Encoder: CodecContext {
    let codec: UnsafePointer<AVCodec>

    init(name: String, role: String) throws(MediaError) {
        guard let codec = avcodec_find_encoder_by_name(name) else {
            throw MediaError(operation: role, reason: "this FFmpeg build has no \(name) encoder")
        }
        self.codec = codec
        try super.init(codec: codec, role: role)
    }

    /// Opens the encoder with private options (`preset`, `profile`, `x264-params` …). An option the
    /// encoder does not know is an error, not silently ignored.
    func open(options: [(String, String)]) throws(MediaError) {
        var dictionary: OpaquePointer? = nil
        defer { av_dict_free(&dictionary) }
        for (key, value) in options {
            av_dict_set(&dictionary, key, value, 0)
        }
        FFmpegLog.clear()
        try avcodec_open2(pointer, codec, &dictionary).check("\(role): open \(String(cString: codec.pointee.name))")
        if let unused = av_dict_get(dictionary, "", nil, AV_DICT_IGNORE_SUFFIX) {
            let key = String(cString: unused.pointee.key)
            throw MediaError(operation: role, reason: "\(String(cString: codec.pointee.name)) does not know the option '\(key)'")
        }
    }

    /// Sends a frame, or `nil` to start draining.
    func send(_ frame: Frame?) throws(MediaError) {
        try send(frame?.pointer)
    }

    func send(_ frame: UnsafeMutablePointer<AVFrame>?) throws(MediaError) {
        let result = avcodec_send_frame(pointer, frame)
        if result == AVErr.eof { return }
        try result.check(role)
    }

    func receive(into packet: Packet) throws(MediaError) -> CodecResult {
        let result = avcodec_receive_packet(pointer, packet.pointer)
        if result == AVErr.again { return .needsInput }
        if result == AVErr.eof { return .endOfStream }
        try result.check(role)
        return .produced
    }
}
