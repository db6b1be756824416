/// An RFC 8216 §4.2 attribute list, parsed into names and raw or quoted values.
struct AttributeList {
    enum Value: Equatable {
        case quoted(String)
        case plain(String)
    }

    private(set) var values: [String: Value] = [:]
    let line: Int

    /// Parses `NAME=value,NAME="quoted, with commas",…`. Quoted strings may hold commas but not
    /// quotes or line breaks, so a quote always ends the string.
    init(_ text: Substring, line: Int) throws {
        self.line = line
        var rest = text[...]
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "=") else {
                throw HLSParseError(line: line, message: "attribute '\(rest)' has no value")
            }
            let name = String(rest[..<equals])
            guard !name.isEmpty, name.utf8.allSatisfy({ (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D }) else {
                throw HLSParseError(line: line, message: "invalid attribute name '\(name)'")
            }
            rest = rest[rest.index(after: equals)...]
            let value: Value
            if rest.first == "\"" {
                let body = rest.dropFirst()
                guard let close = body.firstIndex(of: "\"") else {
                    throw HLSParseError(line: line, message: "attribute \(name) has an unterminated quoted string")
                }
                value = .quoted(String(body[..<close]))
                rest = body[body.index(after: close)...]
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = .plain(String(rest[..<end]))
                rest = rest[end...]
            }
            guard values.updateValue(value, forKey: name) == nil else {
                throw HLSParseError(line: line, message: "attribute \(name) appears twice")
            }
            if rest.first == "," {
                rest = rest.dropFirst()
                if rest.isEmpty { throw HLSParseError(line: line, message: "attribute list ends with a comma") }
            } else if !rest.isEmpty {
                throw HLSParseError(line: line, message: "expected ',' after attribute \(name)")
            }
        }
    }

    func has(_ name: String) -> Bool { values[name] != nil }

    func quoted(_ name: String, required: Bool = false) throws -> String? {
        switch values[name] {
        case .quoted(let string): return string
        case .plain: throw HLSParseError(line: line, message: "\(name) must be a quoted string")
        case nil:
            if required { throw HLSParseError(line: line, message: "missing required attribute \(name)") }
            return nil
        }
    }

    func plain(_ name: String, required: Bool = false) throws -> String? {
        switch values[name] {
        case .plain(let string): return string
        case .quoted: throw HLSParseError(line: line, message: "\(name) must not be quoted")
        case nil:
            if required { throw HLSParseError(line: line, message: "missing required attribute \(name)") }
            return nil
        }
    }

    func integer(_ name: String, required: Bool = false) throws -> Int? {
        guard let text = try plain(name, required: required) else { return nil }
        guard let value = Syntax.decimalInteger(text) else {
            throw HLSParseError(line: line, message: "\(name) '\(text)' is not a decimal integer")
        }
        return value
    }

    func yesNo(_ name: String) throws -> Bool {
        switch try plain(name) {
        case nil, "NO": return false
        case "YES": return true
        case let other?: throw HLSParseError(line: line, message: "\(name) must be YES or NO, got '\(other)'")
        }
    }
}

/// The value grammars of RFC 8216 §4.2, and the writer's number formatting.
enum Syntax {
    private static func isDigits(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { (0x30...0x39).contains($0) }
    }

    /// decimal-integer: digits only (no sign, which `Int.init` would accept).
    static func decimalInteger(_ text: some StringProtocol) -> Int? {
        isDigits(text) ? Int(text) : nil
    }

    /// decimal-floating-point: digits, optionally '.' and more digits; no sign or exponent.
    static func decimalFloat(_ text: some StringProtocol) -> Double? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.allSatisfy({ isDigits($0) }) else { return nil }
        return Double(text)
    }

    /// hexadecimal-sequence: `0x`/`0X` then hex digits, as bytes.
    static func hexBytes(_ text: String) -> [UInt8]? {
        guard text.hasPrefix("0x") || text.hasPrefix("0X") else { return nil }
        let digits = Array(text.utf8.dropFirst(2))
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let high = hexValue(digits[i]), let low = hexValue(digits[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }

    /// RFC 8216 allows only [0-9A-F] in a hexadecimal-sequence, so the writer uses upper case.
    static func hexString(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return "0x" + String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] }, as: UTF8.self)
    }

    /// A non-negative decimal with exactly `decimals` places, without Foundation's locale-aware
    /// formatting. Rounds half away from zero.
    static func fixed(_ value: Double, decimals: Int) -> String {
        // Out of the range scaled integers can hold: no media duration or rate is this large.
        guard value.isFinite, abs(value) < 1e12 else { return String(value) }
        var scale = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int((abs(value) * Double(scale)).rounded(.toNearestOrAwayFromZero))
        let sign = value < 0 && scaled != 0 ? "-" : ""
        let fraction = String(scaled % scale)
        return sign + String(scaled / scale) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }

    /// EXTINF durations: microsecond precision, trailing zeros trimmed down to milliseconds,
    /// so 6 -> "6.000", 6.006 -> "6.006" and 2.0416667 -> "2.041667".
    static func duration(_ value: Double) -> String {
        var text = fixed(value, decimals: 6)
        for _ in 0..<3 where text.hasSuffix("0") { text.removeLast() }
        return text
    }
}

/// Splits a playlist into numbered lines, accepting LF and CRLF endings, and checks the header.
enum PlaylistLines {
    static func split(_ text: String) throws -> [(number: Int, text: Substring)] {
        // Split on bytes: as a Character, "\r\n" is one grapheme and would not match "\n".
        var lines: [(Int, Substring)] = []
        for (index, raw) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            while let last = line.last, last.isWhitespace { line.removeLast() }
            lines.append((index + 1, line))
        }
        guard lines.first?.1 == "#EXTM3U" else {
            throw HLSParseError(line: 1, message: "playlist must start with #EXTM3U")
        }
        return lines
    }

    /// Splits `#EXT-NAME:value` into the name and the value (empty when there is no colon).
    static func tag(_ line: Substring) -> (name: Substring, value: Substring?) {
        let body = line.dropFirst()
        guard let colon = body.firstIndex(of: ":") else { return (body, nil) }
        return (body[..<colon], body[body.index(after: colon)...])
    }
}
