import Profiles
import Testing
@testable import Media

/// Where segments start and IDR frames go: startup segments, then the regular grid, the same
/// instants for every rendition.
@Suite("segment grid")
struct SegmentGridTests {
    static func profile(startup: [Double]) -> Profile {
        var profile = Profile(name: "grid", segmentDuration: 6, keyframeInterval: 2, rungs: [], audio: nil)
        profile.startupSegments = startup
        return profile
    }

    @Test("startup segments of 1, 1, 2 and 2 s, then one every 6 s")
    func startupThenRegular() {
        let grid = SegmentGrid(profile: Self.profile(startup: [1, 1, 2, 2]))
        let starts: [(Double, Int)] = [(0, 0), (0.99, 0), (1, 1), (1.5, 1), (2, 2), (3.9, 2), (4, 3), (5.99, 3), (6, 4), (11.9, 4), (12, 5), (600, 4 + 99)]
        for (seconds, index) in starts { #expect(grid.segmentIndex(at: seconds) == index, "at \(seconds) s") }
        let keyframes: [(Double, Double)] = [(0, 1), (0.5, 1), (1, 2), (2, 4), (3, 4), (4, 6), (6, 8), (7.9, 8), (8, 10)]
        for (seconds, next) in keyframes { #expect(grid.keyframe(after: seconds) == next, "after \(seconds) s") }
    }

    @Test("no startup segments: the plain grid")
    func plain() {
        let grid = SegmentGrid(profile: Self.profile(startup: []))
        #expect(grid.segmentIndex(at: 0) == 0 && grid.segmentIndex(at: 5.9) == 0 && grid.segmentIndex(at: 6) == 1 && grid.segmentIndex(at: 13) == 2)
        #expect(grid.keyframe(after: 0) == 2 && grid.keyframe(after: 2) == 4 && grid.keyframe(after: 5.5) == 6)
    }

    @Test("startup segments that are not on the keyframe grid still get their IDR frames")
    func offGridStartup() {
        let grid = SegmentGrid(profile: Self.profile(startup: [0.5, 1.5]))
        #expect(grid.keyframe(after: 0) == 0.5 && grid.keyframe(after: 0.5) == 2 && grid.keyframe(after: 2) == 4)
        #expect(grid.segmentIndex(at: 0.4) == 0 && grid.segmentIndex(at: 0.5) == 1 && grid.segmentIndex(at: 2) == 2 && grid.segmentIndex(at: 8) == 3)
    }
}
