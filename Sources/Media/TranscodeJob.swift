import CFFmpeg
import Foundation
import HLS
import Profiles
import Store
import Vault

/// The state of one transcode, from open to playlists. Used once, on one thread.
final class TranscodeJob {
    let inputName: String
    let profile: Profile
    private let assetID: AssetID
    let staging: StagingArea
    private let keyring: Keyring
    private let limits: InputLimits
    private let progressInterval: Double
    private let progress: ((TranscodeProgress) -> Void)?
    private let isCancelled: () -> Bool
    private let started: Date

    let input: InputFile
    /// The whole source, or one part of a split transcode (``TranscodePart``).
    let part: TranscodePart
    var videoIndex: Int32?
    var audioIndex: Int32?
    var videoDecoder: Decoder?
    private var audioDecoder: Decoder?
    private var audio: AudioPipeline?
    private var renditions: [VideoRendition] = []
    var renditionPlans: [PlannedRung] { renditions.map(\.plan) }
    private var audioOnlyWriter: RenditionWriter?
    let sealer: SegmentSealer
    let boundaries: SegmentBoundaries
    private var playlists: LadderPlaylists!
    var stills: StillsWriter?
    let posterTime: Double?
    var warnings: [String] = []
    var geometry: SourceGeometry?
    var frameRate = AVRational(num: 0, den: 1)

    // Timing state.
    let originSeconds: Double
    var framesDecoded = 0
    private var audioSamplesDecoded = 0
    var lastVideoPTS: Int64?
    var videoEnd: Int64 = 0
    var nextKeyframeTime = 0.0
    var currentSegment = -1
    var processedSeconds = 0.0
    /// A part's stretch is behind: the run stops reading.
    var reachedPartEnd = false
    /// The seek to a part's start landed past it: the run reads again from the beginning.
    var needsRewind = false
    var rewound = false
    /// Pictures a video part decoded so far, kept or not: the first tells whether the seek overshot.
    var partFramesSeen = 0
    private var lastReport = Date.distantPast
    private var decodeFailures = 0
    // The stages' clocks (the rungs keep their own).
    private var decodeClock = StageClock()
    private var audioClock = StageClock()
    private var stillsClock = StageClock()
    private var sealClock = StageClock()

    init(
        input source: TranscodeInput, profile: Profile, assetID: AssetID, staging: StagingArea, keyring: Keyring, limits: InputLimits,
        progressInterval: Double, progress: ((TranscodeProgress) -> Void)?, isCancelled: @escaping () -> Bool,
        started: Date, growing: Bool = false, onPlayable: (() -> Void)? = nil, posterTime: Double? = nil, part: TranscodePart = .whole
    ) throws {
        self.part = part
        self.inputName = source.name
        self.profile = profile
        self.assetID = assetID
        self.staging = staging
        self.keyring = keyring
        self.limits = limits
        self.progressInterval = progressInterval
        self.progress = progress
        self.isCancelled = isCancelled
        self.started = started
        self.posterTime = posterTime
        do {
            input = try InputFile(source, keyring: keyring, limits: limits)
        } catch {
            throw TranscodeError(file: inputName, reason: error.reason, kind: .init(error))
        }
        originSeconds = input.startTime
        sealer = SegmentSealer(
            staging: staging, keyring: keyring, assetID: assetID, rotation: profile.keyRotationSegments, maxBytes: limits.maxOutputBytes
        )
        boundaries = SegmentBoundaries(grid: SegmentGrid(profile: profile))
        try selectStreams()
        try buildPipeline()
        var outputs = renditions.map { LadderPlaylists.Output(writer: $0.writer, plan: $0.plan) }
        if let audioOnlyWriter { outputs.append(LadderPlaylists.Output(writer: audioOnlyWriter, plan: nil)) }
        playlists = LadderPlaylists(
            staging: staging, outputs: outputs, inputName: inputName, audioBitrate: audio != nil ? profile.audio?.bitrate : nil,
            frameRate: frameRate.num > 0 && frameRate.den > 0 ? av_q2d(frameRate) : nil, segmentDuration: profile.segmentDuration,
            growing: growing, onPlayable: onPlayable
        )
    }

    private func selectStreams() throws {
        if !profile.rungs.isEmpty, part != .audio { videoIndex = input.bestStream(AVMEDIA_TYPE_VIDEO) }
        if profile.audio != nil, part.hasAudio { audioIndex = input.bestStream(AVMEDIA_TYPE_AUDIO) }
        if part != .whole { try checkPartStreams() }
        guard videoIndex != nil || audioIndex != nil else {
            let found = input.streamCount == 0 ? "no streams at all" : "streams: \(input.streamSummary)"
            let wanted = profile.rungs.isEmpty ? "audio" : (profile.audio == nil ? "video" : "video or audio")
            throw TranscodeError(file: inputName, reason: "no decodable \(wanted) stream (\(found))")
        }
    }

    private func buildPipeline() throws {
        if let audioIndex, let settings = profile.audio {
            let decoder = try Decoder(stream: input.stream(audioIndex))
            audioDecoder = decoder
            audio = try AudioPipeline(decoder: decoder, settings: settings)
        }
        if let videoIndex {
            try buildVideo(stream: input.stream(videoIndex))
        } else {
            let muxer = try SegmentMuxer(
                name: "audio", video: nil, audio: audio!.encoder, expectedSegmentBytes: 256 * 1024, sharedClock: part != .whole
            )
            audioOnlyWriter = RenditionWriter(
                name: "audio", muxer: muxer, sealer: sealer, boundaries: boundaries,
                videoTimeBase: nil, audioTimeBase: audio!.timeBase
            )
        }
    }

    private func buildVideo(stream: UnsafeMutablePointer<AVStream>) throws {
        let parameters = stream.pointee.codecpar!.pointee
        let pixels = Int(parameters.width) * Int(parameters.height)
        if pixels > limits.maxPixels {
            throw TranscodeError(
                file: inputName,
                reason: "declares \(parameters.width)x\(parameters.height) pictures (\(pixels) pixels); at most \(limits.maxPixels) are accepted"
            )
        }
        // Before the decoder is opened: some (FFV1) take their picture size from the stream and
        // fail without one, with a reason that does not say so. libavformat also zeroes a size it
        // finds invalid (30000x30000 from a Matroska track).
        guard parameters.width > 0, parameters.height > 0 else {
            throw TranscodeError(file: inputName, reason: "the video stream has no picture size")
        }
        // The decoder refuses larger pictures too, should a frame's size differ from the stream's.
        let decoder = try Decoder(stream: stream, maxPixels: limits.maxPixels)
        videoDecoder = decoder
        let sar = stream.pointee.sample_aspect_ratio.num > 0 ? stream.pointee.sample_aspect_ratio : parameters.sample_aspect_ratio
        let geometry = SourceGeometry(
            codedWidth: Int(parameters.width), codedHeight: Int(parameters.height),
            sampleAspectRatio: sar.num > 0 && sar.den > 0 ? av_q2d(sar) : 1,
            rotation: TranscodeJob.rotation(of: stream)
        )
        self.geometry = geometry
        stills = try makeStills(geometry: geometry)
        frameRate = TranscodeJob.plausibleFrameRate(av_guess_frame_rate(input.context, stream, nil))
        let fps = frameRate.num > 0 ? av_q2d(frameRate) : 30
        let plans = LadderPlanner.plan(rungs: profile.rungs, for: geometry)

        for plan in plans {
            let level = levelFitting(plan: plan, fps: fps)
            let encoder = try makeVideoEncoder(plan: plan, level: level, timeBase: stream.pointee.time_base, fps: fps)
            let scaled = plan.scaledSize(for: geometry)
            let converter = try PictureConverter(
                width: plan.width, height: plan.height, scaledWidth: scaled.width, scaledHeight: scaled.height,
                rotation: geometry.rotation
            )
            let expected = Int(Double(plan.rung.maxrate) / 8 * profile.segmentDuration * 1.2)
            let muxer = try SegmentMuxer(
                name: plan.rung.name, video: encoder, audio: audio?.encoder, expectedSegmentBytes: expected, sharedClock: part != .whole
            )
            let writer = RenditionWriter(
                name: plan.rung.name, muxer: muxer, sealer: sealer, boundaries: boundaries,
                videoTimeBase: encoder.timeBase, audioTimeBase: audio?.timeBase, firstIndex: firstSegmentIndex
            )
            renditions.append(try VideoRendition(plan: plan, converter: converter, encoder: encoder, writer: writer, level: level))
        }
    }

    /// Frame rates a video can have: from a picture every 100 s to 1,000 a second.
    static let plausibleFrameRates: ClosedRange<Double> = 0.01...1000

    /// The stream's frame rate when it is a plausible one, else 0/1 (unknown: 30 a second is assumed
    /// for the encoder, and the playlists give none). A container may declare anything, such as
    /// 2^31 frames a second from a time scale of 2^31 and a frame duration of one tick; the GOP
    /// length, the H.264 level and FRAME-RATE are never computed from such a figure.
    static func plausibleFrameRate(_ rate: AVRational) -> AVRational {
        guard rate.num > 0, rate.den > 0, plausibleFrameRates.contains(av_q2d(rate)) else { return AVRational(num: 0, den: 1) }
        return rate
    }

    /// The profile's level, raised when this source's frame rate needs more macroblocks per second
    /// than it allows: a level that lies to the player is worse than a higher one.
    private func levelFitting(plan: PlannedRung, fps: Double) -> H264Level {
        let macroblocks = ((plan.width + 15) / 16) * ((plan.height + 15) / 16)
        let rate = Int((Double(macroblocks) * fps).rounded(.up))
        let declared = plan.rung.level
        guard rate > declared.maxMacroblocksPerSecond || macroblocks > declared.maxFrameSizeMBs else { return declared }
        let fitting = H264Level.all.first {
            $0.idc >= declared.idc && $0.maxMacroblocksPerSecond >= rate && $0.maxFrameSizeMBs >= macroblocks
        } ?? declared
        warnings.append(
            "\(plan.rung.name): level \(declared.name) allows \(declared.maxMacroblocksPerSecond) macroblocks/s; "
                + "\(plan.width)x\(plan.height) at \(String(format: "%.3g", fps)) fps needs \(rate), using level \(fitting.name)"
        )
        return fitting
    }

    private func makeVideoEncoder(plan: PlannedRung, level: H264Level, timeBase: AVRational, fps: Double) throws -> Encoder {
        let rung = plan.rung
        let encoder = try Encoder(name: "libx264", role: "encode \(rung.name)")
        let context = encoder.pointer
        context.pointee.width = Int32(plan.width)
        context.pointee.height = Int32(plan.height)
        context.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        context.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
        context.pointee.time_base = timeBase
        if frameRate.num > 0, frameRate.den > 0 { context.pointee.framerate = frameRate }
        context.pointee.bit_rate = Int64(rung.bitrate)
        context.pointee.rc_max_rate = Int64(rung.maxrate)
        context.pointee.rc_buffer_size = Int32(clamping: rung.bufsize)
        let gop = max(1, Int32((profile.keyframeInterval * fps).rounded()))
        context.pointee.gop_size = gop
        context.pointee.keyint_min = gop
        context.pointee.level = Int32(level.idc)
        context.pointee.color_range = AVCOL_RANGE_MPEG
        if let source = videoDecoder?.pointer.pointee {
            context.pointee.color_primaries = source.color_primaries
            context.pointee.color_trc = source.color_trc
            context.pointee.colorspace = source.colorspace
        }
        context.pointee.thread_count = 0
        try encoder.open(options: [
            ("preset", rung.preset),
            ("profile", rung.profile.rawValue),
            // IDR frames come only where the pipeline forces them, at the same instants on every rung.
            ("forced-idr", "1"),
            ("x264-params", "scenecut=0:open-gop=0"),
        ])
        return encoder
    }

    /// Clockwise degrees (0, 90, 180, 270) the display matrix asks for.
    private static func rotation(of stream: UnsafeMutablePointer<AVStream>) -> Int {
        guard let matrix = CFFmpeg_stream_display_matrix(stream) else { return 0 }
        let counterClockwise = av_display_rotation_get(matrix)
        guard counterClockwise.isFinite else { return 0 }
        var degrees = Int((-counterClockwise).rounded()) % 360
        if degrees < 0 { degrees += 360 }
        return (degrees + 45) / 90 * 90 % 360
    }

    // MARK: - Running

    func run() throws -> TranscodeSummary {
        let packet = try Packet()
        let frame = try Frame()
        try seekToPartStart()
        while true {
            while !reachedPartEnd, try readPacket(into: packet) {
                defer { packet.unref() }
                // The packet read after a seek that overshot belongs to the wrong place: dropped.
                if needsRewind { try rewind(); continue }
                if isCancelled() { throw TranscodeError(file: inputName, reason: "cancelled", kind: .cancelled) }
                if packet.streamIndex == videoIndex, let decoder = videoDecoder {
                    try decode(packet, with: decoder, into: frame, video: true)
                } else if packet.streamIndex == audioIndex, let decoder = audioDecoder {
                    try decode(packet, with: decoder, into: frame, video: false)
                }
                reportProgress(final: false)
            }
            if let decoder = videoDecoder { try decode(nil, with: decoder, into: frame, video: true) }
            // The overshoot showed only as the decoder drained: read it all again from the start.
            guard needsRewind, !rewound else { break }
            try rewind()
        }
        if let decoder = audioDecoder { try decode(nil, with: decoder, into: frame, video: false) }
        if videoDecoder != nil, framesDecoded == 0 {
            throw TranscodeError(file: inputName, reason: "the video stream has no decodable frames")
        }
        if videoDecoder == nil, audioSamplesDecoded == 0 {
            throw TranscodeError(file: inputName, reason: "the audio stream has no decodable samples")
        }
        return try sealClock.measure {
            try finishEncoding()
            reportProgress(final: true)
            return try writePlaylists()
        }
    }

    /// The stages measured so far (those that did any work), for the job's trace.
    var stages: [TranscodeStage] {
        var stages = [decodeClock.stage(.decode, frames: framesDecoded)]
        stages += renditions.map { $0.clock.stage(.encode, rendition: $0.plan.rung.name, frames: $0.framesEncoded) }
        stages += [audioClock.stage(.audio), stillsClock.stage(.stills), sealClock.stage(.seal)]
        return stages.compactMap { $0 }
    }

    /// The next packet, false at the end. The input's reasons name what is wrong with the file.
    private func readPacket(into packet: Packet) throws -> Bool {
        do {
            return try input.read(into: packet)
        } catch {
            throw TranscodeError(file: inputName, reason: error.reason, kind: .init(error))
        }
    }

    private func decode(_ packet: Packet?, with decoder: Decoder, into frame: Frame, video: Bool) throws {
        if try !decodeClock.measure({ try decoder.send(packet) }) {
            decodeFailures += 1
            return
        }
        while try decodeClock.measure({ try decoder.receive(into: frame) }) == .produced {
            defer { frame.unref() }
            if video {
                try handleVideo(frame.pointer, timeBase: decoder.streamTimeBase)
            } else {
                try handleAudio(frame.pointer, timeBase: decoder.streamTimeBase)
            }
        }
    }

    private func handleVideo(_ frame: UnsafeMutablePointer<AVFrame>, timeBase: AVRational) throws {
        let unit = try secondsPerTick(timeBase)
        // The start time is any instant (an MPEG-TS clock runs for 26 hours), not a duration.
        guard abs(originSeconds / unit) < 0x1p62 else { throw TranscodeError(file: inputName, reason: "has no valid start time") }
        let origin = Int64((originSeconds / unit).rounded())
        var pts = frame.pointee.best_effort_timestamp
        let frameSeconds = frame.pointee.pkt_duration > 0
            ? Double(frame.pointee.pkt_duration) * unit : 1 / (frameRate.num > 0 ? av_q2d(frameRate) : 30)
        let frameDuration = try ticks(frameSeconds, unit: unit, what: "a picture")
        if pts == noPTS {
            pts = lastVideoPTS.map { $0 + frameDuration } ?? 0
        } else {
            _ = try ticks(Double(pts) * unit - originSeconds, unit: unit, what: "a picture")
            pts -= origin
        }
        // The encoder needs strictly increasing timestamps, and they must stay so once the muxer
        // rescales them to MPEG-TS's 90 kHz clock: a repeated, backwards or too close one (frames
        // nanoseconds apart in a time base of 1 ns) is nudged to one 90 kHz tick after the last.
        let step = TranscodeJob.ticksPerOutputTick(timeBase)
        if let last = lastVideoPTS, pts < last + step { pts = last + step }
        if pts < 0, lastVideoPTS == nil { pts = 0 }
        lastVideoPTS = pts
        let seconds = Double(pts) * av_q2d(timeBase)
        // A part encodes its stretch only: the frames before it were decoded to reach it.
        guard keepsFrame(at: seconds) else { return }
        videoEnd = max(videoEnd, pts + max(1, frameDuration))
        frame.pointee.pts = pts

        // Force an IDR on the first frame at or after each keyframe instant; segments start on the
        // first of those at or after each segment instant. The same decision feeds every rung.
        let slack = 0.001
        if framesDecoded == 0 || seconds + slack >= nextKeyframeTime {
            frame.pointee.pict_type = AV_PICTURE_TYPE_I
            nextKeyframeTime = boundaries.grid.keyframe(after: seconds + slack)
            let segment = boundaries.grid.segmentIndex(at: seconds + slack)
            if framesDecoded == 0 || segment > currentSegment {
                boundaries.markVideoStart(pts)
                currentSegment = max(segment, 0)
            }
        } else {
            frame.pointee.pict_type = AV_PICTURE_TYPE_NONE
        }
        framesDecoded += 1
        processedSeconds = max(processedSeconds, seconds)
        if let stills { try stillsClock.measure { try stills.offer(frame, seconds: seconds) } }
        for rendition in renditions {
            try rendition.encode(frame)
        }
    }

    private func handleAudio(_ frame: UnsafeMutablePointer<AVFrame>, timeBase: AVRational) throws {
        guard let audio else { return }
        audioSamplesDecoded += Int(frame.pointee.nb_samples)
        var pts = frame.pointee.best_effort_timestamp
        if pts == noPTS { pts = 0 }
        let seconds = Double(pts) * (try secondsPerTick(timeBase)) - originSeconds
        _ = try ticks(seconds, unit: 1, what: "a sound")
        if videoDecoder == nil { processedSeconds = max(processedSeconds, seconds) }
        try audioClock.measure { try audio.add(frame, startSeconds: seconds) { packet in try self.distributeAudio(packet) } }
    }

    /// The source ticks in one tick of the segments' 90 kHz clock, at least 1 (rounded up, so two
    /// timestamps that far apart never meet once rescaled). The time base is already known valid.
    static func ticksPerOutputTick(_ timeBase: AVRational) -> Int64 {
        let perSecond = 90_000 * Int64(timeBase.num)
        return max(1, (Int64(timeBase.den) + perSecond - 1) / perSecond)
    }

    /// A stream's tick in seconds; a hostile file's zero or negative time base fails here.
    private func secondsPerTick(_ timeBase: AVRational) throws -> Double {
        let unit = av_q2d(timeBase)
        guard unit.isFinite, unit > 0 else { throw TranscodeError(file: inputName, reason: "a stream has no valid time base") }
        return unit
    }

    /// `seconds` in ticks of `unit`, once it is known to lie within the duration limit: timestamps a
    /// hostile file makes absurd fail here, before any integer arithmetic on them could overflow.
    private func ticks(_ seconds: Double, unit: Double, what: String) throws -> Int64 {
        let limit = limits.maxDurationSeconds
        guard seconds.isFinite, abs(seconds) <= limit + 1, abs(seconds / unit) < 0x1p62 else {
            let when = seconds.isFinite ? String(format: "%.0f s", seconds) : "no valid time"
            throw TranscodeError(file: inputName, reason: "has \(what) at \(when); at most \(Int(limit)) s of media are accepted")
        }
        return Int64((seconds / unit).rounded())
    }

    private func distributeAudio(_ packet: Packet) throws {
        if let audioOnlyWriter {
            try audioOnlyWriter.addAudio(packet)
        }
        for rendition in renditions {
            try rendition.writer.addAudio(packet)
        }
    }

    private func finishEncoding() throws {
        if let audio {
            try audio.finish { packet in try self.distributeAudio(packet) }
            try audioOnlyWriter?.endAudio()
            for rendition in renditions { try rendition.writer.endAudio() }
        }
        let videoTimeBase = videoDecoder?.streamTimeBase
        for rendition in renditions {
            try rendition.encode(nil)
            try rendition.writer.endVideo()
            try rendition.writer.finish(videoEnd: videoTimeBase.map { Double(videoEnd) * av_q2d($0) })
        }
        try audioOnlyWriter?.finish(videoEnd: nil)
    }

    private func reportProgress(final: Bool) {
        guard let progress else { return }
        let now = Date()
        guard final || now.timeIntervalSince(lastReport) >= progressInterval else { return }
        lastReport = now
        var total = partEnd ?? input.duration
        if final { total = max(total ?? 0, processedSeconds) }
        let start = partStart
        progress(TranscodeProgress(
            processedSeconds: max(0, (final ? (total ?? processedSeconds) : processedSeconds) - start),
            totalSeconds: total.map { max(0, $0 - start) }, frames: framesDecoded, elapsedSeconds: now.timeIntervalSince(started)
        ))
    }

    // MARK: - Playlists and manifest

    private func writePlaylists() throws -> TranscodeSummary {
        if decodeFailures > 0 { warnings.append("\(decodeFailures) damaged packets were skipped") }
        let made = try stills?.finish()
        var summary = TranscodeSummary(
            assetID: assetID.rawValue, version: nil, profile: profile.name, durationSeconds: 0, segments: 0,
            wallSeconds: Date().timeIntervalSince(started), renditions: [], keys: sealer.keys.count, warnings: warnings
        )
        summary.poster = made?.poster
        summary.storyboard = made?.storyboard
        if part != .whole {
            return try partSummary(summary, writers: renditions.map(\.writer) + [audioOnlyWriter].compactMap { $0 }, cues: made?.cues ?? [])
        }
        return try playlists.finish(summary)
    }
}
