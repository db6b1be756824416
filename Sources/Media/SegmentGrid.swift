import Profiles

/// Where segments start and where IDR frames go, in seconds from the source's start: the same
/// instants for every rendition and for every piece of a source encoded apart, so their segments
/// line up. The profile's startup segments come first (short, so a growing asset is playable
/// sooner), then one segment every `segmentDuration`; IDR frames fall on every segment start and
/// every `keyframeInterval`.
struct SegmentGrid {
    /// The ends of the startup segments, ascending.
    let startupEnds: [Double]
    let segmentDuration: Double
    let keyframeInterval: Double

    init(profile: Profile) {
        var end = 0.0
        startupEnds = profile.startupSegments.map { end += $0; return end }
        segmentDuration = profile.segmentDuration
        keyframeInterval = profile.keyframeInterval
    }

    /// Where the regular segments begin.
    private var regularStart: Double { startupEnds.last ?? 0 }

    /// The index of the segment holding the instant `seconds`.
    func segmentIndex(at seconds: Double) -> Int {
        guard seconds >= regularStart else {
            return startupEnds.firstIndex { seconds < $0 } ?? startupEnds.count
        }
        return startupEnds.count + Int(((seconds - regularStart) / segmentDuration).rounded(.down))
    }

    /// The first IDR instant after `seconds`.
    func keyframe(after seconds: Double) -> Double {
        let regular = ((seconds / keyframeInterval).rounded(.down) + 1) * keyframeInterval
        guard let startup = startupEnds.first(where: { $0 > seconds }) else { return regular }
        return min(startup, regular)
    }

    /// The first segment start at or after `seconds`.
    func segmentStart(atOrAfter seconds: Double) -> Double {
        if let startup = ([0] + startupEnds).first(where: { $0 + 1e-9 >= seconds }) { return startup }
        let steps = ((seconds - regularStart) / segmentDuration - 1e-9).rounded(.up)
        return regularStart + steps * segmentDuration
    }
}
