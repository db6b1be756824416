import HTTPTypes
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

// The fast path's reading of a request head, straight from the socket's bytes. Strict on purpose:
// every line ends in CRLF, and anything it does not fully understand is left to NIO's parser
// (two parsers that split a head differently are a request-smuggling channel).

/// The request-line and header facts ``PlaybackFastPath`` reads from one request head.
///
/// `package`, not internal: the fuzz harnesses (fuzz/) call ``parse(_:)`` and ``headEnd(in:)``
/// on arbitrary bytes.
package struct ByteRequestHead {
    package enum Parsed {
        /// A GET or HEAD with no body, that the fast path may try to answer.
        case answerable(HTTPRequest)
        /// A bodyless GET or HEAD that must go to the router whole (its head says
        /// something only the full path handles: `Connection: close`, HTTP/1.0, `Expect`…).
        case routerOnly
        /// Not understood here: the rest of the connection goes to the decoder as it is.
        case passThrough
    }

    /// The headers an answer depends on (ranges, validators, gzip, CORS, the gate's token: see
    /// ``OriginRoutes/answer(_:mode:progress:)``), and `User-Agent`, which viewer analytics
    /// count a session by. Everything else a player sends (`Host`, `Accept`…) is skipped.
    private static let kept: [(lowercase: [UInt8], name: HTTPField.Name)] = [
        (Array("range".utf8), .range),
        (Array("if-range".utf8), .ifRange),
        (Array("if-none-match".utf8), .ifNoneMatch),
        (Array("if-modified-since".utf8), .ifModifiedSince),
        (Array("accept-encoding".utf8), .acceptEncoding),
        (Array("origin".utf8), .origin),
        (Array("authorization".utf8), .authorization),
        (Array("user-agent".utf8), .userAgent),
    ]

    /// Parses one request head: `head` runs from the request line up to and including the blank
    /// line that ends it (CRLF CRLF), with every line ending in CRLF.
    package static func parse(_ head: UnsafeRawBufferPointer) -> Parsed {
        let cr = UInt8(ascii: "\r"), space = UInt8(ascii: " ")
        // Every line ends in CR LF; a CR alone is no line end (NIO's parser refuses it, and so must
        // this one: two parsers that split a head differently are a smuggling channel).
        func endsLine(_ at: Int) -> Bool { at + 1 < head.count && head[at + 1] == UInt8(ascii: "\n") }
        // The request line: METHOD SP target SP HTTP/1.x CRLF
        guard let lineEnd = index(of: cr, in: head, from: 0), endsLine(lineEnd) else { return .passThrough }
        guard let firstSpace = index(of: space, in: head, from: 0, to: lineEnd) else { return .passThrough }
        let method: HTTPRequest.Method
        if equals(head, 0, firstSpace, "GET") {
            method = .get
        } else if equals(head, 0, firstSpace, "HEAD") {
            method = .head
        } else {
            return .passThrough
        }
        let targetStart = firstSpace + 1
        guard let secondSpace = index(of: space, in: head, from: targetStart, to: lineEnd), secondSpace > targetStart,
              head[targetStart] == UInt8(ascii: "/")
        else { return .passThrough }
        for i in targetStart..<secondSpace where !isTargetByte(head[i]) { return .passThrough }
        var routerOnly = false
        if equals(head, secondSpace + 1, lineEnd, "HTTP/1.0") {
            routerOnly = true
        } else if !equals(head, secondSpace + 1, lineEnd, "HTTP/1.1") {
            return .passThrough
        }

        var fields = HTTPFields()
        var line = lineEnd + 2
        // The last line is the empty one (its CRLF ends the head).
        while line < head.count - 2 {
            guard let end = index(of: cr, in: head, from: line), endsLine(end) else { return .passThrough }
            guard let colon = index(of: UInt8(ascii: ":"), in: head, from: line, to: end), colon > line else { return .passThrough }
            for i in line..<colon where !isTokenByte(head[i]) { return .passThrough }
            var valueStart = colon + 1
            while valueStart < end, head[valueStart] == space || head[valueStart] == UInt8(ascii: "\t") { valueStart += 1 }
            var valueEnd = end
            while valueEnd > valueStart, head[valueEnd - 1] == space || head[valueEnd - 1] == UInt8(ascii: "\t") { valueEnd -= 1 }
            for i in valueStart..<valueEnd where !isValueByte(head[i]) { return .passThrough }

            switch colon - line {
            case 14 where equalsLowercased(head, line, colon, "content-length"):
                // Only an empty body keeps the request's end where the head ends.
                guard equals(head, valueStart, valueEnd, "0") else { return .passThrough }
            case 17 where equalsLowercased(head, line, colon, "transfer-encoding"):
                return .passThrough
            case 10 where equalsLowercased(head, line, colon, "connection"):
                // `close` (the router closes after answering) and `upgrade` are the router's.
                let value = String(decoding: UnsafeRawBufferPointer(rebasing: head[valueStart..<valueEnd]), as: UTF8.self).lowercased()
                if value.contains("close") || value.contains("upgrade") { routerOnly = true }
            case 6 where equalsLowercased(head, line, colon, "expect"), 7 where equalsLowercased(head, line, colon, "upgrade"):
                routerOnly = true
            default:
                for kept in kept where kept.lowercase.count == colon - line && equalsLowercased(head, line, colon, kept.lowercase) {
                    // Repeated, a header is combined by the codec's rules: the router's to apply.
                    if fields[kept.name] != nil { routerOnly = true }
                    let value = String(decoding: UnsafeRawBufferPointer(rebasing: head[valueStart..<valueEnd]), as: UTF8.self)
                    fields.append(HTTPField(name: kept.name, value: value))
                }
            }
            line = end + 2
        }
        if routerOnly { return .routerOnly }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: head[targetStart..<secondSpace]), as: UTF8.self)
        return .answerable(HTTPRequest(method: method, scheme: nil, authority: nil, path: target, headerFields: fields))
    }

    /// Where a complete head ends in `bytes` (the index after its CRLF CRLF); nil when it is not
    /// all there yet. `.failure` when the bytes cannot be a head this path reads (a bare LF, or a
    /// line starting with whitespace: an obsolete folded header), so the decoder must have them.
    package static func headEnd(in bytes: UnsafeRawBufferPointer) -> Result<Int?, HeadError> {
        let lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        var i = 0
        while let found = index(of: lf, in: bytes, from: i) {
            guard found > 0, bytes[found - 1] == cr else { return .failure(HeadError()) }
            if found >= 3, bytes[found - 2] == lf, bytes[found - 3] == cr { return .success(found + 1) }
            if found + 1 < bytes.count, bytes[found + 1] == UInt8(ascii: " ") || bytes[found + 1] == UInt8(ascii: "\t") {
                return .failure(HeadError())
            }
            i = found + 1
        }
        return .success(nil)
    }

    package struct HeadError: Error {}

    private static func index(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int? = nil) -> Int? {
        let end = end ?? bytes.count
        guard start < end, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + start, Int32(byte), end - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ text: StaticString) -> Bool {
        guard end - start == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { UnsafeRawBufferPointer(rebasing: bytes[start..<end]).elementsEqual($0) }
    }

    private static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ text: StaticString) -> Bool {
        text.withUTF8Buffer { equalsLowercased(bytes, start, end, $0) }
    }

    private static func equalsLowercased<C: Collection<UInt8>>(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ lowercase: C) -> Bool {
        guard end - start == lowercase.count else { return false }
        var i = start
        for expected in lowercase {
            var byte = bytes[i]
            if byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            guard byte == expected else { return false }
            i += 1
        }
        return true
    }

    /// RFC 9110's tchar: what a header name is made of.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// Visible ASCII, space, tab and obs-text: what a header value may hold.
    private static func isValueByte(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\t") || (byte >= 0x20 && byte != 0x7F)
    }

    /// Visible ASCII: what a request target is made of (no spaces, no controls, no obs-text).
    private static func isTargetByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F
    }
}
