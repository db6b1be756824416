import CFFmpeg
import Profiles

/// Decoded audio → swresample → a FIFO of encoder-sized frames → AAC.
///
/// The audio is encoded once per asset; every rendition muxes the same packets.
final class AudioPipeline {
    let encoder: Encoder
    private var resampler: OpaquePointer?
    private let fifo: OpaquePointer
    private let frame: Frame
    private let packet: Packet
    private let outputRate: Int32
    private var outputLayout = AVChannelLayout()
    private var nextPTS: Int64?
    private var configuredFor: (Int32, Int32, UInt64, Int32)?
    /// The sample rates the AAC encoder accepts; others are resampled to 48 kHz.
    static let aacRates: Set<Int32> = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000]

    init(decoder: Decoder, settings: AudioSettings) throws(MediaError) {
        let source = decoder.pointer.pointee
        let sourceRate = source.sample_rate
        outputRate = Int32(settings.sampleRate ?? (AudioPipeline.aacRates.contains(sourceRate) ? Int(sourceRate) : 48000))
        let channels = max(1, min(Int32(settings.channels), source.ch_layout.nb_channels))
        av_channel_layout_default(&outputLayout, channels)

        encoder = try Encoder(name: "aac", role: "encode audio")
        let context = encoder.pointer
        context.pointee.sample_fmt = AV_SAMPLE_FMT_FLTP
        context.pointee.sample_rate = outputRate
        context.pointee.time_base = AVRational(num: 1, den: outputRate)
        context.pointee.bit_rate = Int64(settings.bitrate)
        try av_channel_layout_copy(&context.pointee.ch_layout, &outputLayout).check("encode audio: channel layout")
        try encoder.open(options: [])

        guard let fifo = av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, channels, 4096) else {
            throw MediaError(operation: "encode audio", reason: "cannot allocate the sample FIFO", code: AVErr.noMemory)
        }
        self.fifo = fifo
        frame = try Frame()
        packet = try Packet()
    }

    deinit {
        swr_free(&resampler)
        av_audio_fifo_free(fifo)
        av_channel_layout_uninit(&outputLayout)
    }

    var timeBase: AVRational { encoder.timeBase }
    private var frameSize: Int32 { max(encoder.pointer.pointee.frame_size, 1024) }

    /// Resamples one decoded frame into the FIFO and encodes every full frame there is.
    /// - Parameter startSeconds: the frame's time in seconds from the asset's origin, used for the first
    ///   frame only: after that, samples are counted so the audio has no gaps or overlaps.
    func add(_ decoded: UnsafeMutablePointer<AVFrame>, startSeconds: Double, emit: (Packet) throws -> Void) throws {
        if nextPTS == nil {
            nextPTS = Int64((max(0, startSeconds) * Double(outputRate)).rounded())
        }
        try configure(for: decoded)
        let inputSamples = decoded.pointee.nb_samples
        let capacity = swr_get_out_samples(resampler, inputSamples)
        try convert(input: decoded, capacity: capacity)
        try encodeFullFrames(emit: emit, includingPartial: false)
    }

    /// Drains the resampler and the FIFO (a short last frame is allowed by AAC) and the encoder.
    func finish(emit: (Packet) throws -> Void) throws {
        if resampler != nil {
            let pending = swr_get_out_samples(resampler, 0)
            if pending > 0 { try convert(input: nil, capacity: pending) }
        }
        try encodeFullFrames(emit: emit, includingPartial: true)
        try encoder.send(nil as Frame?)
        try drain(emit: emit)
    }

    private func configure(for decoded: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        let key = (decoded.pointee.sample_rate, decoded.pointee.format, decoded.pointee.ch_layout.u.mask, decoded.pointee.ch_layout.nb_channels)
        if let configuredFor, configuredFor == key, resampler != nil { return }
        swr_free(&resampler)
        var layout = AVChannelLayout()
        if decoded.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC {
            av_channel_layout_default(&layout, decoded.pointee.ch_layout.nb_channels)
        } else {
            try av_channel_layout_copy(&layout, &decoded.pointee.ch_layout).check("resample audio: channel layout")
        }
        defer { av_channel_layout_uninit(&layout) }
        try swr_alloc_set_opts2(
            &resampler, &outputLayout, AV_SAMPLE_FMT_FLTP, outputRate,
            &layout, AVSampleFormat(rawValue: decoded.pointee.format), decoded.pointee.sample_rate, 0, nil
        ).check("resample audio: configure")
        try swr_init(resampler).check("resample audio: start")
        configuredFor = key
    }

    private func convert(input: UnsafeMutablePointer<AVFrame>?, capacity: Int32) throws(MediaError) {
        guard capacity > 0 else { return }
        try av_audio_fifo_realloc(fifo, av_audio_fifo_size(fifo) + capacity).check("resample audio: grow FIFO")
        // Convert into a scratch frame, then queue its samples.
        frame.unref()
        frame.pointer.pointee.nb_samples = capacity
        frame.pointer.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
        frame.pointer.pointee.sample_rate = outputRate
        try av_channel_layout_copy(&frame.pointer.pointee.ch_layout, &outputLayout).check("resample audio: layout")
        try av_frame_get_buffer(frame.pointer, 0).check("resample audio: buffer")
        let produced: Int32
        if let input {
            let planes = UnsafeMutableRawPointer(input.pointee.extended_data).assumingMemoryBound(to: UnsafePointer<UInt8>?.self)
            produced = try swr_convert(resampler, frame.pointer.pointee.extended_data, capacity, planes, input.pointee.nb_samples)
                .check("resample audio")
        } else {
            produced = try swr_convert(resampler, frame.pointer.pointee.extended_data, capacity, nil, 0).check("resample audio: drain")
        }
        if produced > 0 {
            let written = frame.pointer.pointee.extended_data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: 8) {
                av_audio_fifo_write(fifo, $0, produced)
            }
            try written.check("resample audio: queue samples")
        }
        frame.unref()
    }

    private func encodeFullFrames(emit: (Packet) throws -> Void, includingPartial: Bool) throws {
        while av_audio_fifo_size(fifo) >= frameSize || (includingPartial && av_audio_fifo_size(fifo) > 0) {
            let count = min(frameSize, av_audio_fifo_size(fifo))
            frame.unref()
            frame.pointer.pointee.nb_samples = count
            frame.pointer.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
            frame.pointer.pointee.sample_rate = outputRate
            try av_channel_layout_copy(&frame.pointer.pointee.ch_layout, &outputLayout).check("encode audio: layout")
            try av_frame_get_buffer(frame.pointer, 0).check("encode audio: buffer")
            let read = frame.pointer.pointee.extended_data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: 8) {
                av_audio_fifo_read(fifo, $0, count)
            }
            try read.check("encode audio: dequeue samples")
            frame.pts = nextPTS ?? 0
            nextPTS = frame.pts + Int64(count)
            try encoder.send(frame)
            try drain(emit: emit)
        }
        frame.unref()
    }

    private func drain(emit: (Packet) throws -> Void) throws {
        while try encoder.receive(into: packet) == .produced {
            try emit(packet)
            packet.unref()
        }
    }
}
