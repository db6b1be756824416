import Profiles
import Testing
@testable import Media

/// Chunks start on the segment grid, so each chunk's segments continue the last's; a short tail
/// joins the chunk before it rather than being a chunk of its own.
@Suite("split planning: chunks on the segment grid")
struct SplitPlannerTests {
    static func grid(segment: Double, startup: [Double] = []) -> SegmentGrid {
        var profile = Profile(name: "t", segmentDuration: segment, keyframeInterval: segment > 2 ? 2 : segment, rungs: [], audio: nil)
        profile.startupSegments = startup
        return SegmentGrid(profile: profile)
    }

    @Test("a 5-minute source in 60 s chunks of 6 s segments after [1, 1, 2, 2]: five chunks on segment starts")
    func defaultLadder() {
        let grid = Self.grid(segment: 6, startup: [1, 1, 2, 2])
        #expect(SplitPlanner.chunkStarts(duration: 300, chunkDuration: 60, grid: grid) == [0, 60, 120, 180, 240])
    }

    @Test("a boundary off the grid moves to the next segment start")
    func offGrid() {
        // Startup segments end at 5 s, then 4 s segments: 5, 9, 13 … so 12 becomes 13.
        let grid = Self.grid(segment: 4, startup: [1, 2, 2])
        #expect(SplitPlanner.chunkStarts(duration: 40, chunkDuration: 12, grid: grid) == [0, 13, 25])
        #expect(grid.segmentStart(atOrAfter: 12) == 13 && grid.segmentStart(atOrAfter: 13) == 13 && grid.segmentStart(atOrAfter: 0.5) == 1)
    }

    @Test("a tail shorter than half a chunk stays with the chunk before; a source under one and a half chunks is not split")
    func shortTail() {
        let grid = Self.grid(segment: 2)
        #expect(SplitPlanner.chunkStarts(duration: 40, chunkDuration: 12, grid: grid) == [0, 12, 24])
        #expect(SplitPlanner.chunkStarts(duration: 17.9, chunkDuration: 12, grid: grid) == [0])
        #expect(SplitPlanner.chunkStarts(duration: 18, chunkDuration: 12, grid: grid) == [0, 12])
    }

    @Test("the part argument: audio, or video with a start and an optional end")
    func partArgument() {
        #expect(TranscodePart(argument: "audio") == .audio)
        #expect(TranscodePart(argument: "video:60.0:120.0") == .video(start: 60, end: 120))
        #expect(TranscodePart(argument: "video:60:") == .video(start: 60, end: nil))
        for bad in ["video", "video:60", "video:-1:", "video:60:30", "video:nan:", "whole", "video:1:2:3"] {
            #expect(TranscodePart(argument: bad) == nil, "\(bad)")
        }
        #expect(TranscodePart(argument: TranscodePart.video(start: 12, end: nil).argument) == .video(start: 12, end: nil))
    }
}
