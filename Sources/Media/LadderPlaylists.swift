import Foundation
import HLS
import Profiles
import Store

/// The playlists of a ladder and its `asset.json`.
///
/// Written once at the end of a transcode; or, for a version shown while it grows (`growing`),
/// first as soon as every rendition has a segment (the multivariant playlist last, then
/// `onPlayable`), again for a rendition each time it seals one (an EVENT playlist that starts
/// players at its beginning, `EXT-X-START:TIME-OFFSET=0`), and whole at the end. A growing
/// playlist only ever gains segments and finally `EXT-X-ENDLIST`, the one change RFC 8216 §6.2.1
/// allows besides appending: its type stays EVENT, which with ENDLIST is a finished presentation.
final class LadderPlaylists {
    struct Output {
        let writer: RenditionWriter
        /// nil for the audio-only rendition.
        let plan: PlannedRung?
    }

    private let staging: StagingArea
    private let outputs: [Output]
    private let inputName: String
    private let audioBitrate: Int?
    private let frameRate: Double?
    private let targetDuration: Int
    private let onPlayable: (() -> Void)?
    /// The growing playlists are written: the version may be shown.
    private(set) var shown = false

    init(
        staging: StagingArea, outputs: [Output], inputName: String, audioBitrate: Int?, frameRate: Double?,
        segmentDuration: Double, growing: Bool, onPlayable: (() -> Void)?
    ) {
        self.staging = staging
        self.outputs = outputs
        self.inputName = inputName
        self.audioBitrate = audioBitrate
        self.frameRate = frameRate
        targetDuration = Int(segmentDuration.rounded(.up))
        self.onPlayable = onPlayable
        guard growing else { return }
        for output in outputs {
            output.writer.onSealed = { [unowned self] writer in try self.sealed(writer) }
        }
    }

    private func sealed(_ writer: RenditionWriter) throws {
        if shown {
            try staging.replace(mediaPlaylist(writer, final: false).render(), at: Self.playlistName(writer))
            return
        }
        guard outputs.allSatisfy({ !$0.writer.segments.isEmpty }) else { return }
        for output in outputs {
            try staging.replace(mediaPlaylist(output.writer, final: false).render(), at: Self.playlistName(output.writer))
        }
        // Last: a version is shown only with its multivariant playlist.
        try staging.replace(try multivariant(outputs.map { try variant($0, final: false) }).render(), at: "master.m3u8")
        shown = true
        onPlayable?()
    }

    static func playlistName(_ writer: RenditionWriter) -> String { "\(writer.name)/index.m3u8" }

    private func mediaPlaylist(_ writer: RenditionWriter, final: Bool) -> MediaPlaylist {
        let segments = writer.segments.map { segment in
            MediaSegment(
                duration: segment.duration, uri: segment.fileName,
                key: SegmentKey(method: .aes128, uri: "../keys/\(segment.keyID)", iv: segment.iv, keyFormat: nil)
            )
        }
        guard shown || !final else {
            // Never shown growing: a plain VOD playlist.
            return MediaPlaylist(version: nil, targetDuration: nil, mediaSequence: 0, playlistType: .vod, independentSegments: true, endList: true, segments: segments)
        }
        // A growing playlist's target duration must not change: the profile's, unless a segment
        // came out longer (a source with sparse frames).
        let longest = segments.map { Int($0.duration.rounded()) }.max() ?? 0
        return MediaPlaylist(
            version: nil, targetDuration: max(targetDuration, longest), mediaSequence: 0, playlistType: .event,
            independentSegments: true, startOffset: 0, endList: final, segments: segments
        )
    }

    private func multivariant(_ variants: [VariantStream]) -> MultivariantPlaylist {
        MultivariantPlaylist(version: nil, independentSegments: true, renditions: [], variants: variants)
    }

    /// A rendition's EXT-X-STREAM-INF. Its peak is measured on the segments; while they are few
    /// (a growing version), it is at least what the profile allows (the rung's maxrate and the
    /// audio, and a fifth for MPEG-TS packaging and the bursts a VBV buffer allows in a short
    /// segment), so players do not pick a rung they cannot keep up with.
    private func variant(_ output: Output, final: Bool) throws -> VariantStream {
        let segments = output.writer.segments
        var peak = segments.map { Double($0.size * 8) / max($0.duration, 0.001) }.max() ?? 0
        let totalSeconds = segments.reduce(0) { $0 + $1.duration }
        var average = totalSeconds > 0 ? Double(segments.reduce(0) { $0 + $1.size } * 8) / totalSeconds : 0
        if !final {
            let declared = Double((output.plan?.rung.maxrate ?? 0) + (audioBitrate ?? 0)) * 1.2
            peak = max(peak, declared)
            average = max(average, declared)
        }
        var codecs: [String] = []
        if output.plan != nil {
            guard let videoCodec = output.writer.videoCodecString else {
                throw TranscodeError(file: inputName, reason: "rendition \(output.writer.name): no H.264 sequence parameter set in the output")
            }
            codecs.append(videoCodec)
        }
        if audioBitrate != nil { codecs.append("mp4a.40.2") }
        return VariantStream(
            uri: Self.playlistName(output.writer), bandwidth: Int(peak.rounded(.up)), averageBandwidth: Int(average.rounded(.up)),
            codecs: codecs, resolution: output.plan.map { Resolution(width: $0.width, height: $0.height) },
            frameRate: output.plan != nil ? frameRate : nil, audioGroup: nil
        )
    }

    /// Writes every playlist whole, `asset.json` (`summary` with the renditions filled in), and
    /// the multivariant playlist last: an asset without one is never published.
    func finish(_ summary: TranscodeSummary) throws -> TranscodeSummary {
        var summary = summary
        var variants: [VariantStream] = []
        for output in outputs {
            let writer = output.writer
            guard !writer.segments.isEmpty else {
                throw TranscodeError(file: inputName, reason: "too little decodable media for one segment (rendition \(writer.name))")
            }
            try write(mediaPlaylist(writer, final: true).render(), to: Self.playlistName(writer))
            let variant = try variant(output, final: true)
            variants.append(variant)
            summary.renditions.append(TranscodeSummary.Rendition(
                name: writer.name, width: output.plan?.width, height: output.plan?.height, codecs: variant.codecs,
                bandwidth: variant.bandwidth, averageBandwidth: variant.averageBandwidth ?? 0,
                frameRate: variant.frameRate, segments: writer.segments.count, bytes: writer.segments.reduce(0) { $0 + $1.size }
            ))
            summary.durationSeconds = max(summary.durationSeconds, writer.segments.reduce(0) { $0 + $1.duration })
        }
        summary.segments = summary.renditions.reduce(0) { $0 + $1.segments }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try staging.write(Array(try encoder.encode(summary)), to: "asset.json")
        try write(multivariant(variants).render(), to: "master.m3u8")
        return summary
    }

    /// A growing version's playlists exist already (and are being read): replaced in one rename.
    private func write(_ text: String, to relative: String) throws {
        if shown {
            try staging.replace(text, at: relative)
        } else {
            try staging.write(text, to: relative)
        }
    }
}
