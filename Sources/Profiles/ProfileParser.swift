import Foundation
import Yams

extension Profile {
    /// Reads and parses a profile file. An unreadable file is a ``ProfileError`` naming the path
    /// and the reason.
    public static func load(path: String) throws -> Profile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            var reason = error.localizedDescription
            // Foundation's own message is vague; the POSIX error says what went wrong.
            if let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? POSIXError {
                reason = String(cString: strerror(underlying.code.rawValue))
            }
            throw ProfileError(file: path, line: nil, column: nil, message: "cannot read profile: \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ProfileError(file: path, line: nil, column: nil, message: "cannot read profile: not valid UTF-8")
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses and validates a profile. `file` names the source in errors.
    ///
    /// Every problem is reported with the line and column of the key or value at fault: unknown
    /// or duplicate keys, missing required keys, wrong types, out-of-range values, and encoder
    /// settings the chosen H.264 level cannot carry.
    public static func parse(yaml: String, file: String) throws -> Profile {
        try ProfileParser(file: file).parse(yaml)
    }
}

/// Turns composed YAML nodes into a validated ``Profile``.
private struct ProfileParser {
    let file: String

    static let namePattern = "1 to 32 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
    /// Rung names become folder names beside these.
    static let reservedNames: Set = ["keys", "audio"]

    func error(_ node: Node?, _ message: String) -> ProfileError {
        ProfileError(file: file, line: node?.mark?.line, column: node?.mark?.column, message: message)
    }

    func parse(_ yaml: String) throws -> Profile {
        let composed: Node?
        do {
            composed = try Yams.compose(yaml: yaml)
        } catch let yamlError as YamlError {
            throw translate(yamlError)
        }
        guard let root = composed else {
            throw ProfileError(file: file, line: nil, column: nil, message: "the profile is empty")
        }
        let top = try Fields(root, place: "at the top level", allowed: [
            "name", "segment_duration", "keyframe_interval", "startup_segments", "key_rotation_segments", "chunk_duration", "rungs", "audio",
        ], parser: self)

        let (name, nameNode) = try top.string("name", required: true)!
        guard Self.isValidName(name) else {
            throw error(nameNode, "'name' must be \(Self.namePattern), got '\(name)'")
        }

        let (segmentDuration, segmentNode) = try top.number("segment_duration", required: true)!
        guard segmentDuration > 0, segmentDuration <= 60 else {
            throw error(segmentNode, "'segment_duration' must be more than 0 and at most 60 seconds, got \(segmentNode.scalarText)")
        }
        // One IDR per segment by default: every HLS segment must start with one anyway.
        var keyframeInterval = segmentDuration
        if let (interval, node) = try top.number("keyframe_interval") {
            guard interval > 0 else {
                throw error(node, "'keyframe_interval' must be more than 0, got \(node.scalarText)")
            }
            let ratio = segmentDuration / interval
            // Segments can only be cut at IDR frames, so they must line up exactly.
            guard ratio >= 1, abs(ratio - ratio.rounded()) < 1e-9 else {
                throw error(node, "segment_duration \(segmentNode.scalarText) is not a whole multiple of keyframe_interval \(node.scalarText)")
            }
            keyframeInterval = interval
        }
        let startupSegments = try parseStartupSegments(top["startup_segments"], segmentDuration: segmentDuration, keyframeInterval: keyframeInterval)
        var keyRotation = 0
        if let (value, node) = try top.int("key_rotation_segments") {
            guard value >= 0 else { throw error(node, "'key_rotation_segments' must not be negative, got \(value)") }
            keyRotation = value
        }

        var chunkDuration: Double?
        if let (value, node) = try top.number("chunk_duration") {
            // Chunks are cut on segment boundaries, after the startup segments.
            let ratio = value / segmentDuration
            guard value >= 10, value >= startupSegments.reduce(0, +), abs(ratio - ratio.rounded()) < 1e-9 else {
                throw error(node, "'chunk_duration' must be at least 10 s, at least the startup segments, and a whole multiple of segment_duration (\(segmentNode.scalarText) s), got \(node.scalarText)")
            }
            chunkDuration = value
        }

        var rungs: [VideoRung] = []
        if let rungsNode = top["rungs"] {
            guard case .sequence(let sequence) = rungsNode else {
                throw error(rungsNode, "'rungs' must be a list of rungs")
            }
            var firstLine: [String: Int] = [:]
            for (index, node) in sequence.enumerated() {
                let (rung, nameNode) = try parseRung(node, index: index)
                if let line = firstLine[rung.name] {
                    throw error(nameNode, "duplicate rung name '\(rung.name)' (first on line \(line))")
                }
                firstLine[rung.name] = nameNode.mark?.line ?? 0
                rungs.append(rung)
            }
        }
        var audio: AudioSettings?
        if let audioNode = top["audio"], audioNode.tagName != .null {
            audio = try parseAudio(audioNode)
        }
        guard !rungs.isEmpty || audio != nil else {
            throw error(top["rungs"] ?? root, "a profile needs at least one rung or an audio section (missing required key 'rungs' or 'audio')")
        }

        // Largest box first; equal areas keep their order in the file.
        let sorted = rungs.enumerated().sorted {
            let (a, b) = ($0.element.width * $0.element.height, $1.element.width * $1.element.height)
            return a != b ? a > b : $0.offset < $1.offset
        }.map(\.element)
        var profile = Profile(name: name, segmentDuration: segmentDuration, keyframeInterval: keyframeInterval,
                              keyRotationSegments: keyRotation, rungs: sorted, audio: audio)
        profile.startupSegments = startupSegments
        profile.chunkDuration = chunkDuration
        return profile
    }

    /// `startup_segments: [1, 1, 2, 2]`: each more than 0 and at most `segment_duration`, at most
    /// 16 of them, adding up to a whole multiple of `keyframe_interval` (the regular grid goes on
    /// from there, on the same IDR instants).
    func parseStartupSegments(_ node: Node?, segmentDuration: Double, keyframeInterval: Double) throws -> [Double] {
        guard let node, node.tagName != .null else { return [] }
        guard case .sequence(let sequence) = node, sequence.count <= 16 else {
            throw error(node, "'startup_segments' must be a list of at most 16 durations in seconds")
        }
        var durations: [Double] = []
        for item in sequence {
            guard [.int, .float].contains(item.tagName), item.scalar?.string.contains(":") == false, let value = item.float, value.isFinite else {
                throw error(item, "'startup_segments' holds durations in seconds, got '\(item.scalarText)'")
            }
            guard value >= 0.1, value <= segmentDuration else {
                throw error(item, "each of 'startup_segments' must be at least 0.1 and at most segment_duration (\(segmentDuration) s), got \(item.scalarText)")
            }
            durations.append(value)
        }
        let total = durations.reduce(0, +)
        let ratio = total / keyframeInterval
        guard abs(ratio - ratio.rounded()) < 1e-9 else {
            throw error(node, "'startup_segments' add up to \(total) s, which is not a whole multiple of keyframe_interval (\(keyframeInterval) s)")
        }
        return durations
    }

    func parseRung(_ node: Node, index: Int) throws -> (VideoRung, nameNode: Node) {
        // Name the rung in messages as soon as possible, even before its keys are checked.
        let label = node.mapping?["name"]?.scalar.map { "rung '\($0.string)'" } ?? "rung \(index + 1)"
        let fields = try Fields(node, place: "in \(label)", allowed: [
            "name", "width", "height", "codec", "bitrate", "maxrate", "bufsize", "profile", "level", "preset",
        ], parser: self)

        let (name, nameNode) = try fields.string("name", required: true)!
        guard Self.isValidName(name) else {
            throw error(nameNode, "rung name must be \(Self.namePattern), got '\(name)'")
        }
        guard !Self.reservedNames.contains(name) else {
            throw error(nameNode, "rung name '\(name)' is reserved (it would clash with the asset's \(name)/ folder)")
        }
        func side(_ key: String) throws -> Int {
            let (value, node) = try fields.int(key, required: true)!
            guard (16...8192).contains(value) else {
                throw error(node, "'\(key)' in \(label) must be between 16 and 8192, got \(value)")
            }
            return value
        }
        var rung = VideoRung(name: name, width: try side("width"), height: try side("height"), bitrate: try fields.bitrate("bitrate", required: true)!.0)
        rung.codec = try fields.choice("codec", VideoCodec.self) ?? .h264
        let maxrate = try fields.bitrate("maxrate")
        rung.maxrate = maxrate?.0 ?? rung.bitrate * 11 / 10
        rung.bufsize = try fields.bitrate("bufsize")?.0 ?? 2 * rung.bitrate
        rung.profile = try fields.choice("profile", H264Profile.self) ?? .high
        if let (preset, node) = try fields.string("preset") {
            guard X264Preset.all.contains(preset) else {
                throw error(node, "unknown preset '\(preset)' in \(label) (expected one of: \(X264Preset.all.joined(separator: ", ")))")
            }
            rung.preset = preset
        }
        if let maxrate, maxrate.0 < rung.bitrate {
            throw error(maxrate.1, "'maxrate' in \(label) (\(Bitrate.format(maxrate.0))) is below its bitrate (\(Bitrate.format(rung.bitrate)))")
        }

        // The level: as written, so messages quote the user's own spelling ("3.0").
        var levelText = "4.2"
        var levelNode = node
        if let written = fields["level"] {
            guard let scalar = written.scalar, [.str, .int, .float].contains(written.tagName) else {
                throw error(written, "'level' in \(label) must be a level such as \"4.2\" or \"1b\"")
            }
            levelText = scalar.string
            levelNode = written
        }
        guard let level = H264Level.named(levelText) else {
            let names = H264Level.all.map(\.name).joined(separator: ", ")
            throw error(levelNode, "unknown level '\(levelText)' in \(label) (expected one of: \(names))")
        }
        rung.level = level
        try checkLevel(rung, levelText: levelText, levelNode: levelNode, maxrateNode: maxrate?.1 ?? levelNode)
        return (rung, nameNode)
    }

    /// Rejects boxes and rates the level cannot carry (H.264 Annex A): an encoder would either
    /// refuse or silently write a stream players of that level cannot decode.
    func checkLevel(_ rung: VideoRung, levelText: String, levelNode: Node, maxrateNode: Node) throws {
        let level = rung.level
        let size = "\(rung.width)x\(rung.height)"
        if rung.macroblocksPerFrame > level.maxFrameSizeMBs {
            throw error(levelNode, "level \(levelText) allows at most \(level.maxFrameSizeMBs) macroblocks per frame; \(size) needs \(rung.macroblocksPerFrame)")
        }
        let (wide, high) = ((rung.width + 15) / 16, (rung.height + 15) / 16)
        if max(wide, high) > level.maxSideMBs {
            throw error(levelNode, "level \(levelText) allows at most \(level.maxSideMBs) macroblocks on a side; \(size) is \(wide)x\(high) macroblocks")
        }
        if rung.maxrate > level.maxBitrate(for: rung.profile) {
            throw error(maxrateNode, "level \(levelText) allows a maxrate of at most \(Bitrate.format(level.maxBitrate(for: rung.profile))) with profile \(rung.profile.rawValue); rung '\(rung.name)' has \(Bitrate.format(rung.maxrate))")
        }
    }

    func parseAudio(_ node: Node) throws -> AudioSettings {
        let fields = try Fields(node, place: "in audio", allowed: ["codec", "bitrate", "channels", "sample_rate"], parser: self)
        var audio = AudioSettings(bitrate: try fields.bitrate("bitrate", required: true)!.0)
        audio.codec = try fields.choice("codec", AudioCodec.self) ?? .aac
        if let (channels, node) = try fields.int("channels") {
            guard channels == 1 || channels == 2 else {
                throw error(node, "'channels' in audio must be 1 or 2, got \(channels)")
            }
            audio.channels = channels
        }
        if let (rate, node) = try fields.int("sample_rate") {
            guard AudioSettings.aacSampleRates.contains(rate) else {
                let rates = AudioSettings.aacSampleRates.map(String.init).joined(separator: ", ")
                throw error(node, "'sample_rate' in audio must be an AAC rate (one of: \(rates)), got \(rate)")
            }
            audio.sampleRate = rate
        }
        return audio
    }

    static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        func allowed(_ c: UInt8) -> Bool { (0x61...0x7A).contains(c) || (0x30...0x39).contains(c) }
        return (1...32).contains(bytes.count) && allowed(bytes[0])
            && bytes.dropFirst().allSatisfy { allowed($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// YAML syntax errors, with the place libyaml reports.
    func translate(_ yamlError: YamlError) -> ProfileError {
        switch yamlError {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ProfileError(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return ProfileError(file: file, line: context.mark.line, column: context.mark.column,
                                message: "duplicate key \(keys) in the same mapping")
        default:
            return ProfileError(file: file, line: nil, column: nil, message: "invalid YAML: \(yamlError)")
        }
    }
}

/// The keys of one YAML mapping, checked against the keys allowed there.
private struct Fields {
    let parser: ProfileParser
    let node: Node
    /// "in rung '720p'", "in audio", "at the top level": where, for messages.
    let place: String
    private var values: [String: Node] = [:]

    init(_ node: Node, place: String, allowed: [String], parser: ProfileParser) throws {
        self.parser = parser
        self.node = node
        self.place = place
        guard case .mapping(let mapping) = node else {
            throw parser.error(node, "expected a mapping of keys \(place)")
        }
        for (key, value) in mapping {
            guard let name = key.scalar?.string, key.tagName == .str else {
                throw parser.error(key, "keys must be plain names \(place)")
            }
            guard allowed.contains(name) else {
                throw parser.error(key, "unknown key '\(name)' \(place) (expected one of: \(allowed.joined(separator: ", ")))")
            }
            values[name] = value
        }
    }

    subscript(key: String) -> Node? { values[key] }

    private func lookup(_ key: String, required: Bool) throws -> Node? {
        guard let value = values[key] else {
            if required { throw parser.error(node, "missing required key '\(key)' \(place)") }
            return nil
        }
        return value
    }

    private func wrongType(_ key: String, _ value: Node, _ expected: String) -> ProfileError {
        parser.error(value, "'\(key)' \(place) must be \(expected), got \(value.scalarText)")
    }

    func string(_ key: String, required: Bool = false) throws -> (String, Node)? {
        guard let value = try lookup(key, required: required) else { return nil }
        guard let scalar = value.scalar, value.tagName == .str else { throw wrongType(key, value, "a string") }
        return (scalar.string, value)
    }

    func int(_ key: String, required: Bool = false) throws -> (Int, Node)? {
        guard let value = try lookup(key, required: required) else { return nil }
        guard let number = Self.integer(value) else { throw wrongType(key, value, "an integer") }
        return (number, value)
    }

    /// An `!!int` scalar's value. YAML 1.1's base-60 form (`1:30`) is refused before Yams reads it:
    /// Yams multiplies its places without checking for overflow, so `1:0:0:0:0:0:0:0:0:0:0:0`
    /// trapped, and no profile means a number that way.
    private static func integer(_ value: Node) -> Int? {
        guard value.tagName == .int, value.scalar?.string.contains(":") == false else { return nil }
        return value.int
    }

    func number(_ key: String, required: Bool = false) throws -> (Double, Node)? {
        guard let value = try lookup(key, required: required) else { return nil }
        guard [.int, .float].contains(value.tagName), value.scalar?.string.contains(":") == false,
              let number = value.float, number.isFinite
        else {
            throw wrongType(key, value, "a number")
        }
        return (number, value)
    }

    /// Bits per second: an integer, or a string with a k or M suffix ("6000k", "6.5M").
    func bitrate(_ key: String, required: Bool = false) throws -> (Int, Node)? {
        guard let value = try lookup(key, required: required) else { return nil }
        let bits: Double
        switch value.tagName {
        case .int:
            guard let number = Self.integer(value) else { throw wrongType(key, value, "a bitrate") }
            bits = Double(number)
        case .str:
            guard let parsed = Bitrate.value(value.scalarText) else {
                throw parser.error(value, "'\(key)' \(place) is not a bitrate: '\(value.scalarText)' (write bits/s, or use a k or M suffix: 6000k, 6.5M)")
            }
            bits = parsed
        default:
            throw wrongType(key, value, "a bitrate (bits/s, or a string such as 6000k or 6.5M)")
        }
        guard bits > 0 else { throw parser.error(value, "'\(key)' \(place) must be positive, got \(value.scalarText)") }
        guard bits == bits.rounded(), bits < 1e15 else {
            throw parser.error(value, "'\(key)' \(place) must be a whole number of bits/s, got \(value.scalarText)")
        }
        return (Int(bits), value)
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws -> T? where T.RawValue == String {
        guard let (text, value) = try string(key) else { return nil }
        guard let result = T(rawValue: text) else {
            let names = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw parser.error(value, "unknown \(key) '\(text)' \(place) (expected one of: \(names))")
        }
        return result
    }
}

extension Node {
    /// The scalar as written, or a word for what the node is, for messages.
    fileprivate var scalarText: String {
        switch self {
        case .scalar(let scalar): scalar.string
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}

extension Node {
    /// The resolved YAML tag (str, int, float, null, …) that decides a scalar's type.
    fileprivate var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
