import NIOPosix
import Store

// The grammar of playback URLs, parsed once per URL and thread.

/// A playback URL taken apart: `/v/{asset}/master.m3u8`, `/v/{asset}/{rendition}/{file}`,
/// `/v/{asset}/{version}/{file}`, `/v/{asset}/{version}/{rendition}/{file}`, the stills at
/// `[/{version}]/poster.jpg`, `[/{version}]/storyboard.vtt` and `[/{version}]/storyboard/{sheet}.jpg`,
/// and the keys at `[/{version}]/keys/{key_id}`; the query's first `token`.
///
/// Names are the store's (letters, digits, `-`, `_`, `.`). Percent-escapes are decoded per
/// segment, and a segment that decodes to anything else (a `/`, a NUL, a space) is refused, as
/// are empty and dot segments: such a URL names nothing (404), before any file is touched.
///
/// `package`, not internal: the fuzz harnesses (fuzz/) take arbitrary paths apart with it.
package struct PlaybackTarget: Equatable {
    package enum Kind: Equatable {
        case file(MediaType)
        /// `keys/{key_id}`
        case key(String)
    }

    package var asset: String
    package var version: String?
    package var relative: String
    package var kind: Kind
    /// The query's first `token`, decoded, when not empty.
    package var token: String?

    package init?(_ path: String?) {
        guard let path else { return nil }
        var utf8 = Substring(path).utf8[...]
        var query = utf8[utf8.endIndex...]
        if let mark = utf8.firstIndex(of: UInt8(ascii: "?")) {
            query = utf8[utf8.index(after: mark)...]
            utf8 = utf8[..<mark]
        }
        let raw = utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard raw.count >= 4, raw.count <= 6, raw[0].isEmpty else { return nil }
        var parts: [String] = []
        parts.reserveCapacity(raw.count - 1)
        for segment in raw.dropFirst() {
            guard let name = Self.name(segment) else { return nil }
            parts.append(name)
        }
        guard parts[0] == "v" else { return nil }
        asset = parts[1]
        guard let token = Self.token(in: query) else { return nil }
        self.token = token.isEmpty ? nil : token
        let rest = parts[2...]
        var version: String?
        var names = Array(rest)
        if names.count == 3 || (names.count == 2 && AssetStore.isVersionName(names[0])) {
            version = names.removeFirst()
        }
        self.version = version
        if names.count == 1 {
            // `master.m3u8` (or a still), at the top of the published version or of a named one.
            guard version != nil || Self.entryNames.contains(names[0]) else { return nil }
            relative = names[0]
        } else if names[0] == "keys" {
            relative = "keys/" + names[1]
            kind = .key(names[1])
            return
        } else {
            relative = names[0] + "/" + names[1]
        }
        guard StorePath.isSafeRelative(relative), let type = MediaType.of(relative) else { return nil }
        kind = .file(type)
    }

    /// The files a version-less URL may name at the top of the published version.
    static let entryNames: Set<String> = ["master.m3u8", "poster.jpg", "storyboard.vtt"]

    /// One path segment, percent-decoded; nil when it is empty, a dot segment, or not a name.
    private static func name(_ segment: Substring.UTF8View.SubSequence) -> String? {
        guard let decoded = decoded(segment), !decoded.isEmpty, decoded != ".", decoded != "..",
              decoded.utf8.allSatisfy(isNameByte)
        else { return nil }
        return decoded
    }

    /// The first `token` parameter's value, decoded ("" when there is none); nil when an escape
    /// is malformed.
    private static func token(in query: Substring.UTF8View.SubSequence) -> String? {
        for pair in query.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decoded(parts[0]) else { return nil }
            guard name == "token" else { continue }
            guard parts.count == 2 else { return "" }
            return decoded(parts[1])
        }
        return ""
    }

    /// `bytes` with `%XX` escapes decoded (as UTF-8, invalid sequences replaced); nil for a `%`
    /// not followed by two hex digits.
    private static func decoded(_ bytes: Substring.UTF8View.SubSequence) -> String? {
        guard bytes.contains(UInt8(ascii: "%")) else { return String(Substring(bytes)) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            index = bytes.index(after: index)
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                continue
            }
            guard index < bytes.endIndex, let high = hexValue(bytes[index]) else { return nil }
            index = bytes.index(after: index)
            guard index < bytes.endIndex, let low = hexValue(bytes[index]) else { return nil }
            index = bytes.index(after: index)
            out.append(high << 4 | low)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Letters, digits, `-`, `_`, `.`: what the store's names are made of.
    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            true
        default:
            false
        }
    }
}

/// What the origin serves, by file name.
package enum MediaType {
    case playlist, transportStream
    /// A poster or a storyboard sheet.
    case jpeg
    /// A storyboard's index: like a playlist, it names other files (its sheets).
    case webVTT

    package static func of(_ relative: String) -> MediaType? {
        if relative.hasSuffix(".m3u8") { return .playlist }
        if relative.hasSuffix(".ts") { return .transportStream }
        if relative.hasSuffix(".jpg") { return .jpeg }
        if relative.hasSuffix(".vtt") { return .webVTT }
        return nil
    }

    var contentType: String {
        switch self {
        case .playlist: "application/vnd.apple.mpegurl"
        case .transportStream: "video/mp2t"
        case .jpeg: "image/jpeg"
        case .webVTT: "text/vtt; charset=utf-8"
        }
    }

    /// An index of other files: reached without a version, its URIs are rewritten to name one.
    var namesFiles: Bool { self == .playlist || self == .webVTT }
}

/// A playback URL taken apart once (``PlaybackTarget``, its ``AssetID``) and the L1 key it last
/// named. Players ask for the same URLs over and over, so each event-loop thread keeps the ones it
/// has seen (``memo(_:)``); only the published version is looked up on every request.
final class KnownTarget {
    let target: PlaybackTarget
    /// nil: the name is not a valid asset id (not found).
    let asset: AssetID?
    /// Its place in a rendition, for read-ahead; nil when it is not a numbered segment.
    let segment: NumberedSegment?
    /// What metrics count a file under.
    let route: OriginMetrics.Route
    /// An entry playlist (a playlist reached without a version): L1 keeps it rewritten to name the
    /// version, apart from the version's own file.
    let isEntryPlaylist: Bool
    /// The L1 key of a file under ``keyVersion`` ("" until the first: no version is called that).
    private var key = ""
    private var keyVersion = ""

    private init(_ target: PlaybackTarget) {
        self.target = target
        asset = try? AssetID(target.asset)
        segment = target.kind == .file(.transportStream) ? NumberedSegment(target.relative) : nil
        if target.version == nil, case .file(let type) = target.kind { isEntryPlaylist = type.namesFiles } else { isEntryPlaylist = false }
        if case .key = target.kind {
            route = .key
        } else {
            route = OriginMetrics.Route(file: target.relative)
        }
    }

    /// The L1 key of this file in `version`: the one made last time while the version stays.
    func cacheKey(in version: PublishedVersion) -> String {
        if keyVersion != version.version {
            key = OriginRoutes.cacheKey(OriginRoutes.objectName(version, target.relative), rewritten: isEntryPlaylist)
            keyVersion = version.version
        }
        return key
    }

    /// Paths seen on this thread; nil for one that names no playback object. At most ``capacity``
    /// of at most ``maximumPathBytes`` each (2 MiB a thread), then forgotten all at once: a scan
    /// of odd URLs costs a rebuild, never memory.
    private final class Memo {
        var known: [String: KnownTarget?] = [:]
    }

    static let capacity = 4096
    /// A longer path (a long token, or junk) is taken apart every time, not kept.
    static let maximumPathBytes = 512
    private nonisolated(unsafe) static let perThread = ThreadSpecificVariable<Memo>()

    /// `path` taken apart, from this thread's memo when it has been seen here before.
    static func memo(_ path: String?) -> KnownTarget? {
        guard let path else { return nil }
        guard path.utf8.count <= maximumPathBytes else { return PlaybackTarget(path).map(KnownTarget.init) }
        let memo: Memo
        if let existing = perThread.currentValue {
            memo = existing
        } else {
            memo = Memo()
            perThread.currentValue = memo
        }
        if let seen = memo.known[path] { return seen }
        let made = PlaybackTarget(path).map(KnownTarget.init)
        if memo.known.count >= capacity { memo.known.removeAll(keepingCapacity: true) }
        memo.known[path] = made
        return made
    }
}
