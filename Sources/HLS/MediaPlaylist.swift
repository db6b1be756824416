extension MediaPlaylist {
    /// The EXT-X-VERSION written: ``version`` if set, else the minimum the content needs.
    ///
    /// The writer always writes decimal EXTINF durations, which need version 3; an explicit IV
    /// needs 2 (covered by 3), EXT-X-BYTERANGE needs 4 and KEYFORMAT needs 5 (RFC 8216 §7).
    public var resolvedVersion: Int {
        if let version { return version }
        var needed = 3
        if segments.contains(where: { $0.byteRange != nil }) { needed = max(needed, 4) }
        if segments.contains(where: { $0.key?.keyFormat != nil }) { needed = max(needed, 5) }
        return needed
    }

    /// The EXT-X-TARGETDURATION written: ``targetDuration`` if set, else the largest segment
    /// duration rounded to the nearest integer (halves away from zero, as RFC 8216 §4.3.3.1
    /// requires), at least 1.
    public var resolvedTargetDuration: Int {
        targetDuration ?? segments.reduce(1) { max($0, Self.rounded($1.duration)) }
    }

    static func rounded(_ duration: Double) -> Int {
        // Saturating: an EXTINF of 1e60 or of 400 digits (infinity) must fail the parser's check
        // against the target duration, and a model built in code must not trap the writer.
        let value = duration.rounded(.toNearestOrAwayFromZero)
        return Int(exactly: value) ?? (value > 0 ? .max : 0)
    }

    /// Writes the playlist. Every line ends with "\n".
    ///
    /// An EXT-X-KEY line is written whenever a segment's key differs from the previous segment's,
    /// since a key applies to every following segment until the next EXT-X-KEY; a per-segment IV
    /// therefore gives one EXT-X-KEY per segment. An unencrypted segment after an encrypted one
    /// gets `METHOD=NONE`.
    ///
    /// RFC 8216 has no escaping: URIs, titles and quoted values must not contain line breaks, and
    /// quoted values no `"`. Keys should carry 16-byte IVs; ``parse(_:)`` rejects anything else.
    public func render() -> String {
        var out = "#EXTM3U\n"
        out += "#EXT-X-VERSION:\(resolvedVersion)\n"
        out += "#EXT-X-TARGETDURATION:\(resolvedTargetDuration)\n"
        out += "#EXT-X-MEDIA-SEQUENCE:\(mediaSequence)\n"
        if let playlistType { out += "#EXT-X-PLAYLIST-TYPE:\(playlistType.rawValue)\n" }
        if independentSegments { out += "#EXT-X-INDEPENDENT-SEGMENTS\n" }
        if let startOffset { out += "#EXT-X-START:TIME-OFFSET=\(Syntax.duration(startOffset)),PRECISE=YES\n" }
        var currentKey: SegmentKey?
        for segment in segments {
            if segment.discontinuity { out += "#EXT-X-DISCONTINUITY\n" }
            let key = Self.effective(segment.key)
            if key != currentKey {
                out += Self.keyLine(key ?? SegmentKey(method: .none)) + "\n"
                currentKey = key
            }
            if let range = segment.byteRange {
                out += "#EXT-X-BYTERANGE:\(range.length)" + (range.offset.map { "@\($0)" } ?? "") + "\n"
            }
            out += "#EXTINF:\(Syntax.duration(segment.duration)),\(segment.title)\n"
            out += segment.uri + "\n"
        }
        if endList { out += "#EXT-X-ENDLIST\n" }
        return out
    }

    /// `METHOD=NONE` and no key mean the same thing; normalising keeps render and parse symmetric.
    private static func effective(_ key: SegmentKey?) -> SegmentKey? {
        key?.method == EncryptionMethod.none ? nil : key
    }

    private static func keyLine(_ key: SegmentKey) -> String {
        var attributes = ["METHOD=\(key.method.rawValue)"]
        if let uri = key.uri { attributes.append("URI=\"\(uri)\"") }
        if let iv = key.iv { attributes.append("IV=\(Syntax.hexString(iv))") }
        if let format = key.keyFormat { attributes.append("KEYFORMAT=\"\(format)\"") }
        return "#EXT-X-KEY:" + attributes.joined(separator: ",")
    }

    /// Parses a media playlist strictly.
    ///
    /// The file must start with `#EXTM3U`; EXT-X-TARGETDURATION is required and no segment may
    /// exceed it; every EXTINF must be followed by a URI; known tags are validated (numbers,
    /// attribute lists, 16-byte IVs, features newer than a declared EXT-X-VERSION); unknown tags
    /// and comments are ignored as RFC 8216 §4.1 requires. Multivariant tags are an error.
    public static func parse(_ text: String) throws -> MediaPlaylist {
        var parser = MediaPlaylistParser()
        for (number, line) in try PlaylistLines.split(text).dropFirst() {
            try parser.consume(line, number: number)
        }
        return try parser.finish()
    }
}

/// The state of a media playlist parse: playlist tags seen so far and the segment being built.
private struct MediaPlaylistParser {
    var playlist = MediaPlaylist()
    var seen: [Substring: Int] = [:]
    var key: SegmentKey?
    var pending: (line: Int, duration: Double, title: String)?
    var pendingRange: ByteRange?
    var pendingDiscontinuity = false
    /// The last non-blank line: where a missing required tag is reported, since that is where
    /// the parser knows it is missing.
    var lastLine = 1
    /// The lowest version each feature needs, with the line that first used it.
    var requirements: [(version: Int, line: Int, feature: String)] = []
    var durationLines: [Int] = []

    mutating func consume(_ line: Substring, number: Int) throws {
        if line.isEmpty { return }
        lastLine = number
        guard line.hasPrefix("#") else {
            guard let segment = pending else {
                throw HLSParseError(line: number, message: "URI '\(line)' is not preceded by EXTINF")
            }
            playlist.segments.append(MediaSegment(
                duration: segment.duration, uri: String(line), key: key, byteRange: pendingRange,
                discontinuity: pendingDiscontinuity, title: segment.title))
            durationLines.append(segment.line)
            pending = nil
            pendingRange = nil
            pendingDiscontinuity = false
            return
        }
        guard line.hasPrefix("#EXT") else { return }  // a comment
        let (name, value) = PlaylistLines.tag(line)
        // Other segment tags may sit between EXTINF and its URI, but a second EXTINF means the
        // first segment lost its URI.
        if let pending, name == "EXTINF" {
            throw HLSParseError(line: pending.line, message: "EXTINF is not followed by a URI")
        }
        func required() throws -> Substring {
            guard let value, !value.isEmpty else { throw HLSParseError(line: number, message: "\(name) needs a value") }
            return value
        }
        func once() throws {
            if let first = seen[name] {
                throw HLSParseError(line: number, message: "duplicate \(name) (first on line \(first))")
            }
            seen[name] = number
        }
        func integer() throws -> Int {
            let text = try required()
            guard let value = Syntax.decimalInteger(text) else {
                throw HLSParseError(line: number, message: "\(name) '\(text)' is not a decimal integer")
            }
            return value
        }

        switch name {
        case "EXT-X-VERSION":
            try once()
            playlist.version = try integer()
        case "EXT-X-TARGETDURATION":
            try once()
            playlist.targetDuration = try integer()
        case "EXT-X-MEDIA-SEQUENCE":
            try once()
            // RFC 8216 §4.3.3.2: it must come before the first segment.
            guard playlist.segments.isEmpty else {
                throw HLSParseError(line: number, message: "EXT-X-MEDIA-SEQUENCE must appear before the first segment")
            }
            playlist.mediaSequence = try integer()
        case "EXT-X-PLAYLIST-TYPE":
            try once()
            let text = try required()
            guard let type = PlaylistType(rawValue: String(text)) else {
                throw HLSParseError(line: number, message: "EXT-X-PLAYLIST-TYPE must be VOD or EVENT, got '\(text)'")
            }
            playlist.playlistType = type
        case "EXT-X-INDEPENDENT-SEGMENTS":
            playlist.independentSegments = true
        case "EXT-X-START":
            try once()
            let attributes = try AttributeList(try required(), line: number)
            // signed-decimal-floating-point: negative offsets count from the end.
            let text = try attributes.plain("TIME-OFFSET", required: true)!
            let magnitude = Syntax.decimalFloat(text.hasPrefix("-") ? text.dropFirst() : Substring(text))
            guard let magnitude else {
                throw HLSParseError(line: number, message: "EXT-X-START TIME-OFFSET '\(text)' is not a number")
            }
            playlist.startOffset = text.hasPrefix("-") ? -magnitude : magnitude
        case "EXT-X-ENDLIST":
            playlist.endList = true
        case "EXT-X-DISCONTINUITY":
            pendingDiscontinuity = true
        case "EXTINF":
            let text = try required()
            guard let comma = text.firstIndex(of: ",") else {
                throw HLSParseError(line: number, message: "EXTINF needs a comma after the duration")
            }
            let durationText = text[..<comma]
            guard let duration = Syntax.decimalFloat(durationText) else {
                throw HLSParseError(line: number, message: "EXTINF duration '\(durationText)' is not a number")
            }
            if durationText.contains(".") {
                requirements.append((3, number, "a decimal EXTINF duration"))
            }
            pending = (number, duration, String(text[text.index(after: comma)...]))
        case "EXT-X-BYTERANGE":
            let text = try required()
            let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
            guard let length = Syntax.decimalInteger(parts[0]),
                  parts.count == 1 || Syntax.decimalInteger(parts[1]) != nil
            else {
                throw HLSParseError(line: number, message: "EXT-X-BYTERANGE '\(text)' is not <length>[@<offset>]")
            }
            pendingRange = ByteRange(length: length, offset: parts.count == 2 ? Syntax.decimalInteger(parts[1]) : nil)
            requirements.append((4, number, "EXT-X-BYTERANGE"))
        case "EXT-X-KEY":
            key = try parseKey(AttributeList(try required(), line: number), line: number)
        case "EXT-X-STREAM-INF", "EXT-X-MEDIA", "EXT-X-I-FRAME-STREAM-INF", "EXT-X-SESSION-DATA", "EXT-X-SESSION-KEY":
            throw HLSParseError(line: number, message: "\(name) belongs in a multivariant playlist, not a media playlist")
        default:
            break  // RFC 8216 §4.1: unknown tags are ignored.
        }
    }

    mutating func parseKey(_ attributes: AttributeList, line: Int) throws -> SegmentKey? {
        let methodText = try attributes.plain("METHOD", required: true)!
        guard let method = EncryptionMethod(rawValue: methodText) else {
            throw HLSParseError(line: line, message: "unsupported EXT-X-KEY METHOD '\(methodText)'")
        }
        if method == .none {
            guard attributes.values.count == 1 else {
                throw HLSParseError(line: line, message: "EXT-X-KEY with METHOD=NONE must have no other attributes")
            }
            return nil
        }
        var key = SegmentKey(method: method, uri: try attributes.quoted("URI", required: true))
        if let ivText = try attributes.plain("IV") {
            guard let iv = Syntax.hexBytes(ivText) else {
                throw HLSParseError(line: line, message: "IV '\(ivText)' is not a hexadecimal sequence")
            }
            guard iv.count == 16 else {
                throw HLSParseError(line: line, message: "IV must be 16 bytes (32 hex digits), got \(iv.count)")
            }
            key.iv = iv
            requirements.append((2, line, "the IV attribute"))
        }
        if let format = try attributes.quoted("KEYFORMAT") {
            key.keyFormat = format
            requirements.append((5, line, "KEYFORMAT"))
        }
        return key
    }

    func finish() throws -> MediaPlaylist {
        if let pending {
            throw HLSParseError(line: pending.line, message: "EXTINF is not followed by a URI")
        }
        guard let target = playlist.targetDuration else {
            throw HLSParseError(line: lastLine, message: "missing EXT-X-TARGETDURATION")
        }
        for (segment, line) in zip(playlist.segments, durationLines) where MediaPlaylist.rounded(segment.duration) > target {
            throw HLSParseError(
                line: line,
                message: "EXTINF duration \(Syntax.duration(segment.duration)) rounds to \(MediaPlaylist.rounded(segment.duration)), above EXT-X-TARGETDURATION \(target)")
        }
        let declared = playlist.version ?? 1
        if let unmet = requirements.first(where: { $0.version > declared }) {
            let actual = playlist.version.map { "the playlist declares \($0)" } ?? "the playlist has no EXT-X-VERSION (so version 1)"
            throw HLSParseError(line: unmet.line, message: "\(unmet.feature) needs EXT-X-VERSION \(unmet.version) or higher, \(actual)")
        }
        return playlist
    }
}
