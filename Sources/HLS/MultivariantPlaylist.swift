extension MultivariantPlaylist {
    /// The EXT-X-VERSION written: ``version`` if set, else 1, since nothing this model writes
    /// needs a higher version.
    public var resolvedVersion: Int { version ?? 1 }

    /// Writes the playlist: renditions (EXT-X-MEDIA) first, then each EXT-X-STREAM-INF followed
    /// by its URI. Every line ends with "\n". URIs and quoted values must not contain line breaks
    /// or `"`, which RFC 8216 cannot escape.
    public func render() -> String {
        var out = "#EXTM3U\n#EXT-X-VERSION:\(resolvedVersion)\n"
        if independentSegments { out += "#EXT-X-INDEPENDENT-SEGMENTS\n" }
        for rendition in renditions {
            var attributes = [
                "TYPE=\(rendition.type.rawValue)", "GROUP-ID=\"\(rendition.groupID)\"", "NAME=\"\(rendition.name)\"",
            ]
            if let language = rendition.language { attributes.append("LANGUAGE=\"\(language)\"") }
            attributes.append("DEFAULT=\(rendition.isDefault ? "YES" : "NO")")
            attributes.append("AUTOSELECT=\(rendition.autoselect ? "YES" : "NO")")
            if let id = rendition.instreamID { attributes.append("INSTREAM-ID=\"\(id)\"") }
            if let channels = rendition.channels { attributes.append("CHANNELS=\"\(channels)\"") }
            if let uri = rendition.uri { attributes.append("URI=\"\(uri)\"") }
            out += "#EXT-X-MEDIA:" + attributes.joined(separator: ",") + "\n"
        }
        for variant in variants {
            var attributes = ["BANDWIDTH=\(variant.bandwidth)"]
            if let average = variant.averageBandwidth { attributes.append("AVERAGE-BANDWIDTH=\(average)") }
            if !variant.codecs.isEmpty { attributes.append("CODECS=\"\(variant.codecs.joined(separator: ","))\"") }
            if let size = variant.resolution { attributes.append("RESOLUTION=\(size.width)x\(size.height)") }
            if let rate = variant.frameRate { attributes.append("FRAME-RATE=\(Syntax.fixed(rate, decimals: 3))") }
            if let audio = variant.audioGroup { attributes.append("AUDIO=\"\(audio)\"") }
            out += "#EXT-X-STREAM-INF:" + attributes.joined(separator: ",") + "\n" + variant.uri + "\n"
        }
        return out
    }

    /// Parses a multivariant playlist strictly: `#EXTM3U` first, every EXT-X-STREAM-INF followed
    /// by a URI, BANDWIDTH present and numeric, attribute values validated, AUDIO groups declared
    /// by an EXT-X-MEDIA. Media-playlist tags are an error; unknown tags are ignored.
    public static func parse(_ text: String) throws -> MultivariantPlaylist {
        var playlist = MultivariantPlaylist()
        var pending: (line: Int, variant: VariantStream)?
        var audioReferences: [(group: String, line: Int)] = []
        var versionLine: Int?

        for (number, line) in try PlaylistLines.split(text).dropFirst() where !line.isEmpty {
            guard line.hasPrefix("#") else {
                guard var variant = pending?.variant else {
                    throw HLSParseError(line: number, message: "URI '\(line)' is not preceded by EXT-X-STREAM-INF")
                }
                variant.uri = String(line)
                playlist.variants.append(variant)
                pending = nil
                continue
            }
            guard line.hasPrefix("#EXT") else { continue }
            if let pending {
                throw HLSParseError(line: pending.line, message: "EXT-X-STREAM-INF is not followed by a URI")
            }
            let (name, value) = PlaylistLines.tag(line)
            func attributes() throws -> AttributeList {
                guard let value, !value.isEmpty else { throw HLSParseError(line: number, message: "\(name) needs attributes") }
                return try AttributeList(value, line: number)
            }
            switch name {
            case "EXT-X-VERSION":
                if let versionLine {
                    throw HLSParseError(line: number, message: "duplicate EXT-X-VERSION (first on line \(versionLine))")
                }
                guard let value, let version = Syntax.decimalInteger(value) else {
                    throw HLSParseError(line: number, message: "EXT-X-VERSION '\(value ?? "")' is not a decimal integer")
                }
                playlist.version = version
                versionLine = number
            case "EXT-X-INDEPENDENT-SEGMENTS":
                playlist.independentSegments = true
            case "EXT-X-MEDIA":
                playlist.renditions.append(try parseRendition(attributes()))
            case "EXT-X-STREAM-INF":
                let variant = try parseVariant(attributes())
                if let group = variant.audioGroup { audioReferences.append((group, number)) }
                pending = (number, variant)
            case "EXTINF", "EXT-X-TARGETDURATION", "EXT-X-MEDIA-SEQUENCE", "EXT-X-KEY", "EXT-X-BYTERANGE",
                 "EXT-X-ENDLIST", "EXT-X-PLAYLIST-TYPE", "EXT-X-DISCONTINUITY":
                throw HLSParseError(line: number, message: "\(name) belongs in a media playlist, not a multivariant playlist")
            default:
                break  // RFC 8216 §4.1: unknown tags are ignored.
            }
        }
        if let pending {
            throw HLSParseError(line: pending.line, message: "EXT-X-STREAM-INF is not followed by a URI")
        }
        let audioGroups = Set(playlist.renditions.filter { $0.type == .audio }.map(\.groupID))
        if let missing = audioReferences.first(where: { !audioGroups.contains($0.group) }) {
            throw HLSParseError(line: missing.line, message: "AUDIO group '\(missing.group)' has no EXT-X-MEDIA with TYPE=AUDIO")
        }
        return playlist
    }

    private static func parseVariant(_ list: AttributeList) throws -> VariantStream {
        var variant = VariantStream(uri: "", bandwidth: try list.integer("BANDWIDTH", required: true)!)
        variant.averageBandwidth = try list.integer("AVERAGE-BANDWIDTH")
        if let codecs = try list.quoted("CODECS") {
            variant.codecs = codecs.split(separator: ",").map { $0.trimmingSpaces() }
            guard !variant.codecs.contains(where: \.isEmpty), !variant.codecs.isEmpty else {
                throw HLSParseError(line: list.line, message: "CODECS '\(codecs)' has an empty entry")
            }
        }
        if let text = try list.plain("RESOLUTION") {
            let parts = text.split(separator: "x", omittingEmptySubsequences: false)
            guard parts.count == 2, let width = Syntax.decimalInteger(parts[0]), let height = Syntax.decimalInteger(parts[1]) else {
                throw HLSParseError(line: list.line, message: "RESOLUTION '\(text)' is not <width>x<height>")
            }
            variant.resolution = Resolution(width: width, height: height)
        }
        if let text = try list.plain("FRAME-RATE") {
            guard let rate = Syntax.decimalFloat(text) else {
                throw HLSParseError(line: list.line, message: "FRAME-RATE '\(text)' is not a number")
            }
            variant.frameRate = rate
        }
        variant.audioGroup = try list.quoted("AUDIO")
        return variant
    }

    private static func parseRendition(_ list: AttributeList) throws -> Rendition {
        let typeText = try list.plain("TYPE", required: true)!
        guard let type = Rendition.MediaType(rawValue: typeText) else {
            throw HLSParseError(line: list.line, message: "EXT-X-MEDIA TYPE '\(typeText)' is not AUDIO, VIDEO, SUBTITLES or CLOSED-CAPTIONS")
        }
        let rendition = Rendition(
            type: type,
            groupID: try list.quoted("GROUP-ID", required: true)!,
            name: try list.quoted("NAME", required: true)!,
            language: try list.quoted("LANGUAGE"),
            isDefault: try list.yesNo("DEFAULT"),
            autoselect: try list.yesNo("AUTOSELECT"),
            uri: try list.quoted("URI"),
            channels: try list.quoted("CHANNELS"),
            instreamID: try list.quoted("INSTREAM-ID"))
        // RFC 8216 §4.3.4.1: rules a player relies on.
        if rendition.isDefault, list.has("AUTOSELECT"), !rendition.autoselect {
            throw HLSParseError(line: list.line, message: "EXT-X-MEDIA with DEFAULT=YES must have AUTOSELECT=YES")
        }
        if type == .closedCaptions {
            guard rendition.uri == nil else {
                throw HLSParseError(line: list.line, message: "EXT-X-MEDIA with TYPE=CLOSED-CAPTIONS must not have a URI")
            }
            guard rendition.instreamID != nil else {
                throw HLSParseError(line: list.line, message: "EXT-X-MEDIA with TYPE=CLOSED-CAPTIONS needs INSTREAM-ID")
            }
        } else if type == .subtitles, rendition.uri == nil {
            throw HLSParseError(line: list.line, message: "EXT-X-MEDIA with TYPE=SUBTITLES needs a URI")
        }
        return rendition
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
