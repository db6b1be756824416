/// What a finished transcode published: the `asset.json` of every version, what `transcode
/// --json` prints, and what a transcode child reports to its worker. In the store because all three
/// read or write it, and the store is the module they all see.
public struct TranscodeSummary: Codable, Sendable, Equatable {
    public struct Rendition: Codable, Sendable, Equatable {
        public var name: String
        public var width: Int?
        public var height: Int?
        public var codecs: [String]
        /// Peak segment bit rate, bits/s, as BANDWIDTH.
        public var bandwidth: Int
        public var averageBandwidth: Int
        public var frameRate: Double?
        public var segments: Int
        public var bytes: Int

        enum CodingKeys: String, CodingKey {
            case name, width, height, codecs, bandwidth, averageBandwidth = "average_bandwidth"
            case frameRate = "frame_rate", segments, bytes
        }

        public init(
            name: String, width: Int?, height: Int?, codecs: [String], bandwidth: Int, averageBandwidth: Int,
            frameRate: Double?, segments: Int, bytes: Int
        ) {
            self.name = name
            self.width = width
            self.height = height
            self.codecs = codecs
            self.bandwidth = bandwidth
            self.averageBandwidth = averageBandwidth
            self.frameRate = frameRate
            self.segments = segments
            self.bytes = bytes
        }
    }

    public var assetID: String
    /// The published version; nil in the manifest written before publishing.
    public var version: String?
    public var profile: String
    public var durationSeconds: Double
    public var segments: Int
    public var wallSeconds: Double
    public var renditions: [Rendition]
    public var keys: Int
    public var warnings: [String]
    /// The poster (`poster.jpg`), when the source has video.
    public var poster: String?
    /// The storyboard's WebVTT index (`storyboard.vtt`), whose cues name its sprite sheets.
    public var storyboard: String?
    /// A part of a split transcode (``PartManifest``): what it wrote, for the job that assembles
    /// the version. Only a part's child reports one; no `asset.json` has it.
    public var part: PartManifest?

    enum CodingKeys: String, CodingKey {
        case assetID = "asset_id", version, profile, durationSeconds = "duration", segments
        case wallSeconds = "wall_time", renditions, keys, warnings, poster, storyboard, part
    }

    public init(
        assetID: String, version: String?, profile: String, durationSeconds: Double, segments: Int, wallSeconds: Double,
        renditions: [Rendition], keys: Int, warnings: [String]
    ) {
        self.assetID = assetID
        self.version = version
        self.profile = profile
        self.durationSeconds = durationSeconds
        self.segments = segments
        self.wallSeconds = wallSeconds
        self.renditions = renditions
        self.keys = keys
        self.warnings = warnings
    }
}
