/// A playlist that does not follow RFC 8216, with the 1-based line where the problem is.
public struct HLSParseError: Error, CustomStringConvertible, Sendable {
    /// The 1-based line number.
    public let line: Int
    /// What is wrong, without the line number.
    public let message: String

    /// Creates a parse error.
    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    /// `line 7: EXTINF duration 'abc' is not a number`
    public var description: String { "line \(line): \(message)" }
}

/// The EXT-X-KEY METHOD values this project writes and reads.
public enum EncryptionMethod: String, Sendable {
    case none = "NONE"
    case aes128 = "AES-128"
}

/// How a segment is encrypted (EXT-X-KEY).
///
/// A segment whose key is `nil` or has method `.none` is not encrypted; the parser returns `nil`
/// for segments under `METHOD=NONE`.
public struct SegmentKey: Sendable, Equatable {
    public var method: EncryptionMethod
    /// Where the player fetches the key. Required for AES-128.
    public var uri: String?
    /// The explicit 16-byte IV, written as `IV=0x` and 32 hex digits. `nil` means the player
    /// uses the media sequence number.
    public var iv: [UInt8]?
    /// KEYFORMAT; `nil` means "identity".
    public var keyFormat: String?

    public init(method: EncryptionMethod, uri: String? = nil, iv: [UInt8]? = nil, keyFormat: String? = nil) {
        self.method = method
        self.uri = uri
        self.iv = iv
        self.keyFormat = keyFormat
    }
}

/// EXT-X-BYTERANGE: a sub-range of the resource named by the segment URI.
public struct ByteRange: Sendable, Equatable {
    public var length: Int
    /// Start of the range; `nil` means right after the previous segment's range.
    public var offset: Int?

    public init(length: Int, offset: Int? = nil) {
        self.length = length
        self.offset = offset
    }
}

/// One segment of a media playlist.
public struct MediaSegment: Sendable, Equatable {
    /// Seconds (EXTINF).
    public var duration: Double
    public var uri: String
    public var key: SegmentKey?
    public var byteRange: ByteRange?
    /// Whether EXT-X-DISCONTINUITY precedes this segment.
    public var discontinuity: Bool
    /// The EXTINF title, usually empty.
    public var title: String

    public init(duration: Double, uri: String, key: SegmentKey? = nil, byteRange: ByteRange? = nil, discontinuity: Bool = false, title: String = "") {
        self.duration = duration
        self.uri = uri
        self.key = key
        self.byteRange = byteRange
        self.discontinuity = discontinuity
        self.title = title
    }
}

/// EXT-X-PLAYLIST-TYPE.
public enum PlaylistType: String, Sendable {
    case vod = "VOD"
    case event = "EVENT"
}

/// A media playlist: the segments of one rendition.
public struct MediaPlaylist: Sendable, Equatable {
    /// EXT-X-VERSION; `nil` writes the minimum the playlist needs (see ``resolvedVersion``).
    public var version: Int?
    /// EXT-X-TARGETDURATION; `nil` writes the value the segments need (see ``resolvedTargetDuration``).
    public var targetDuration: Int?
    public var mediaSequence: Int
    public var playlistType: PlaylistType?
    public var independentSegments: Bool
    /// EXT-X-START `TIME-OFFSET` (with `PRECISE=YES`): where a player should start, seconds from
    /// the first segment; a growing playlist says 0 so players start at the beginning, not at the
    /// live edge.
    public var startOffset: Double?
    public var endList: Bool
    public var segments: [MediaSegment]

    public init(
        version: Int? = nil, targetDuration: Int? = nil, mediaSequence: Int = 0, playlistType: PlaylistType? = nil,
        independentSegments: Bool = false, startOffset: Double? = nil, endList: Bool = false, segments: [MediaSegment] = []
    ) {
        self.version = version
        self.targetDuration = targetDuration
        self.mediaSequence = mediaSequence
        self.playlistType = playlistType
        self.independentSegments = independentSegments
        self.startOffset = startOffset
        self.endList = endList
        self.segments = segments
    }
}

/// RESOLUTION: width x height in pixels.
public struct Resolution: Sendable, Equatable {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
}

/// EXT-X-STREAM-INF and the URI of its media playlist.
public struct VariantStream: Sendable, Equatable {
    public var uri: String
    /// Peak bits per second.
    public var bandwidth: Int
    public var averageBandwidth: Int?
    /// RFC 6381 codec strings, e.g. `avc1.64002a`, `mp4a.40.2`.
    public var codecs: [String]
    public var resolution: Resolution?
    public var frameRate: Double?
    /// GROUP-ID of the AUDIO renditions this variant plays with.
    public var audioGroup: String?

    public init(
        uri: String, bandwidth: Int, averageBandwidth: Int? = nil, codecs: [String] = [],
        resolution: Resolution? = nil, frameRate: Double? = nil, audioGroup: String? = nil
    ) {
        self.uri = uri
        self.bandwidth = bandwidth
        self.averageBandwidth = averageBandwidth
        self.codecs = codecs
        self.resolution = resolution
        self.frameRate = frameRate
        self.audioGroup = audioGroup
    }
}

/// EXT-X-MEDIA: an alternative rendition (an audio track, subtitles, …).
public struct Rendition: Sendable, Equatable {
    /// The EXT-X-MEDIA TYPE values.
    public enum MediaType: String, Sendable {
        case audio = "AUDIO"
        case video = "VIDEO"
        case subtitles = "SUBTITLES"
        case closedCaptions = "CLOSED-CAPTIONS"
    }

    public var type: MediaType
    public var groupID: String
    public var name: String
    /// RFC 5646 language tag.
    public var language: String?
    public var isDefault: Bool
    public var autoselect: Bool
    /// The rendition's media playlist; must be `nil` for closed captions.
    public var uri: String?
    /// CHANNELS, e.g. "2".
    public var channels: String?
    /// INSTREAM-ID, required for closed captions (e.g. "CC1").
    public var instreamID: String?

    public init(
        type: MediaType, groupID: String, name: String, language: String? = nil, isDefault: Bool = false,
        autoselect: Bool = false, uri: String? = nil, channels: String? = nil, instreamID: String? = nil
    ) {
        self.type = type
        self.groupID = groupID
        self.name = name
        self.language = language
        self.isDefault = isDefault
        self.autoselect = autoselect
        self.uri = uri
        self.channels = channels
        self.instreamID = instreamID
    }
}

/// The multivariant (master) playlist: renditions and the variant streams of a ladder.
public struct MultivariantPlaylist: Sendable, Equatable {
    /// EXT-X-VERSION; `nil` writes the minimum, 1.
    public var version: Int?
    public var independentSegments: Bool
    public var renditions: [Rendition]
    public var variants: [VariantStream]

    public init(version: Int? = nil, independentSegments: Bool = false, renditions: [Rendition] = [], variants: [VariantStream] = []) {
        self.version = version
        self.independentSegments = independentSegments
        self.renditions = renditions
        self.variants = variants
    }
}

/// Segment file names: `00000.ts`, `00001.ts`, … — five digits at least, so names sort in
/// playback order, and more digits when the index needs them.
public enum SegmentNaming {
    /// The file name of the segment at `index` (0-based, not negative).
    public static func fileName(index: Int, extension ext: String = "ts") -> String {
        precondition(index >= 0, "segment index must not be negative")
        let digits = String(index)
        return String(repeating: "0", count: max(0, 5 - digits.count)) + digits + "." + ext
    }
}
