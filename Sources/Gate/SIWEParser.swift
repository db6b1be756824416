import Ethereum
extension SIWEMessage {
    /// Parses `text` strictly by EIP-4361's ABNF.
    ///
    /// Lines are separated by LF alone and the text ends right after its last field. Only printable
    /// ASCII is allowed. The address must be written EIP-55 checksummed (a lowercase address is
    /// refused like a wrong checksum); the nonce has at least 8 letters and digits; timestamps are
    /// RFC 3339; the domain, URI, request id and resources follow RFC 3986. The error names the line,
    /// the field and the reason.
    public init(parsing text: String) throws(SIWEParseError) {
        var parser = SIWEParser(Array(text.utf8))
        self = try parser.parse()
    }
}

/// The line-by-line EIP-4361 parser behind ``SIWEMessage/init(parsing:)``.
struct SIWEParser {
    static let preambleSuffix = " wants you to sign in with your Ethereum account:"

    private let lines: [ArraySlice<UInt8>]
    /// The 0-based index of the next line to read.
    private var index = 0

    init(_ bytes: [UInt8]) {
        lines = bytes.split(separator: 0x0a, omittingEmptySubsequences: false)
    }

    mutating func parse() throws(SIWEParseError) -> SIWEMessage {
        try checkCharacters()

        // ${scheme}:// ${domain} wants you to sign in with your Ethereum account:
        let preamble = try take("domain")
        let suffix = Array(Self.preambleSuffix.utf8)
        guard preamble.count > suffix.count, preamble.suffix(suffix.count).elementsEqual(suffix) else {
            throw error(at: 0, "domain", "the first line must be '[scheme://]domain\(Self.preambleSuffix)'")
        }
        var authority = preamble.dropLast(suffix.count)
        var scheme: String?
        if let separator = authority.firstRange(of: [0x3a, 0x2f, 0x2f]) {
            let name = authority[..<separator.lowerBound]
            if let reason = URIGrammar.checkScheme(name) { throw error(at: 0, "scheme", reason) }
            scheme = string(name)
            authority = authority[separator.upperBound...]
        }
        if let reason = URIGrammar.checkAuthority(authority, requireHost: true) { throw error(at: 0, "domain", reason) }

        // ${address}
        let addressText = try take("address")
        let address: EthereumAddress
        do {
            address = try EthereumAddress(hex: string(addressText), checksum: .required)
        } catch {
            throw self.error(at: index - 1, "address", error.description)
        }
        try blank(after: "the address")

        // [ statement LF ] LF
        var statement: String?
        guard index < lines.count else { throw error(at: index, "statement", "the message ends after the address") }
        if lines[index].isEmpty {
            if index + 1 < lines.count, lines[index + 1].isEmpty {
                statement = ""
                index += 2
            } else {
                index += 1
            }
        } else {
            let line = lines[index]
            let followedByBlank = index + 1 < lines.count && lines[index + 1].isEmpty
            if line.starts(with: Array("URI: ".utf8)), !followedByBlank {
                throw error(at: index, "statement", "expected an empty line before 'URI: ' (without a statement, the address is followed by two empty lines)")
            }
            if let bad = line.first(where: { !(URIGrammar.isReserved($0) || URIGrammar.isUnreserved($0) || $0 == 0x20) }) {
                throw error(at: index, "statement", "contains \(EthereumHex.describe(bad)), which a statement may not")
            }
            statement = string(line)
            index += 1
            try blank(after: "the statement")
        }

        // URI: ${uri}
        let uri = try field("URI: ", "URI")
        if let reason = URIGrammar.checkURI(uri) { throw error(at: index - 1, "URI", reason) }

        // Version: 1
        let version = try field("Version: ", "Version")
        guard version.elementsEqual(SIWEMessage.version.utf8) else {
            throw error(at: index - 1, "Version", "must be \(SIWEMessage.version), found '\(string(version))'")
        }

        // Chain ID: 1*DIGIT
        let chainText = try field("Chain ID: ", "Chain ID")
        guard !chainText.isEmpty, chainText.allSatisfy(URIGrammar.isDigit) else {
            throw error(at: index - 1, "Chain ID", "must be a decimal number, found '\(string(chainText))'")
        }
        guard let chainID = UInt64(string(chainText)) else {
            throw error(at: index - 1, "Chain ID", "\(string(chainText)) is too large")
        }

        // Nonce: 8*( ALPHA / DIGIT )
        let nonce = try field("Nonce: ", "Nonce")
        if let bad = nonce.first(where: { !(URIGrammar.isAlpha($0) || URIGrammar.isDigit($0)) }) {
            throw error(at: index - 1, "Nonce", "contains \(EthereumHex.describe(bad)); a nonce is letters and digits only")
        }
        guard nonce.count >= 8 else {
            throw error(at: index - 1, "Nonce", "has \(nonce.count) characters, at least 8 are required")
        }

        let issuedAt = try timestamp("Issued At: ", "Issued At")

        // The optional fields, in this order.
        var message = SIWEMessage(
            scheme: scheme, domain: string(authority), address: address, statement: statement, uri: string(uri),
            chainID: chainID, nonce: string(nonce), issuedAt: issuedAt
        )
        if next(hasPrefix: "Expiration Time: ") {
            message.expirationTime = try timestamp("Expiration Time: ", "Expiration Time")
        }
        if next(hasPrefix: "Not Before: ") {
            message.notBefore = try timestamp("Not Before: ", "Not Before")
        }
        if next(hasPrefix: "Request ID: ") {
            let requestID = try field("Request ID: ", "Request ID")
            if let reason = URIGrammar.checkCharacters(requestID, part: "request id", allowing: URIGrammar.isPChar) {
                throw error(at: index - 1, "Request ID", reason)
            }
            message.requestID = string(requestID)
        }
        if index < lines.count, lines[index].elementsEqual("Resources:".utf8) {
            index += 1
            var resources: [String] = []
            while index < lines.count, lines[index].starts(with: [0x2d, 0x20]) {
                let resource = lines[index].dropFirst(2)
                if let reason = URIGrammar.checkURI(resource) { throw error(at: index, "Resources", "resource \(resources.count + 1): \(reason)") }
                resources.append(string(resource))
                index += 1
            }
            if index < lines.count, !lines[index].isEmpty {
                throw error(at: index, "Resources", "expected '- ' and a URI, found '\(abbreviated(lines[index]))'")
            }
            message.resources = resources
        }

        if index < lines.count {
            let line = lines[index]
            if line.isEmpty {
                let reason = index == lines.count - 1
                    ? "the message must end right after its last field, without a line break"
                    : "unexpected empty line"
                throw error(at: index, "end", reason)
            }
            let known = ["URI: ", "Version: ", "Chain ID: ", "Nonce: ", "Issued At: ", "Expiration Time: ", "Not Before: ", "Request ID: ", "Resources:"]
            if let name = known.first(where: { line.starts(with: Array($0.utf8)) }) {
                throw error(
                    at: index, String(name.prefix { $0 != ":" }),
                    "repeated or out of order; after 'Issued At' come 'Expiration Time', 'Not Before', 'Request ID' and 'Resources', each at most once and in that order"
                )
            }
            throw error(at: index, "end", "unexpected line '\(abbreviated(line))'")
        }
        return message
    }

    /// Only printable ASCII and LF: the ABNF has no other characters, and refusing the rest up front
    /// keeps look-alike Unicode and carriage returns out of every field.
    private func checkCharacters() throws(SIWEParseError) {
        for (number, line) in lines.enumerated() {
            if let position = line.firstIndex(where: { !(0x20...0x7e).contains($0) }) {
                let what = line[position] == 0x0d ? "a carriage return (lines end with LF alone)" : EthereumHex.describe(line[position])
                throw error(at: number, "characters", "\(what) at column \(position - line.startIndex + 1): only printable ASCII is allowed")
            }
        }
    }

    private mutating func take(_ field: String) throws(SIWEParseError) -> ArraySlice<UInt8> {
        guard index < lines.count else { throw error(at: index, field, "the message ends before the \(field)") }
        defer { index += 1 }
        return lines[index]
    }

    private mutating func blank(after what: String) throws(SIWEParseError) {
        guard index < lines.count else { throw error(at: index, "blank line", "the message ends after \(what)") }
        guard lines[index].isEmpty else {
            throw error(at: index, "blank line", "expected an empty line after \(what), found '\(abbreviated(lines[index]))'")
        }
        index += 1
    }

    private func next(hasPrefix prefix: String) -> Bool {
        index < lines.count && lines[index].starts(with: prefix.utf8)
    }

    /// The value of a `Name: value` line that must come next.
    private mutating func field(_ prefix: String, _ name: String) throws(SIWEParseError) -> ArraySlice<UInt8> {
        guard index < lines.count else { throw error(at: index, name, "missing: the message ends before '\(prefix)'") }
        let line = lines[index]
        guard line.starts(with: prefix.utf8) else {
            throw error(at: index, name, "expected '\(prefix)…', found '\(abbreviated(line))'")
        }
        index += 1
        return line.dropFirst(prefix.utf8.count)
    }

    private mutating func timestamp(_ prefix: String, _ name: String) throws(SIWEParseError) -> RFC3339Timestamp {
        let text = try field(prefix, name)
        do {
            return try RFC3339Timestamp(string(text))
        } catch {
            throw self.error(at: index - 1, name, error.description)
        }
    }

    private func string(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    private func abbreviated(_ bytes: ArraySlice<UInt8>) -> String { EthereumHex.abbreviated(string(bytes)) }

    private func error(at lineIndex: Int, _ field: String, _ reason: String) -> SIWEParseError {
        SIWEParseError(line: lineIndex + 1, field: field, reason: reason)
    }
}
