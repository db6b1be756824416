import Profiles

/// The picture geometry of a source video stream, as a viewer sees it.
public struct SourceGeometry: Sendable, Equatable {
    /// Coded size: what the decoder outputs.
    public var codedWidth: Int
    public var codedHeight: Int
    /// Sample (pixel) aspect ratio; 1 when unknown or square.
    public var sampleAspectRatio: Double
    /// Clockwise rotation to apply for display: 0, 90, 180 or 270.
    public var rotation: Int

    public init(codedWidth: Int, codedHeight: Int, sampleAspectRatio: Double = 1, rotation: Int = 0) {
        self.codedWidth = codedWidth
        self.codedHeight = codedHeight
        self.sampleAspectRatio = sampleAspectRatio > 0 ? sampleAspectRatio : 1
        self.rotation = rotation
    }

    var transposes: Bool { rotation == 90 || rotation == 270 }

    /// Display size in square pixels, after the sample aspect ratio and the rotation.
    public var displayWidth: Double {
        transposes ? Double(codedHeight) : Double(codedWidth) * sampleAspectRatio
    }

    public var displayHeight: Double {
        transposes ? Double(codedWidth) * sampleAspectRatio : Double(codedHeight)
    }

    public var isPortrait: Bool { displayHeight > displayWidth }
}

/// A rung of the profile placed on a particular source: its output size and the size the scaler
/// produces before rotation.
public struct PlannedRung: Sendable, Equatable {
    public var rung: VideoRung
    /// Output (display) size, even in both directions.
    public var width: Int
    public var height: Int
    /// True when the source is smaller than the rung's box, so the rung keeps the source size.
    public var keepsSourceSize: Bool

    /// The scaler's output size: the output size before a 90° or 270° rotation transposes it.
    func scaledSize(for geometry: SourceGeometry) -> (width: Int, height: Int) {
        geometry.transposes ? (height, width) : (width, height)
    }
}

/// Fits a profile's rungs to a source.
///
/// Each rung's size is a box (transposed for portrait sources); the picture is fitted inside it
/// keeping its aspect ratio, never larger than the source. Several rungs whose boxes are all at least
/// the source's size would all come out at the source size with different bitrates; only the
/// smallest of them is kept, so a small source gets one rung at a bitrate made for its size instead
/// of several copies of itself.
public enum LadderPlanner {
    public static func plan(rungs: [VideoRung], for source: SourceGeometry) -> [PlannedRung] {
        let sourceWidth = source.displayWidth
        let sourceHeight = source.displayHeight
        let widthLimit = evenFloor(sourceWidth)
        let heightLimit = evenFloor(sourceHeight)

        var planned: [PlannedRung] = []
        var smallestClamped: PlannedRung?
        for rung in rungs {
            let (boxWidth, boxHeight) = source.isPortrait
                ? (Double(rung.height), Double(rung.width))
                : (Double(rung.width), Double(rung.height))
            let scale = min(boxWidth / sourceWidth, boxHeight / sourceHeight)
            if scale >= 1 {
                let candidate = PlannedRung(rung: rung, width: widthLimit, height: heightLimit, keepsSourceSize: true)
                if let current = smallestClamped, current.rung.width * current.rung.height <= rung.width * rung.height {
                    continue
                }
                smallestClamped = candidate
                continue
            }
            let width = min(widthLimit, evenRound(sourceWidth * scale))
            let height = min(heightLimit, evenRound(sourceHeight * scale))
            planned.append(PlannedRung(rung: rung, width: width, height: height, keepsSourceSize: false))
        }
        if let smallestClamped { planned.insert(smallestClamped, at: 0) }
        return planned.sorted {
            ($0.width * $0.height, $0.rung.bitrate) > ($1.width * $1.height, $1.rung.bitrate)
        }
    }

    static func evenFloor(_ value: Double) -> Int { max(2, Int(value) / 2 * 2) }
    static func evenRound(_ value: Double) -> Int { max(2, Int((value / 2).rounded()) * 2) }
}
