import CFFmpeg
import Foundation
import Store
import Vault

/// What one transcode encodes: the whole source, or one part of a split transcode (a long upload
/// cut into chunks that different workers encode at once, see ``SplitPlanner``).
public enum TranscodePart: Sendable, Equatable {
    case whole
    /// The video renditions of the source from `start` to `end` (its end when nil), seconds;
    /// segments numbered as the whole source's would be, on the same clock.
    case video(start: Double, end: Double?)
    /// The audio alone, the whole source, as a rendition of its own (`audio`).
    case audio

    var hasAudio: Bool { !isVideo }
    var isVideo: Bool { if case .video = self { true } else { false } }

    /// `audio`, or `video:START:END` (END empty for the source's end): the `--part` option.
    public init?(argument: String) {
        if argument == "audio" { self = .audio; return }
        let fields = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0] == "video", let start = Double(fields[1]), start.isFinite, start >= 0 else { return nil }
        if fields[2].isEmpty {
            self = .video(start: start, end: nil)
        } else {
            guard let end = Double(fields[2]), end.isFinite, end > start else { return nil }
            self = .video(start: start, end: end)
        }
    }

    public var argument: String {
        switch self {
        case .whole: "whole"
        case .audio: "audio"
        case .video(let start, let end): "video:\(start):\(end.map { "\($0)" } ?? "")"
        }
    }
}

// A part of a split transcode: its streams, the seek to its start, the frames it keeps, and its
// manifest in place of playlists.
extension TranscodeJob {
    var partStart: Double {
        if case .video(let start, _) = part { return start }
        return 0
    }

    var partEnd: Double? {
        if case .video(_, let end) = part { return end }
        return nil
    }

    /// The index of a part's first segment on the grid (its start is a segment boundary).
    var firstSegmentIndex: Int {
        guard case .video(let start, _) = part, start > 0 else { return 0 }
        return boundaries.grid.segmentIndex(at: start + 0.001)
    }

    func checkPartStreams() throws {
        switch part {
        case .whole: return
        case .audio where audioIndex == nil:
            throw TranscodeError(file: inputName, reason: "the audio part: no decodable audio stream (streams: \(input.streamSummary))")
        case .video where videoIndex == nil:
            throw TranscodeError(file: inputName, reason: "a video part: no decodable video stream (streams: \(input.streamSummary))")
        default: return
        }
    }

    /// A video part's poster is written by the part whose stretch holds its instant; each part
    /// makes the storyboard's thumbnails of its stretch, on sheets of its own.
    func makeStills(geometry: SourceGeometry) throws -> StillsWriter? {
        guard case .video(let start, let end) = part else {
            return try StillsWriter(staging: staging, geometry: geometry, duration: input.duration, posterTime: posterTime)
        }
        let instant = posterTime ?? min((input.duration ?? 0) * 0.1, 10)
        let holdsPoster = instant + 0.001 >= start && (end.map { instant + 0.001 < $0 } ?? true)
        return try StillsWriter(staging: staging, geometry: geometry, duration: input.duration, posterTime: instant, part: (start, holdsPoster))
    }

    /// Seeks a video part to the keyframe at or before its start (the frames between are decoded
    /// and dropped).
    func seekToPartStart() throws {
        guard case .video(let start, _) = part, start > 0, let videoIndex else { return }
        let timeBase = input.stream(videoIndex).pointee.time_base
        let unit = av_q2d(timeBase)
        guard unit.isFinite, unit > 0 else { throw TranscodeError(file: inputName, reason: "a stream has no valid time base") }
        let target = Int64(((start + originSeconds) / unit).rounded(.down))
        // A seek that fails leaves the reader at the start: slower, not wrong.
        if av_seek_frame(input.context, videoIndex, target, AVSEEK_FLAG_BACKWARD) < 0 { rewound = true }
    }

    /// Reads again from the source's start when the seek landed past the part's first frame.
    func rewind() throws {
        needsRewind = false
        rewound = true
        guard av_seek_frame(input.context, -1, Int64.min / 2, AVSEEK_FLAG_BACKWARD) >= 0
            || avformat_seek_file(input.context, -1, Int64.min, 0, 0, 0) >= 0 else {
            throw TranscodeError(file: inputName, reason: "cannot seek back to read the part from \(partStart) s")
        }
        if let decoder = videoDecoder { avcodec_flush_buffers(decoder.pointer) }
        lastVideoPTS = nil
        partFramesSeen = 0
    }

    /// Whether a decoded picture at `seconds` is encoded: a video part keeps its stretch, the
    /// same frames on either side of every boundary the whole would put there.
    func keepsFrame(at seconds: Double) -> Bool {
        guard case .video(let start, let end) = part else { return true }
        // A rewind is due: nothing more from where the seek landed.
        if needsRewind { return false }
        let slack = 0.001
        if let end, seconds + slack >= end {
            reachedPartEnd = true
            return false
        }
        defer { partFramesSeen += 1 }
        if partFramesSeen == 0, !rewound, start > 0, seconds > start + slack {
            // The seek went past the start (an index that lies): read it all from the beginning.
            needsRewind = true
            return false
        }
        return seconds + slack >= start
    }

    /// A part's summary: its manifest instead of playlists (the job that split the source
    /// writes those, from every part's).
    func partSummary(_ summary: TranscodeSummary, writers: [RenditionWriter], cues: [StoryboardIndex.Cue]) throws -> TranscodeSummary {
        var summary = summary
        let plans = Dictionary(renditionPlans.map { ($0.rung.name, $0) }, uniquingKeysWith: { first, _ in first })
        var renditions: [PartManifest.Rendition] = []
        for writer in writers {
            guard !writer.segments.isEmpty else {
                throw TranscodeError(file: inputName, reason: "too little decodable media for one segment in \(part.argument) (rendition \(writer.name))")
            }
            let plan = plans[writer.name]
            var codecs: [String] = []
            if plan != nil {
                guard let codec = writer.videoCodecString else {
                    throw TranscodeError(file: inputName, reason: "rendition \(writer.name): no H.264 sequence parameter set in the output")
                }
                codecs.append(codec)
            } else {
                codecs.append("mp4a.40.2")
            }
            renditions.append(PartManifest.Rendition(
                name: writer.name, width: plan?.width, height: plan?.height, codecs: codecs,
                frameRate: plan != nil && frameRate.num > 0 && frameRate.den > 0 ? av_q2d(frameRate) : nil,
                segments: writer.segments.map {
                    PartManifest.Segment(index: $0.index, file: $0.fileName, duration: $0.duration, size: $0.size, key: $0.keyID, iv: Digest.hex($0.iv))
                }
            ))
        }
        summary.part = PartManifest(renditions: renditions, frames: framesDecoded, poster: summary.poster, warnings: summary.warnings)
        summary.part?.storyboard = cues.isEmpty ? nil : cues
        summary.renditions = []
        summary.storyboard = nil
        return summary
    }
}
