import Foundation

/// What one part of a split transcode wrote into the version it shares (a chunk's video
/// renditions over its stretch of the source, or the whole source's audio): every sealed segment
/// with what a playlist needs of it. The part's child reports it (in its `done` summary), its
/// worker records it on the part's job, and the job that split the upload assembles the
/// playlists from all of them. A child is not trusted: ``validated(expectedSegments:)`` checks
/// one before anything is built from it (fuzzed as `part-manifest`).
public struct PartManifest: Codable, Sendable, Equatable {
    public struct Segment: Codable, Sendable, Equatable {
        /// The segment's index in its rendition's playlist (the whole source's, not the part's).
        public var index: Int
        /// Its file, relative to the rendition's folder.
        public var file: String
        public var duration: Double
        /// Bytes at rest (ciphertext).
        public var size: Int
        /// The content key's id (`keys/<id>.key`).
        public var key: String
        /// The CBC IV, 32 hex digits.
        public var iv: String

        public init(index: Int, file: String, duration: Double, size: Int, key: String, iv: String) {
            self.index = index
            self.file = file
            self.duration = duration
            self.size = size
            self.key = key
            self.iv = iv
        }
    }

    public struct Rendition: Codable, Sendable, Equatable {
        public var name: String
        public var width: Int?
        public var height: Int?
        /// CODECS of the rendition's own stream (a video rung's `avc1.…`, or `mp4a.40.2`).
        public var codecs: [String]
        public var frameRate: Double?
        public var segments: [Segment]

        enum CodingKeys: String, CodingKey {
            case name, width, height, codecs, frameRate = "frame_rate", segments
        }

        public init(name: String, width: Int?, height: Int?, codecs: [String], frameRate: Double?, segments: [Segment]) {
            self.name = name
            self.width = width
            self.height = height
            self.codecs = codecs
            self.frameRate = frameRate
            self.segments = segments
        }
    }

    public var renditions: [Rendition]
    /// Video frames encoded (0 for audio).
    public var frames: Int
    /// The poster, when this part's stretch held the poster's instant.
    public var poster: String?
    /// The storyboard's cues of this part's stretch, on its own sheets.
    public var storyboard: [StoryboardIndex.Cue]?
    public var warnings: [String]

    public init(renditions: [Rendition], frames: Int, poster: String?, warnings: [String]) {
        self.renditions = renditions
        self.frames = frames
        self.poster = poster
        self.warnings = warnings
    }

    /// Limits on what a part may claim, so a hostile one cannot make an absurd playlist.
    static let maxRenditions = 16
    static let maxSegments = 100_000
    static let maxIndex = 10_000_000

    /// The manifest when every field is one a playlist can be built from: safe file names,
    /// known key ids and IVs, finite positive durations, contiguous indexes; else why not.
    public func validated() -> Result<PartManifest, PartManifestError> {
        guard !renditions.isEmpty, renditions.count <= Self.maxRenditions else {
            return .failure(.init("has \(renditions.count) renditions; 1…\(Self.maxRenditions) are accepted"))
        }
        var names: Set<String> = []
        for rendition in renditions {
            guard Self.isPlainName(rendition.name), names.insert(rendition.name).inserted else {
                return .failure(.init("rendition name '\(rendition.name.prefix(40))' is not a plain, unique name"))
            }
            guard !rendition.segments.isEmpty, rendition.segments.count <= Self.maxSegments else {
                return .failure(.init("rendition \(rendition.name) has \(rendition.segments.count) segments"))
            }
            guard rendition.codecs.count <= 4, rendition.codecs.allSatisfy(Self.isCodec) else {
                return .failure(.init("rendition \(rendition.name): CODECS \(rendition.codecs.joined(separator: ",").prefix(60)) are not plain codec names"))
            }
            if let width = rendition.width, !(1...16384).contains(width) { return .failure(.init("rendition \(rendition.name): width \(width)")) }
            if let height = rendition.height, !(1...16384).contains(height) { return .failure(.init("rendition \(rendition.name): height \(height)")) }
            if let rate = rendition.frameRate, !(rate > 0 && rate <= 1000) { return .failure(.init("rendition \(rendition.name): frame rate \(rate)")) }
            let first = rendition.segments[0].index
            for (offset, segment) in rendition.segments.enumerated() {
                let place = "rendition \(rendition.name), segment \(segment.index)"
                guard (0...Self.maxIndex).contains(segment.index) else { return .failure(.init("\(place): index out of 0…\(Self.maxIndex)")) }
                guard segment.index - offset == first else { return .failure(.init("\(place): indexes are not contiguous")) }
                guard Self.isPlainName(segment.file), segment.file.hasSuffix(".ts") else { return .failure(.init("\(place): file '\(segment.file.prefix(40))' is not a plain .ts name")) }
                guard segment.duration.isFinite, segment.duration >= 0, segment.duration <= 3600 else { return .failure(.init("\(place): duration \(segment.duration)")) }
                guard segment.size > 0, segment.size <= 1 << 32 else { return .failure(.init("\(place): size \(segment.size)")) }
                guard Self.isHex(segment.key, count: 32) else { return .failure(.init("\(place): key id '\(segment.key.prefix(40))' is not 32 hex digits")) }
                guard Self.isHex(segment.iv, count: 32) else { return .failure(.init("\(place): IV is not 32 hex digits")) }
            }
        }
        if let poster, poster != "poster.jpg" { return .failure(.init("poster '\(poster.prefix(40))' is not poster.jpg")) }
        for cue in storyboard ?? [] {
            let sheet = cue.sheet.hasPrefix("storyboard/") ? String(cue.sheet.dropFirst("storyboard/".count)) : ""
            guard Self.isPlainName(sheet), sheet.hasSuffix(".jpg") else { return .failure(.init("storyboard sheet '\(cue.sheet.prefix(60))' is not storyboard/<name>.jpg")) }
            guard cue.start.isFinite, cue.end.isFinite, cue.start >= 0, cue.end >= cue.start, cue.end <= 7 * 86_400 else {
                return .failure(.init("storyboard cue \(cue.start)–\(cue.end) is not a span of seconds"))
            }
            guard [cue.x, cue.y, cue.width, cue.height].allSatisfy({ (0...65_536).contains($0) }) else { return .failure(.init("storyboard cue's place is out of range")) }
        }
        guard (storyboard?.count ?? 0) <= Self.maxSegments else { return .failure(.init("too many storyboard cues")) }
        guard frames >= 0 else { return .failure(.init("frames \(frames)")) }
        return .success(self)
    }

    /// Letters, digits, `.`, `_` and `-`, not starting with a dot: a name that is one path component.
    static func isPlainName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...64).contains(bytes.count), bytes[0] != UInt8(ascii: ".") else { return false }
        return bytes.allSatisfy { byte in
            (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
    }

    static func isCodec(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return (1...32).contains(bytes.count) && bytes.allSatisfy { byte in
            (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 0x2E
        }
    }

    static func isHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// The manifest as one line of JSON (what a part's job records).
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Parses and validates a recorded manifest.
    public static func parse(_ text: String) -> Result<PartManifest, PartManifestError> {
        guard let manifest = try? JSONDecoder().decode(PartManifest.self, from: Data(text.utf8)) else {
            return .failure(.init("is not a part manifest (JSON of renditions and segments)"))
        }
        return manifest.validated()
    }
}

/// Why a part's manifest cannot be used.
public struct PartManifestError: Error, CustomStringConvertible, Sendable, Equatable {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
