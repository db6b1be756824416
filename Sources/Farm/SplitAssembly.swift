import Foundation
import HLS
import Jobs
import Store

/// The playlists and `asset.json` of a split transcode, built from its parts' manifests: each
/// video rendition's segments from every chunk in order, one playlist per rung; the audio, encoded
/// once for the whole source, as an `EXT-X-MEDIA` rendition every variant names. The parts are
/// checked to meet: the same renditions in every chunk, each chunk's segments numbered after the
/// last's.
///
/// While the leading chunks are done and the rest are not, the same playlists are written
/// growing: `EVENT` playlists of those chunks (and the audio as far as they reach) that start
/// players at the beginning; a version shown so ends as `EVENT` with `EXT-X-ENDLIST`, the one
/// change RFC 8216 §6.2.1 allows besides appending.
struct SplitAssembly {
    static let audioGroup = "audio"

    /// What the playlists are.
    enum Form {
        /// Whole, never shown growing: VOD playlists.
        case whole
        /// The leading chunks of a version shown while it grows: no `asset.json`, no ENDLIST.
        case growing
        /// Whole, after it was shown growing: EVENT playlists that end.
        case grown
    }

    let asset: AssetID
    let profile: String
    let chunks: [PartManifest]
    let audio: PartManifest?

    /// Why the parts do not make one version.
    struct Mismatch: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// Every file to write, by name: the media playlists, `asset.json`, and `master.m3u8` (last:
    /// a version is nothing without it).
    func files(wallSeconds: Double, form: Form = .whole) throws -> [(name: String, bytes: [UInt8])] {
        guard let first = chunks.first else { throw Mismatch(reason: "no chunk") }
        var files: [(String, [UInt8])] = []
        var summary = TranscodeSummary(
            assetID: asset.rawValue, version: nil, profile: profile, durationSeconds: 0, segments: 0, wallSeconds: wallSeconds,
            renditions: [], keys: 0, warnings: Array(Set(chunks.flatMap(\.warnings) + (audio?.warnings ?? []))).sorted()
        )
        var keys: Set<String> = []
        let audioRendition = try audio.map { manifest -> (PartManifest.Rendition, peak: Double, average: Double) in
            guard manifest.renditions.count == 1, let rendition = manifest.renditions.first else {
                throw Mismatch(reason: "the audio part has \(manifest.renditions.count) renditions, not one")
            }
            return (rendition, Self.peak(rendition.segments), Self.average(rendition.segments))
        }
        var lastIndex = 0
        var variants: [VariantStream] = []
        for rendition in first.renditions {
            let segments = try joined(rendition.name)
            lastIndex = max(lastIndex, segments.last?.index ?? 0)
            files.append(("\(rendition.name)/index.m3u8", Self.playlist(segments, form: form)))
            keys.formUnion(segments.map(\.key))
            let peak = Self.peak(segments) + (audioRendition?.peak ?? 0)
            let average = Self.average(segments) + (audioRendition?.average ?? 0)
            let codecs = rendition.codecs + (audioRendition?.0.codecs ?? [])
            variants.append(VariantStream(
                uri: "\(rendition.name)/index.m3u8", bandwidth: Int(peak.rounded(.up)), averageBandwidth: Int(average.rounded(.up)),
                codecs: codecs, resolution: rendition.width.flatMap { width in rendition.height.map { Resolution(width: width, height: $0) } },
                frameRate: rendition.frameRate, audioGroup: audioRendition == nil ? nil : Self.audioGroup
            ))
            summary.renditions.append(TranscodeSummary.Rendition(
                name: rendition.name, width: rendition.width, height: rendition.height, codecs: codecs,
                bandwidth: Int(peak.rounded(.up)), averageBandwidth: Int(average.rounded(.up)), frameRate: rendition.frameRate,
                segments: segments.count, bytes: segments.reduce(0) { $0 + $1.size }
            ))
            summary.durationSeconds = max(summary.durationSeconds, segments.reduce(0) { $0 + $1.duration })
        }
        var renditions: [Rendition] = []
        if let (rendition, peak, average) = audioRendition {
            // Growing, as far as the chunks listed reach (the grid is the same).
            let listed = form == .growing ? rendition.segments.filter { $0.index <= lastIndex } : rendition.segments
            files.append(("\(rendition.name)/index.m3u8", Self.playlist(listed, form: form)))
            keys.formUnion(rendition.segments.map(\.key))
            renditions.append(Rendition(
                type: .audio, groupID: Self.audioGroup, name: rendition.name, isDefault: true, autoselect: true, uri: "\(rendition.name)/index.m3u8"
            ))
            summary.renditions.append(TranscodeSummary.Rendition(
                name: rendition.name, width: nil, height: nil, codecs: rendition.codecs, bandwidth: Int(peak.rounded(.up)),
                averageBandwidth: Int(average.rounded(.up)), frameRate: nil, segments: rendition.segments.count,
                bytes: rendition.segments.reduce(0) { $0 + $1.size }
            ))
        }
        summary.segments = summary.renditions.reduce(0) { $0 + $1.segments }
        summary.keys = keys.count
        summary.poster = chunks.compactMap(\.poster).first
        // Each chunk's thumbnails, on its own sheets, in one index: written with the whole version.
        let cues = chunks.flatMap { $0.storyboard ?? [] }
        if form != .growing, !cues.isEmpty {
            files.append((StoryboardIndex.fileName, Array(StoryboardIndex.render(cues).utf8)))
            summary.storyboard = StoryboardIndex.fileName
        }
        if form != .growing {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            files.append(("asset.json", Array(try encoder.encode(summary))))
        }
        let master = MultivariantPlaylist(version: nil, independentSegments: true, renditions: renditions, variants: variants)
        files.append(("master.m3u8", Array(master.render().utf8)))
        return files
    }

    /// A rung's segments from every chunk, checked to follow on.
    private func joined(_ name: String) throws -> [PartManifest.Segment] {
        var segments: [PartManifest.Segment] = []
        for (index, chunk) in chunks.enumerated() {
            guard let rendition = chunk.renditions.first(where: { $0.name == name }) else {
                throw Mismatch(reason: "chunk \(index) has no rendition \(name)")
            }
            guard chunk.renditions.count == chunks[0].renditions.count else {
                throw Mismatch(reason: "chunk \(index) has \(chunk.renditions.count) renditions, chunk 0 has \(chunks[0].renditions.count)")
            }
            // Numbered on from the last chunk's (a gap in the source may skip a number, never repeat one).
            let after = segments.last?.index ?? -1
            guard let first = rendition.segments.first?.index, first > after else {
                throw Mismatch(reason: "chunk \(index), rendition \(name): starts at segment \(rendition.segments.first?.index ?? -1), not after \(after)")
            }
            segments += rendition.segments
        }
        return segments
    }

    private static func playlist(_ segments: [PartManifest.Segment], form: Form) -> [UInt8] {
        let listed = segments.map { segment in
            MediaSegment(
                duration: segment.duration, uri: segment.file,
                key: SegmentKey(method: .aes128, uri: "../keys/\(segment.key)", iv: bytes(hex: segment.iv), keyFormat: nil)
            )
        }
        let playlist = MediaPlaylist(
            version: nil, targetDuration: nil, mediaSequence: 0, playlistType: form == .whole ? .vod : .event, independentSegments: true,
            startOffset: form == .whole ? nil : 0, endList: form != .growing, segments: listed
        )
        return Array(playlist.render().utf8)
    }

    /// Peak segment bit rate, bits/s.
    private static func peak(_ segments: [PartManifest.Segment]) -> Double {
        segments.map { Double($0.size * 8) / max($0.duration, 0.001) }.max() ?? 0
    }

    private static func average(_ segments: [PartManifest.Segment]) -> Double {
        let seconds = segments.reduce(0) { $0 + $1.duration }
        return seconds > 0 ? Double(segments.reduce(0) { $0 + $1.size } * 8) / seconds : 0
    }

    /// Hex digits (already validated) to bytes.
    private static func bytes(hex: String) -> [UInt8] {
        let digits = Array(hex.utf8).map { $0 <= 57 ? $0 - 48 : $0 - 87 }
        return stride(from: 0, to: digits.count - 1, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
    }
}
