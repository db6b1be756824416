import Ethereum
/// The parts of RFC 3986's grammar an EIP-4361 message uses. Each check returns nil when the text
/// conforms, or the reason it does not.
///
/// URIs are checked structurally — scheme, authority (userinfo, host, port), path, query and
/// fragment each from their own character set, percent-escapes well formed, brackets only around an
/// IP literal — without resolving anything or validating IPv6 addresses digit by digit.
enum URIGrammar {
    static func isAlpha(_ c: UInt8) -> Bool { (0x41...0x5a).contains(c) || (0x61...0x7a).contains(c) }
    static func isDigit(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) }
    static func isHexDigit(_ c: UInt8) -> Bool { EthereumHex.nibble(c) != nil }
    /// `ALPHA / DIGIT / "-" / "." / "_" / "~"`
    static func isUnreserved(_ c: UInt8) -> Bool { isAlpha(c) || isDigit(c) || c == 0x2d || c == 0x2e || c == 0x5f || c == 0x7e }
    /// `"!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="`
    static func isSubDelim(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
            true
        default: false
        }
    }
    /// `":" / "/" / "?" / "#" / "[" / "]" / "@"`
    static func isGenDelim(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "@"):
            true
        default: false
        }
    }
    static func isReserved(_ c: UInt8) -> Bool { isGenDelim(c) || isSubDelim(c) }

    /// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`
    static func checkScheme(_ text: some Collection<UInt8>) -> String? {
        guard let first = text.first else { return "the scheme is empty" }
        guard isAlpha(first) else { return "the scheme must start with a letter" }
        if let bad = text.first(where: { !(isAlpha($0) || isDigit($0) || $0 == 0x2b || $0 == 0x2d || $0 == 0x2e) }) {
            return "the scheme contains \(EthereumHex.describe(bad))"
        }
        return nil
    }

    /// `authority = [ userinfo "@" ] host [ ":" port ]`, with a non-empty host when `requireHost`.
    static func checkAuthority(_ text: ArraySlice<UInt8>, requireHost: Bool) -> String? {
        var rest = text
        if let at = rest.firstIndex(of: 0x40) {
            // userinfo = *( unreserved / pct-encoded / sub-delims / ":" )
            if let reason = checkCharacters(rest[..<at], part: "userinfo", allowing: { isUnreserved($0) || isSubDelim($0) || $0 == 0x3a }) {
                return reason
            }
            rest = rest[rest.index(after: at)...]
        }
        var port: ArraySlice<UInt8> = []
        if rest.first == 0x5b {
            // IP-literal = "[" ( IPv6address / IPvFuture ) "]"
            guard let close = rest.firstIndex(of: 0x5d) else { return "the IP literal has no closing ']'" }
            let literal = rest[rest.index(after: rest.startIndex)..<close]
            guard !literal.isEmpty, literal.allSatisfy({ isHexDigit($0) || $0 == 0x3a || $0 == 0x2e || isUnreserved($0) || isSubDelim($0) }) else {
                return "the IP literal '[…]' is not an IPv6 address"
            }
            let after = rest[rest.index(after: close)...]
            if let colon = after.first {
                guard colon == 0x3a else { return "only ':port' may follow the IP literal" }
                port = after.dropFirst()
            }
        } else {
            // host = IPv4address / reg-name; reg-name = *( unreserved / pct-encoded / sub-delims )
            var host = rest
            if let colon = rest.lastIndex(of: 0x3a) {
                host = rest[..<colon]
                port = rest[rest.index(after: colon)...]
            }
            if let reason = checkCharacters(host, part: "host", allowing: { isUnreserved($0) || isSubDelim($0) }) { return reason }
            if requireHost, host.isEmpty { return "the host is empty" }
        }
        // port = *DIGIT
        if let bad = port.first(where: { !isDigit($0) }) { return "the port contains \(EthereumHex.describe(bad))" }
        return nil
    }

    /// `URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]`
    static func checkURI(_ text: ArraySlice<UInt8>) -> String? {
        guard let colon = text.firstIndex(of: 0x3a) else { return "not a URI: no ':' after a scheme" }
        if let reason = checkScheme(text[..<colon]) { return reason }
        var rest = text[text.index(after: colon)...]

        if let hash = rest.firstIndex(of: 0x23) {
            // fragment = *( pchar / "/" / "?" )
            if let reason = checkCharacters(rest[rest.index(after: hash)...], part: "fragment", allowing: { isPChar($0) || $0 == 0x2f || $0 == 0x3f }) {
                return reason
            }
            rest = rest[..<hash]
        }
        if let question = rest.firstIndex(of: 0x3f) {
            // query = *( pchar / "/" / "?" )
            if let reason = checkCharacters(rest[rest.index(after: question)...], part: "query", allowing: { isPChar($0) || $0 == 0x2f || $0 == 0x3f }) {
                return reason
            }
            rest = rest[..<question]
        }
        var path = rest
        if rest.starts(with: [0x2f, 0x2f]) {
            // "//" authority path-abempty
            let afterSlashes = rest.dropFirst(2)
            let end = afterSlashes.firstIndex(of: 0x2f) ?? afterSlashes.endIndex
            if let reason = checkAuthority(afterSlashes[..<end], requireHost: false) { return reason }
            path = afterSlashes[end...]
        }
        // path-abempty / path-absolute / path-rootless / path-empty: segments of pchar.
        return checkCharacters(path, part: "path", allowing: { isPChar($0) || $0 == 0x2f })
    }

    /// `pchar = unreserved / pct-encoded / sub-delims / ":" / "@"`, without the percent escapes.
    static func isPChar(_ c: UInt8) -> Bool { isUnreserved(c) || isSubDelim(c) || c == 0x3a || c == 0x40 }

    /// Every character of `text` is `allowed` or part of a well-formed `%XX` escape.
    static func checkCharacters(_ text: ArraySlice<UInt8>, part: String, allowing allowed: (UInt8) -> Bool) -> String? {
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            if c == 0x25 {
                guard index + 2 < text.endIndex,
                      isHexDigit(text[index + 1]), isHexDigit(text[index + 2]) else {
                    return "the \(part) has a '%' not followed by two hex digits"
                }
                index += 3
                continue
            }
            guard allowed(c) else { return "the \(part) contains \(EthereumHex.describe(c))" }
            index += 1
        }
        return nil
    }
}
