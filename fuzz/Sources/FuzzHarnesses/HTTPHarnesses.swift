import Foundation
import HTTPTypes
import Origin
import Vault

/// What the origin reads from a client before anything else: request heads on the socket's bytes,
/// and the conditional, range and coding headers a playback answer depends on.
enum HTTPHarnesses {
    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")

    /// The byte fast path: where a head ends, then the head read as the fast path (PlaybackFastPath) reads it.
    static let requestHead = Harness("request-head", maxLength: 8192, "ByteRequestHead.headEnd and .parse on socket bytes") { bytes in
        switch ByteRequestHead.headEnd(in: bytes) {
        case .failure:
            require(hasBareLFOrFold(bytes), "headEnd refused a head with neither a bare LF nor a folded line")
        case .success(nil):
            require(firstBlankLine(bytes) == nil, "headEnd missed the CRLF CRLF that ends a head")
        case .success(let end?):
            require(end <= bytes.count, "headEnd reported a head of \(end) bytes in \(bytes.count)")
            require(end == firstBlankLine(bytes), "headEnd ended the head at \(end), not after the first CRLF CRLF")
            require(!hasBareLFOrFold(UnsafeRawBufferPointer(rebasing: bytes[..<end])), "headEnd accepted a bare LF or a folded line")
            check(ByteRequestHead.parse(UnsafeRawBufferPointer(rebasing: bytes[..<end])), head: UnsafeRawBufferPointer(rebasing: bytes[..<end]))
        }
    }

    /// The playback URL grammar, on any request target: what it takes apart names only store
    /// names, never a dot segment or a path outside the asset.
    /// The console's session cookie, sent by any browser: only a cookie this server signed is a
    /// session, and no bytes make the check trap (the corpus's well-formed cookies are another
    /// key's, so the fuzzer starts from the layout and still cannot forge the HMAC).
    static let browserSession = Harness("browser-session", maxLength: 512, "BrowserSessions.session on cookie values") { bytes in
        let value = String(decoding: bytes, as: UTF8.self)
        require(sessions.session(value, knownKeyDigests: [sessionKeyDigest]) == nil, "a cookie this server never signed was taken for a session")
        require(!sessions.isCSRFToken(value, for: value), "a cookie was taken for its own CSRF token")
    }

    private static let sessions = BrowserSessions(masterKey: try! MasterKey(bytes: Array(repeating: 7, count: 32)))
    private static let sessionKeyDigest = Digest.sha256(Array("fuzz-api-key-0123456789".utf8))

    /// A player's beacon (POST /v/{asset}/beacon), unauthenticated: parsed, or refused with a reason.
    static let beacon = Harness("beacon", maxLength: 2048, "Beacon.parse on beacon bodies") { bytes in
        do throws(BeaconError) {
            let beacon = try Beacon.parse(Array(bytes))
            require(bytes.count <= Beacon.maximumBytes, "a beacon over the size limit was read")
            require(beacon.milliseconds.map { (0...Beacon.maximumMilliseconds).contains($0) } ?? true, "ms out of range kept")
        } catch {
            require(!error.description.isEmpty, "a refusal without a reason")
        }
    }

    static let playbackTarget = Harness("playback-target", maxLength: 1024, "PlaybackTarget on request targets") { bytes in
        guard let target = PlaybackTarget(String(decoding: bytes, as: UTF8.self)) else { return }
        let nameBytes = Set(Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.".utf8))
        require(!target.asset.isEmpty && target.asset.utf8.allSatisfy(nameBytes.contains), "asset \(target.asset.debugDescription) is not a name")
        require(target.version.map { $0.utf8.allSatisfy(nameBytes.contains) && !$0.isEmpty } ?? true, "version is not a name")
        let parts = target.relative.split(separator: "/", omittingEmptySubsequences: false)
        require((1...2).contains(parts.count), "relative \(target.relative.debugDescription) has \(parts.count) parts")
        for part in parts {
            require(!part.isEmpty && part != "." && part != ".." && part.utf8.allSatisfy(nameBytes.contains), "relative part \(part.debugDescription)")
        }
        switch target.kind {
        case .key(let id): require(target.relative == "keys/" + id, "a key's relative is not keys/{id}")
        case .file(let type): require(MediaType.of(target.relative) == type, "the type does not follow the name")
        }
        require(target.token.map { !$0.isEmpty } ?? true, "an empty token kept")
    }

    /// What an answerable head must be: GET or HEAD of an origin-form target taken from the request
    /// line as it is, with only the headers an answer depends on (and the user agent viewer
    /// analytics count sessions by).
    private static func check(_ parsed: ByteRequestHead.Parsed, head: UnsafeRawBufferPointer) {
        guard case .answerable(let request) = parsed else { return }
        let line = Array(head.prefix { $0 != cr })
        let words = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        require(words.count == 3, "an answerable request line without exactly three words")
        let method = String(decoding: words[0], as: UTF8.self)
        require((method == "GET" && request.method == .get) || (method == "HEAD" && request.method == .head), "method \(method) read as \(request.method)")
        require(request.path == String(decoding: words[1], as: UTF8.self), "the target is not the request line's")
        require(request.path?.first == "/", "an answerable target that is not origin-form")
        let kept: Set<String> = ["range", "if-range", "if-none-match", "if-modified-since", "accept-encoding", "origin", "authorization", "user-agent"]
        for field in request.headerFields {
            require(kept.contains(field.name.canonicalName), "kept a header nothing reads: \(field.name)")
        }
    }

    /// Where the first CRLF CRLF ends, if any.
    private static func firstBlankLine(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 3..<bytes.count where bytes[i] == lf && bytes[i - 1] == cr && bytes[i - 2] == lf && bytes[i - 3] == cr {
            return i + 1
        }
        return nil
    }

    /// An LF without its CR, or a line starting with a space or tab (obsolete folding).
    private static func hasBareLFOrFold(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for i in bytes.indices where bytes[i] == lf {
            if i == 0 || bytes[i - 1] != cr { return true }
            if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: " ") || bytes[i + 1] == UInt8(ascii: "\t") {
                // A fold only counts before the head's end: after CRLF CRLF it is the next request's.
                if firstBlankLine(UnsafeRawBufferPointer(rebasing: bytes[...i])) == nil { return true }
            }
        }
        return false
    }

    /// `If-Modified-Since` and friends: an IMF-fixdate, and the date written back.
    static let httpDate = Harness("http-date", maxLength: 64, "HTTPSemantics.parseHTTPDate, and httpDate of what it accepts") { bytes in
        let text = bytes.text
        _ = HTTPSemantics.notModified(ifNoneMatch: nil, ifModifiedSince: text, eTag: "\"e\"", lastModified: 0)
        guard let seconds = HTTPSemantics.parseHTTPDate(text) else { return }
        let written = HTTPSemantics.httpDate(seconds)
        require(HTTPSemantics.parseHTTPDate(written) == seconds, "'\(text)' is \(seconds) s, written back as '\(written)', which does not read as \(seconds)")
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let weekday = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][Int(parts.tm_wday)]
        require(written.hasPrefix(weekday + ", "), "\(seconds) s is a \(weekday), written as '\(written)'")
    }

    /// `Range` with `If-Range`, `If-None-Match` and `Accept-Encoding`. The first byte picks the
    /// representation's size; the rest is up to three lines: the header, `If-Range`, the ETag.
    static let httpRange = Harness("http-range", maxLength: 512, "HTTPSemantics.range, .matches and .acceptsGzip") { bytes in
        guard let first = bytes.first else { return }
        var rest = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        let sizes = [0, 1, 2, 100, 1 << 20, Int.max, Int.max - 1]
        let size: Int
        if Int(first) % 8 < sizes.count {
            size = sizes[Int(first) % 8]
        } else {
            // Any size at all, from the next eight bytes.
            var value: UInt64 = 0
            for byte in rest.prefix(8) { value = value << 8 | UInt64(byte) }
            size = Int(value & UInt64(Int.max))
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(8))
        }
        let lines = rest.text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        let header = lines[0]
        let ifRange = lines.count > 1 && !lines[1].isEmpty ? lines[1] : nil
        let eTag = lines.count > 2 ? lines[2] : "\"v1-abc\""

        switch HTTPSemantics.range(header, ifRange: ifRange, size: size, eTag: eTag) {
        case .partial(let lower, let upper):
            require(0 <= lower && lower < upper && upper <= size, "Range '\(header)' of \(size) bytes gave \(lower)..<\(upper)")
        case .whole, .unsatisfiable:
            break
        }
        let matched = HTTPSemantics.matches(header, eTag: eTag)
        if header.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == "*" }) {
            require(matched, "If-None-Match '\(header)' holds '*' but did not match")
        }
        _ = HTTPSemantics.notModified(ifNoneMatch: header, ifModifiedSince: ifRange, eTag: eTag, lastModified: size)
        _ = HTTPSemantics.acceptsGzip(header)
    }
}
