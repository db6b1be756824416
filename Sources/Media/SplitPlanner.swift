import CFFmpeg
import Foundation
import Profiles
import Store
import Vault

/// Decides whether a source is split across workers (``SplitPlan``): only when the profile has a
/// `chunk_duration`, the source has video and its container gives a duration of at least one and
/// a half chunks. Chunks start on the segment grid, so each chunk's segments continue the last's.
public enum SplitPlanner {
    /// The plan for `input`, or nil when it is transcoded whole.
    public static func plan(input source: TranscodeInput, profile: Profile, keyring: Keyring, limits: InputLimits, posterTime: Double?) throws -> SplitPlan? {
        guard let chunkDuration = profile.chunkDuration, !profile.rungs.isEmpty else { return nil }
        let input: InputFile
        do {
            input = try InputFile(source, keyring: keyring, limits: limits)
        } catch {
            throw TranscodeError(file: source.name, reason: error.reason, kind: .init(error))
        }
        guard input.bestStream(AVMEDIA_TYPE_VIDEO) != nil, let duration = input.duration else { return nil }
        let hasAudio = profile.audio != nil && input.bestStream(AVMEDIA_TYPE_AUDIO) != nil
        let starts = chunkStarts(duration: duration, chunkDuration: chunkDuration, grid: SegmentGrid(profile: profile))
        guard starts.count >= 2 else { return nil }
        let chunks = starts.enumerated().map { index, start in
            SplitPlan.Chunk(start: start, end: index + 1 < starts.count ? starts[index + 1] : nil)
        }
        return SplitPlan(duration: duration, chunks: chunks, audio: hasAudio, posterTime: posterTime ?? min(duration * 0.1, 10))
    }

    /// Where chunks start: 0, then the first segment boundary at or after each multiple of
    /// `chunkDuration`, while the chunk left after it would be at least half a chunk long.
    static func chunkStarts(duration: Double, chunkDuration: Double, grid: SegmentGrid) -> [Double] {
        var starts = [0.0]
        var next = chunkDuration
        while true {
            let boundary = grid.segmentStart(atOrAfter: next)
            guard boundary + chunkDuration / 2 <= duration, starts.count < SplitPlan.maxChunks else { break }
            starts.append(boundary)
            next = boundary + chunkDuration
        }
        return starts
    }
}
