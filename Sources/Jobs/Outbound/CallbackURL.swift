import Foundation

/// A job's `callback_url`, read strictly: http or https, a host, an optional port 1–65535, no
/// user name or password, no percent-encoding or backslash in the authority.
///
/// A numeric host is read as the resolver would read it (`127.1`, `2130706433` and `0x7f.1` are
/// 127.0.0.1), and a host that ends in a number but is not a valid IPv4 address is refused. The URL
/// is also read by Foundation, as AsyncHTTPClient will read it, and refused unless both agree on
/// the host and port: the address that is judged must be the one that is connected to.
public struct CallbackURL: Sendable, Equatable {
    public enum Host: Sendable, Equatable {
        case address(IPAddress)
        /// Lowercased; judged once resolved, when the webhook is sent.
        case name(String)
    }

    public let scheme: String
    public let host: Host
    public let port: Int
    /// The host as Foundation's `URL` reads it: the name AsyncHTTPClient looks up, and so the key
    /// of its DNS override.
    public let clientHost: String

    public init(_ text: String) throws(Invalid) {
        guard text.utf8.count <= 2048 else { throw Invalid("must be at most 2048 bytes") }
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\\") }) else {
            throw Invalid("must be ASCII without spaces, control characters or backslashes")
        }
        guard let separator = text.range(of: "://") else { throw Invalid("must be an http or https URL") }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { throw Invalid("must be an http or https URL") }
        let rest = text[separator.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@") else { throw Invalid("must not carry a user name or password") }
        guard !authority.contains("%") else { throw Invalid("must not percent-encode its host") }

        var hostText: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw Invalid("has an unterminated IPv6 address") }
            hostText = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw Invalid("has characters after its IPv6 address") }
                portText = after.dropFirst()
            }
        } else {
            let pieces = authority.split(separator: ":", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw Invalid("has more than one ':' in its host") }
            hostText = pieces[0]
            portText = pieces.count == 2 ? pieces[1] : nil
        }

        let defaultPort = scheme == "https" ? 443 : 80
        var port = defaultPort
        if let portText {
            guard (1...5).contains(portText.count), portText.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(portText), (1...65535).contains(number) else {
                throw Invalid("must have a port 1-65535")
            }
            port = number
        }

        let host: Host
        if authority.hasPrefix("[") {
            guard let address = IPAddress(String(hostText)), address.family == .v6 else { throw Invalid("has an invalid IPv6 address") }
            host = .address(address)
        } else {
            let name = String(hostText)
            guard Self.isHostName(name) else { throw Invalid("must have a valid host name") }
            if Self.endsInNumber(name) {
                guard let address = IPAddress(inetATON: name) else { throw Invalid("has a host that ends in a number but is not an IPv4 address") }
                host = .address(address)
            } else {
                host = .name(name.lowercased())
            }
        }

        guard let url = URL(string: text), url.scheme?.lowercased() == scheme, url.user == nil, url.password == nil,
              let read = url.host, !read.isEmpty, read.trimmingBrackets.lowercased() == hostText.lowercased(),
              (url.port ?? defaultPort) == port
        else {
            throw Invalid("is read differently by URL parsers; write it plainly")
        }
        self.scheme = scheme
        self.host = host
        self.port = port
        clientHost = read.trimmingBrackets
    }

    /// For a literal address, the policy's verdict; nil for a name, which can only be judged once
    /// resolved.
    public func literalVerdict(_ policy: OutboundAddressPolicy) -> OutboundAddressPolicy.Verdict? {
        guard case .address(let address) = host else { return nil }
        return policy.judge(address)
    }

    /// Letters, digits, `-` and `_` in labels of 1–63 bytes, separated by dots (one trailing dot
    /// allowed), 253 bytes at most.
    static func isHostName(_ text: String) -> Bool {
        guard (1...254).contains(text.utf8.count) else { return false }
        var labels = text.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count > 1, labels.last!.isEmpty { labels.removeLast() }
        return labels.allSatisfy { label in
            (1...63).contains(label.utf8.count)
                && label.utf8.allSatisfy { byte in
                    (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                }
        }
    }

    /// Whether the last label is a number (decimal, or hex with `0x`): such a host is an IPv4
    /// address to a resolver, never a name (as in the WHATWG URL standard).
    static func endsInNumber(_ text: String) -> Bool {
        var labels = text.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count > 1, labels.last!.isEmpty { labels.removeLast() }
        guard let last = labels.last?.lowercased(), !last.isEmpty else { return false }
        if last.allSatisfy({ $0.isASCII && $0.isNumber }) { return true }
        return last.hasPrefix("0x") && last.dropFirst(2).allSatisfy(\.isHexDigit)
    }

    public struct Invalid: Error, CustomStringConvertible, Sendable, Equatable {
        /// Completes "field 'callback_url' …".
        public let reason: String
        init(_ reason: String) { self.reason = reason }
        public var description: String { reason }
    }
}

private extension String {
    var trimmingBrackets: String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }
}
