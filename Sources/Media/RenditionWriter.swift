import CFFmpeg
import HLS

/// Where segments start, decided once on the decoded frames so every rendition cuts at the same
/// instants.
final class SegmentBoundaries {
    /// Video: the presentation timestamps (video time base) of the frames that start a segment.
    private(set) var videoStarts: Set<Int64> = []
    /// Audio-only renditions cut at the first packet at or after each segment start of the grid.
    let grid: SegmentGrid

    init(grid: SegmentGrid) {
        self.grid = grid
    }

    func markVideoStart(_ pts: Int64) { videoStarts.insert(pts) }
}

/// One rendition's output: interleaves its video packets with the shared audio packets in decode
/// order, cuts segments at the shared boundaries, and hands each finished segment to the sealer.
final class RenditionWriter {
    let name: String
    private let muxer: SegmentMuxer
    private let sealer: SegmentSealer
    private let boundaries: SegmentBoundaries
    private let videoTimeBase: AVRational?
    private let audioTimeBase: AVRational?
    private var video: [Packet] = []
    private var audio: [Packet] = []
    private var videoHead = 0
    private var audioHead = 0
    private var videoEnded: Bool
    private var audioEnded: Bool
    private(set) var segments: [SealedSegment] = []
    /// Start of the current segment, seconds; nil before the first packet.
    private var segmentStart: Double?
    private var peakEnd: Double = 0
    /// Codec parameters seen in the stream, for CODECS.
    private(set) var videoCodecString: String?
    /// Told after each segment is sealed (a growing playlist lists it).
    var onSealed: ((RenditionWriter) throws -> Void)?
    /// The index of the first segment: 0, or where a part of a split transcode starts.
    let firstIndex: Int

    init(name: String, muxer: SegmentMuxer, sealer: SegmentSealer, boundaries: SegmentBoundaries,
         videoTimeBase: AVRational?, audioTimeBase: AVRational?, firstIndex: Int = 0) {
        self.name = name
        self.firstIndex = firstIndex
        self.muxer = muxer
        self.sealer = sealer
        self.boundaries = boundaries
        self.videoTimeBase = videoTimeBase
        self.audioTimeBase = audioTimeBase
        videoEnded = videoTimeBase == nil
        audioEnded = audioTimeBase == nil
    }

    func addVideo(_ packet: Packet) throws {
        if videoCodecString == nil, packet.isKey {
            videoCodecString = packet.withBytes { AVCCodecString.fromAnnexB($0) }
        }
        video.append(try Packet(referencing: packet))
        try writeReady()
    }

    func addAudio(_ packet: Packet) throws {
        audio.append(try Packet(referencing: packet))
        try writeReady()
    }

    func endVideo() throws {
        videoEnded = true
        try writeReady()
    }

    func endAudio() throws {
        audioEnded = true
        try writeReady()
    }

    /// Writes the last segment. `videoEnd`: the end of the last frame, seconds (nil: use packets).
    func finish(videoEnd: Double?) throws {
        videoEnded = true
        audioEnded = true
        try writeReady()
        let bytes = try muxer.finish()
        guard let start = segmentStart else { return }
        let end = max(videoEnd ?? peakEnd, start)
        try seal(bytes, duration: end - start)
    }

    /// Writes packets in dts order for as long as the order is known: the earlier head of the two
    /// queues while both have packets, anything once the other stream has ended.
    private func writeReady() throws {
        while true {
            let nextVideo = videoHead < video.count ? video[videoHead] : nil
            let nextAudio = audioHead < audio.count ? audio[audioHead] : nil
            let takeVideo: Bool
            switch (nextVideo, nextAudio) {
            case let (v?, a?):
                takeVideo = av_compare_ts(v.dts, videoTimeBase!, a.dts, audioTimeBase!) <= 0
            case (_?, nil):
                guard audioEnded else { compact(); return }
                takeVideo = true
            case (nil, _?):
                guard videoEnded else { compact(); return }
                takeVideo = false
            case (nil, nil):
                compact()
                return
            }
            if takeVideo {
                let packet = nextVideo!
                videoHead += 1
                try write(packet, track: .video, timeBase: videoTimeBase!)
            } else {
                let packet = nextAudio!
                audioHead += 1
                try write(packet, track: .audio, timeBase: audioTimeBase!)
            }
        }
    }

    private func compact() {
        if videoHead > 64 { video.removeFirst(videoHead); videoHead = 0 }
        if audioHead > 256 { audio.removeFirst(audioHead); audioHead = 0 }
    }

    private func write(_ packet: Packet, track: SegmentMuxer.Track, timeBase: AVRational) throws {
        let seconds = Double(packet.pts) * av_q2d(timeBase)
        let end = seconds + Double(packet.duration) * av_q2d(timeBase)
        // Segment timing follows the video in a video rendition, the audio in an audio-only one.
        let isVideoRendition = videoTimeBase != nil
        if !isVideoRendition || track == .video {
            if let start = segmentStart {
                let startsSegment = isVideoRendition
                    ? packet.isKey && boundaries.videoStarts.contains(packet.pts)
                    : segmentIndex(at: seconds) > segmentIndex(at: start)
                if startsSegment {
                    try seal(try muxer.cut(), duration: seconds - start)
                    segmentStart = seconds
                }
            } else {
                segmentStart = seconds
            }
        }
        if !isVideoRendition || track == .video { peakEnd = max(peakEnd, end) }
        try muxer.write(packet, track: track, encoderTimeBase: timeBase)
    }

    /// The audio-only cut rule: the grid's segments, with a millisecond of slack for timestamps
    /// rounded just under a boundary.
    private func segmentIndex(at seconds: Double) -> Int {
        boundaries.grid.segmentIndex(at: seconds + 0.001)
    }

    private func seal(_ bytes: [UInt8], duration: Double) throws {
        let index = firstIndex + segments.count
        let segment = try sealer.seal(
            bytes, rendition: name, index: index,
            fileName: SegmentNaming.fileName(index: index), duration: duration
        )
        segments.append(segment)
        try onSealed?(self)
    }
}
