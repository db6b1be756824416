/// One video rendition of the ladder.
public struct VideoRung: Sendable, Equatable {
    /// `^[a-z0-9][a-z0-9_-]{0,31}$`, unique in the profile; it names the rung's folder, so not
    /// "keys" or "audio".
    public var name: String
    /// The bounding box the picture is scaled into (16...8192 each); transposed for portrait sources.
    public var width: Int
    public var height: Int
    public var codec: VideoCodec
    /// Target bits per second.
    public var bitrate: Int
    /// Peak bits per second (VBV maxrate); defaults to 1.1 × bitrate.
    public var maxrate: Int
    /// VBV buffer in bits; defaults to 2 × bitrate.
    public var bufsize: Int
    /// Defaults to high.
    public var profile: H264Profile
    /// Defaults to 4.2.
    public var level: H264Level
    /// x264 preset; defaults to veryfast.
    public var preset: String

    public init(
        name: String, width: Int, height: Int, codec: VideoCodec = .h264, bitrate: Int, maxrate: Int? = nil,
        bufsize: Int? = nil, profile: H264Profile = .high, level: H264Level = H264Level.named("4.2")!, preset: String = "veryfast"
    ) {
        self.name = name
        self.width = width
        self.height = height
        self.codec = codec
        self.bitrate = bitrate
        self.maxrate = maxrate ?? bitrate * 11 / 10
        self.bufsize = bufsize ?? 2 * bitrate
        self.profile = profile
        self.level = level
        self.preset = preset
    }

    /// Macroblocks in a frame filling the box: ceil(w/16) × ceil(h/16).
    public var macroblocksPerFrame: Int { (width + 15) / 16 * ((height + 15) / 16) }
}

/// The audio rendition.
public struct AudioSettings: Sendable, Equatable {
    /// AAC sample rates (ISO/IEC 14496-3 sampling frequency index).
    public static let aacSampleRates = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000]

    public var codec: AudioCodec
    /// Bits per second.
    public var bitrate: Int
    /// The most channels to keep, 1 or 2: stereo sources are downmixed to mono with 1, and a mono
    /// source stays mono with 2.
    public var channels: Int
    /// Output sample rate; `nil` keeps the source's.
    public var sampleRate: Int?

    public init(codec: AudioCodec = .aac, bitrate: Int, channels: Int = 2, sampleRate: Int? = nil) {
        self.codec = codec
        self.bitrate = bitrate
        self.channels = channels
        self.sampleRate = sampleRate
    }
}

/// A ladder profile: how an upload is cut into segments and which renditions it becomes.
public struct Profile: Sendable, Equatable {
    public var name: String
    /// Seconds per segment, in (0, 60].
    public var segmentDuration: Double
    /// Seconds between IDR frames; segmentDuration is a whole multiple of it.
    public var keyframeInterval: Double
    /// A new content key every N segments; 0 keeps one key per asset.
    public var keyRotationSegments: Int
    /// The durations of the first segments, seconds, each at most ``segmentDuration``, adding up
    /// to a whole multiple of ``keyframeInterval``; then one every ``segmentDuration``. Short first
    /// segments make a growing asset playable sooner (HLS lets segments be shorter than the
    /// target duration). Empty: every segment is ``segmentDuration`` long.
    public var startupSegments: [Double] = []
    /// Seconds of source per chunk when a long upload is split across workers (each chunk a job;
    /// audio encoded once, as its own rendition); nil encodes every upload whole on one worker.
    /// A whole multiple of ``segmentDuration``, so chunks meet on segment boundaries.
    public var chunkDuration: Double?
    /// Sorted by box area, largest first.
    public var rungs: [VideoRung]
    /// `nil` drops audio.
    public var audio: AudioSettings?

    public init(name: String, segmentDuration: Double, keyframeInterval: Double, keyRotationSegments: Int = 0, rungs: [VideoRung], audio: AudioSettings?) {
        self.name = name
        self.segmentDuration = segmentDuration
        self.keyframeInterval = keyframeInterval
        self.keyRotationSegments = keyRotationSegments
        self.rungs = rungs
        self.audio = audio
    }
}

/// Bitrates as profiles write them.
public enum Bitrate {
    /// Parses "6000k", "6M", "6.5M", "128K" or "800000" into bits per second. Returns `nil` for
    /// anything else, including values that are not a whole number of bits or not positive.
    public static func parse(_ text: String) -> Int? {
        guard let bits = value(text), bits > 0, bits == bits.rounded(), bits < 1e15 else { return nil }
        return Int(bits)
    }

    /// The number of bits per second `text` spells, possibly negative or fractional, so the
    /// caller can say precisely what is wrong with it. `nil` when it is not a number at all.
    static func value(_ text: String) -> Double? {
        var number = Substring(text)
        var multiplier = 1.0
        switch number.last {
        case "k", "K": multiplier = 1e3
        case "M": multiplier = 1e6
        default: break
        }
        if multiplier != 1 { number = number.dropLast() }
        let negative = number.first == "-"
        if negative { number = number.dropFirst() }
        // Digits with at most one '.', so "+", exponents, "inf" and "nan" never get through.
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count),
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let value = Double(number)
        else { return nil }
        // Round away binary noise ("6.5M" is 6499999.9999…) at a millionth of a bit.
        let bits = ((negative ? -value : value) * multiplier * 1e6).rounded() / 1e6
        return bits
    }

    /// Writes bits per second in profile notation: "6600k" when whole kbit/s, else bits.
    static func format(_ bits: Int) -> String {
        bits % 1000 == 0 ? "\(bits / 1000)k" : "\(bits)"
    }
}
