import CFFmpeg

/// Collects what a muxer writes, in memory. The segment never exists as plaintext on disk.
final class MemorySink {
    private(set) var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    func append(_ buffer: UnsafePointer<UInt8>, count: Int) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: buffer, count: count))
    }

    /// Hands over what was collected and starts empty, keeping roughly the same capacity.
    func take() -> [UInt8] {
        let taken = bytes
        bytes = []
        bytes.reserveCapacity(taken.count + taken.count / 4)
        return taken
    }
}

/// An MPEG-TS muxer for one rendition writing through a custom `AVIOContext` into memory, cut into
/// segments.
///
/// One muxer lives for the whole rendition, so continuity counters and timestamps run on across
/// segments as in one long transport stream. At a cut it flushes the PES data the muxer buffers
/// (`av_write_frame(ctx, NULL)`) and asks for PAT/PMT again at the start of the next segment, so every
/// segment is decodable on its own.
final class SegmentMuxer {
    enum Track { case video, audio }

    private let context: UnsafeMutablePointer<AVFormatContext>
    private let sink: MemorySink
    private var sinkReference: Unmanaged<MemorySink>
    private var videoStream: Int32?
    private var audioStream: Int32?
    private var videoTimeBase = AVRational(num: 1, den: 1)
    private var audioTimeBase = AVRational(num: 1, den: 1)
    private var headerWritten = false
    let name: String

    /// - Parameters:
    ///   - video: the rendition's video encoder, opened.
    ///   - audio: the shared audio encoder, opened.
    ///   - sharedClock: timestamps are the source's, shifted by ``sharedClockOffset`` and nothing
    ///     else, so parts of a split transcode muxed apart (each chunk's video, the audio) meet on
    ///     one clock; libavformat would otherwise shift each part by its own first negative DTS.
    init(name: String, video: Encoder?, audio: Encoder?, expectedSegmentBytes: Int, sharedClock: Bool = false) throws(MediaError) {
        self.name = name
        var allocated: UnsafeMutablePointer<AVFormatContext>? = nil
        try avformat_alloc_output_context2(&allocated, nil, "mpegts", nil).check("\(name): create MPEG-TS muxer")
        guard let allocated else { throw MediaError(operation: "\(name): create MPEG-TS muxer", reason: "out of memory", code: AVErr.noMemory) }
        context = allocated
        sink = MemorySink(reservingCapacity: expectedSegmentBytes)
        sinkReference = Unmanaged.passRetained(sink)

        let bufferSize: Int32 = 64 * 1024
        guard let buffer = av_malloc(Int(bufferSize)),
              let io = avio_alloc_context(
                buffer.assumingMemoryBound(to: UInt8.self), bufferSize, 1,
                sinkReference.toOpaque(), nil, SegmentMuxer.writePacket, nil
              )
        else {
            sinkReference.release()
            avformat_free_context(allocated)
            throw MediaError(operation: "\(name): create output buffer", reason: "out of memory", code: AVErr.noMemory)
        }
        context.pointee.pb = io
        context.pointee.flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_FLUSH_PACKETS
        if sharedClock {
            context.pointee.avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED
            context.pointee.output_ts_offset = Self.sharedClockOffset
        }

        if let video {
            videoStream = try addStream(from: video)
        }
        if let audio {
            audioStream = try addStream(from: audio)
        }
    }

    /// 10 s (in AV_TIME_BASE units): more than any B-frame delay or AAC priming puts a DTS before 0.
    static let sharedClockOffset: Int64 = 10 * Int64(AV_TIME_BASE)

    deinit {
        if let io = context.pointee.pb {
            av_freep(&io.pointee.buffer)
            var pb: UnsafeMutablePointer<AVIOContext>? = io
            avio_context_free(&pb)
            context.pointee.pb = nil
        }
        avformat_free_context(context)
        sinkReference.release()
    }

    private static let writePacket: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int32) -> Int32 = {
        opaque, buffer, size in
        guard let opaque, let buffer, size > 0 else { return 0 }
        Unmanaged<MemorySink>.fromOpaque(opaque).takeUnretainedValue().append(buffer, count: Int(size))
        return size
    }

    private func addStream(from encoder: Encoder) throws(MediaError) -> Int32 {
        guard let stream = avformat_new_stream(context, nil) else {
            throw MediaError(operation: "\(name): add stream", reason: "out of memory", code: AVErr.noMemory)
        }
        try avcodec_parameters_from_context(stream.pointee.codecpar, encoder.pointer).check("\(name): copy encoder parameters")
        stream.pointee.time_base = encoder.timeBase
        return stream.pointee.index
    }

    private func writeHeaderIfNeeded() throws(MediaError) {
        guard !headerWritten else { return }
        var options: OpaquePointer? = nil
        defer { av_dict_free(&options) }
        // PES packets are not merged across our cuts; PAT/PMT are repeated at every cut (below).
        av_dict_set(&options, "mpegts_flags", "+resend_headers", 0)
        try avformat_write_header(context, &options).check("\(name): write MPEG-TS header")
        if let videoStream { videoTimeBase = context.pointee.streams[Int(videoStream)]!.pointee.time_base }
        if let audioStream { audioTimeBase = context.pointee.streams[Int(audioStream)]!.pointee.time_base }
        headerWritten = true
    }

    /// Writes one packet whose timestamps are in its encoder's time base. The packet is consumed:
    /// its timestamps are rescaled in place and its data released.
    func write(_ packet: Packet, track: Track, encoderTimeBase: AVRational) throws(MediaError) {
        try writeHeaderIfNeeded()
        let (index, timeBase) = switch track {
        case .video: (videoStream!, videoTimeBase)
        case .audio: (audioStream!, audioTimeBase)
        }
        packet.pointer.pointee.stream_index = index
        av_packet_rescale_ts(packet.pointer, encoderTimeBase, timeBase)
        let result = av_write_frame(context, packet.pointer)
        packet.unref()
        try result.check("\(name): mux packet")
    }

    /// Ends the current segment: flushes buffered PES data and returns the segment's bytes.
    func cut() throws(MediaError) -> [UInt8] {
        try writeHeaderIfNeeded()
        try av_write_frame(context, nil).check("\(name): flush segment")
        avio_flush(context.pointee.pb)
        av_opt_set(context.pointee.priv_data, "mpegts_flags", "+resend_headers", 0)
        return sink.take()
    }

    /// Ends the stream: writes the trailer and returns the last segment's bytes.
    func finish() throws(MediaError) -> [UInt8] {
        try writeHeaderIfNeeded()
        try av_write_frame(context, nil).check("\(name): flush segment")
        try av_write_trailer(context).check("\(name): finish MPEG-TS")
        avio_flush(context.pointee.pb)
        return sink.take()
    }
}
