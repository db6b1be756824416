/// Video codecs a rung can use.
public enum VideoCodec: String, Sendable, CaseIterable {
    case h264
}

/// Audio codecs the audio rendition can use.
public enum AudioCodec: String, Sendable, CaseIterable {
    case aac
}

/// H.264 profiles x264 can encode.
public enum H264Profile: String, Sendable, CaseIterable {
    case baseline, main, high

    /// `profile_idc` as in the SPS and in the RFC 6381 codec string (`avc1.PPCCLL`).
    public var avcProfileIDC: Int {
        switch self {
        case .baseline: 66
        case .main: 77
        case .high: 100
        }
    }

    /// High profile allows 1.25 times the level's MaxBR (H.264 Table A-1, cpbBrVclFactor).
    var bitrateFactor: Double { self == .high ? 1.25 : 1 }
}

/// An H.264 level and its limits (H.264 Table A-1).
public struct H264Level: Sendable, Equatable {
    /// "4.2", "3", "1b".
    public let name: String
    /// `level_idc`: 42 for 4.2; 9 for 1b, as x264 writes it.
    public let idc: Int
    /// MaxFS: macroblocks per frame.
    public let maxFrameSizeMBs: Int
    /// MaxMBPS: macroblocks per second.
    public let maxMacroblocksPerSecond: Int
    /// MaxBR in kbit/s for Baseline and Main; High allows 1.25 times this.
    public let maxBitrateKbps: Int

    /// All levels, lowest first.
    public static let all: [H264Level] = [
        H264Level(name: "1", idc: 10, maxFrameSizeMBs: 99, maxMacroblocksPerSecond: 1485, maxBitrateKbps: 64),
        H264Level(name: "1b", idc: 9, maxFrameSizeMBs: 99, maxMacroblocksPerSecond: 1485, maxBitrateKbps: 128),
        H264Level(name: "1.1", idc: 11, maxFrameSizeMBs: 396, maxMacroblocksPerSecond: 3000, maxBitrateKbps: 192),
        H264Level(name: "1.2", idc: 12, maxFrameSizeMBs: 396, maxMacroblocksPerSecond: 6000, maxBitrateKbps: 384),
        H264Level(name: "1.3", idc: 13, maxFrameSizeMBs: 396, maxMacroblocksPerSecond: 11880, maxBitrateKbps: 768),
        H264Level(name: "2", idc: 20, maxFrameSizeMBs: 396, maxMacroblocksPerSecond: 11880, maxBitrateKbps: 2000),
        H264Level(name: "2.1", idc: 21, maxFrameSizeMBs: 792, maxMacroblocksPerSecond: 19800, maxBitrateKbps: 4000),
        H264Level(name: "2.2", idc: 22, maxFrameSizeMBs: 1620, maxMacroblocksPerSecond: 20250, maxBitrateKbps: 4000),
        H264Level(name: "3", idc: 30, maxFrameSizeMBs: 1620, maxMacroblocksPerSecond: 40500, maxBitrateKbps: 10000),
        H264Level(name: "3.1", idc: 31, maxFrameSizeMBs: 3600, maxMacroblocksPerSecond: 108000, maxBitrateKbps: 14000),
        H264Level(name: "3.2", idc: 32, maxFrameSizeMBs: 5120, maxMacroblocksPerSecond: 216000, maxBitrateKbps: 20000),
        H264Level(name: "4", idc: 40, maxFrameSizeMBs: 8192, maxMacroblocksPerSecond: 245760, maxBitrateKbps: 20000),
        H264Level(name: "4.1", idc: 41, maxFrameSizeMBs: 8192, maxMacroblocksPerSecond: 245760, maxBitrateKbps: 50000),
        H264Level(name: "4.2", idc: 42, maxFrameSizeMBs: 8704, maxMacroblocksPerSecond: 522240, maxBitrateKbps: 50000),
        H264Level(name: "5", idc: 50, maxFrameSizeMBs: 22080, maxMacroblocksPerSecond: 589824, maxBitrateKbps: 135000),
        H264Level(name: "5.1", idc: 51, maxFrameSizeMBs: 36864, maxMacroblocksPerSecond: 983040, maxBitrateKbps: 240000),
        H264Level(name: "5.2", idc: 52, maxFrameSizeMBs: 36864, maxMacroblocksPerSecond: 2073600, maxBitrateKbps: 240000),
        H264Level(name: "6", idc: 60, maxFrameSizeMBs: 139264, maxMacroblocksPerSecond: 4177920, maxBitrateKbps: 240000),
        H264Level(name: "6.1", idc: 61, maxFrameSizeMBs: 139264, maxMacroblocksPerSecond: 8355840, maxBitrateKbps: 480000),
        H264Level(name: "6.2", idc: 62, maxFrameSizeMBs: 139264, maxMacroblocksPerSecond: 16711680, maxBitrateKbps: 800000),
    ]

    /// The level called `name`: "4.2", "4", "4.0" (the same as "4") or "1b".
    public static func named(_ name: String) -> H264Level? {
        let text = name.lowercased()
        if text == "1b" { return all.first { $0.name == "1b" } }
        // Normalise "3.0" to "3" by going through tenths; "42" stays 42 and matches nothing.
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts[0].allSatisfy({ $0.isASCII && $0.isNumber }), let major = Int(parts[0]) else { return nil }
        var minor = 0
        if parts.count == 2 {
            guard parts[1].count == 1, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let digit = Int(parts[1]) else { return nil }
            minor = digit
        }
        let canonical = minor == 0 ? "\(major)" : "\(major).\(minor)"
        return all.first { $0.name == canonical }
    }

    /// The most bits per second a stream of `profile` may peak at under this level.
    public func maxBitrate(for profile: H264Profile) -> Int {
        Int(Double(maxBitrateKbps * 1000) * profile.bitrateFactor)
    }

    /// The widest (or tallest) a frame may be, in macroblocks: sqrt(8 * MaxFS) (H.264 A.3.1).
    public var maxSideMBs: Int {
        Int((8 * Double(maxFrameSizeMBs)).squareRoot())
    }
}

/// x264's presets, fastest first.
public enum X264Preset {
    /// The names x264 accepts for `-preset`.
    public static let all = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"]
}
