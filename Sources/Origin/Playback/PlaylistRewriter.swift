import NIOCore

/// Rewrites the relative URIs of a playlist served at a version-less URL so they name the version
/// explicitly: `/v/a/master.m3u8` lists `v…/360p/index.m3u8`, and `/v/a/360p/index.m3u8` lists
/// `../v…/360p/00000.ts` and `../v…/keys/…`. Players that start at a version-less URL thus fetch
/// every segment and key from immutable, versioned URLs, which a CDN may keep for a year; only the
/// entry playlist changes when an asset is republished.
enum PlaylistRewriter {
    /// - Parameters:
    ///   - directory: the playlist's folder inside the version (`""` for the master, `"360p"`).
    ///   - version: the version the URIs should name.
    static func rewrite(_ playlist: ByteBuffer, directory: String, version: String) -> ByteBuffer {
        let text = String(buffer: playlist)
        let prefix = versionPrefix(directory: directory, version: version)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
            if trimmed.isEmpty { return "" }
            if trimmed.hasPrefix("#") { return rewriteAttributes(trimmed, directory: directory, prefix: prefix) }
            return rewrite(uri: trimmed, directory: directory, prefix: prefix)
        }
        let output = lines.joined(separator: "\n")
        return ByteBuffer(string: output)
    }

    /// Rewrites the sheet URIs of a storyboard's WebVTT index (its cue payloads, `sheet.jpg#xywh=…`)
    /// the same way; the header, the blank lines and the cue timings stay as they are.
    static func rewriteStoryboard(_ index: ByteBuffer, directory: String, version: String) -> ByteBuffer {
        let prefix = versionPrefix(directory: directory, version: version)
        let lines = String(buffer: index).split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
            guard isCueURI(trimmed) else { return String(trimmed) }
            return rewrite(uri: trimmed, directory: directory, prefix: prefix)
        }
        return ByteBuffer(string: lines.joined(separator: "\n"))
    }

    /// Appends `query` to the sheet URI of every cue of a storyboard's index, before its
    /// `#xywh=` fragment.
    static func appendingQueryToStoryboard(_ index: ByteBuffer, _ query: String) -> ByteBuffer {
        let lines = String(buffer: index).split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard isCueURI(line) else { return String(line) }
            let fragment = line.firstIndex(of: "#") ?? line.endIndex
            let uri = line[..<fragment]
            return (uri.contains("?") ? "\(uri)&\(query)" : "\(uri)?\(query)") + line[fragment...]
        }
        return ByteBuffer(string: lines.joined(separator: "\n"))
    }

    /// What names the version from a file in `directory`: `../` per folder, then the version.
    private static func versionPrefix(directory: String, version: String) -> String {
        String(repeating: "../", count: directory.isEmpty ? 0 : directory.split(separator: "/").count) + version + "/"
    }

    /// A storyboard index line that is a cue's payload (a sheet URI), not the header, a blank,
    /// a cue's timing or a note.
    private static func isCueURI(_ line: Substring) -> Bool {
        !line.isEmpty && !line.hasPrefix("WEBVTT") && !line.contains("-->") && !line.hasPrefix("NOTE")
    }

    /// Rewrites `URI="…"` attributes of a tag (EXT-X-KEY, EXT-X-MEDIA, EXT-X-MAP, …).
    private static func rewriteAttributes(_ tag: Substring, directory: String, prefix: String) -> String {
        guard tag.contains("URI=\"") else { return String(tag) }
        var result = ""
        var rest = tag[...]
        while let start = rest.range(of: "URI=\"") {
            result += rest[..<start.upperBound]
            let value = rest[start.upperBound...]
            guard let end = value.firstIndex(of: "\"") else {
                rest = value
                break
            }
            result += rewrite(uri: value[..<end], directory: directory, prefix: prefix)
            rest = value[end...]
        }
        return result + rest
    }

    /// A relative URI resolved inside the version and prefixed with it; absolute URIs, and any that
    /// would leave the version's folder, are kept as they are.
    static func rewrite(uri: Substring, directory: String, prefix: String) -> String {
        if uri.hasPrefix("/") || uri.contains(":") { return String(uri) }
        let pathEnd = uri.firstIndex { $0 == "?" || $0 == "#" } ?? uri.endIndex
        var parts = directory.isEmpty ? [] : directory.split(separator: "/").map(String.init)
        for component in uri[..<pathEnd].split(separator: "/", omittingEmptySubsequences: false) {
            switch component {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return String(uri) }
                parts.removeLast()
            default: parts.append(String(component))
            }
        }
        return prefix + parts.joined(separator: "/") + uri[pathEnd...]
    }

    /// `value` percent-encoded for a query, keeping only RFC 3986's unreserved characters: callers
    /// check what they write (a playback token's grammar), and this makes sure nothing written
    /// into a URI can end the line, the quoted attribute or the query.
    static func queryValue(_ value: some StringProtocol) -> String {
        var encoded = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                encoded += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return encoded
    }

    /// Appends `query` to the URIs a player fetches from the origin for a gated asset: variant
    /// playlists (`….m3u8`, also in `URI="…"` attributes) and keys (`EXT-X-KEY`). Segment URIs are
    /// left alone so every viewer shares them.
    static func appendingQuery(to playlist: ByteBuffer, _ query: String) -> ByteBuffer {
        func append(_ uri: Substring) -> String {
            uri.contains("?") ? "\(uri)&\(query)" : "\(uri)?\(query)"
        }
        let lines = String(buffer: playlist).split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.hasPrefix("#") {
                guard line.hasPrefix("#EXT-X-KEY:") || line.hasPrefix("#EXT-X-MEDIA:") || line.hasPrefix("#EXT-X-I-FRAME-STREAM-INF:"),
                      let start = line.range(of: "URI=\""), let end = line[start.upperBound...].firstIndex(of: "\"")
                else { return String(line) }
                return String(line[..<start.upperBound]) + append(line[start.upperBound..<end]) + line[end...]
            }
            let path = line.split(separator: "?", maxSplits: 1).first ?? ""
            return path.hasSuffix(".m3u8") ? append(line) : String(line)
        }
        return ByteBuffer(string: lines.joined(separator: "\n"))
    }
}
