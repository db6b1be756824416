import Foundation

/// A storyboard's index, `storyboard.vtt`: one WebVTT cue a thumbnail, naming its sprite sheet and
/// its place there (`#xywh=`), the form video.js, Plyr, JW Player and Mux read for seek-bar
/// previews. Written whole by a transcode, or from the cues of a split transcode's parts.
public enum StoryboardIndex {
    public static let fileName = "storyboard.vtt"

    /// One thumbnail: its time span, seconds, and where it is.
    public struct Cue: Codable, Sendable, Equatable {
        public var start: Double
        public var end: Double
        /// The sheet, relative to the version (`storyboard/…jpg`).
        public var sheet: String
        public var x: Int
        public var y: Int
        public var width: Int
        public var height: Int

        enum CodingKeys: String, CodingKey {
            case start, end, sheet, x, y, width = "w", height = "h"
        }

        public init(start: Double, end: Double, sheet: String, x: Int, y: Int, width: Int, height: Int) {
            self.start = start
            self.end = end
            self.sheet = sheet
            self.x = x
            self.y = y
            self.width = width
            self.height = height
        }
    }

    public static func render(_ cues: [Cue]) -> String {
        var vtt = "WEBVTT\n"
        for cue in cues {
            vtt += "\n\(timestamp(cue.start)) --> \(timestamp(cue.end))\n\(cue.sheet)#xywh=\(cue.x),\(cue.y),\(cue.width),\(cue.height)\n"
        }
        return vtt
    }

    /// WebVTT's `hh:mm:ss.ttt`.
    public static func timestamp(_ seconds: Double) -> String {
        let milliseconds = Int((seconds * 1000).rounded())
        return String(format: "%02d:%02d:%02d.%03d", milliseconds / 3_600_000, milliseconds / 60_000 % 60, milliseconds / 1000 % 60, milliseconds % 1000)
    }
}
