import Foundation

/// Where outbound requests (webhooks) may go: public addresses only, unless the operator allows a
/// destination (`--webhook-allow`).
///
/// It lives in Jobs, not Farm, so the enqueue-time check (Jobs) and the sender (Farm) judge with one
/// table: Farm imports Jobs, never the reverse.
public struct OutboundAddressPolicy: Sendable, Equatable {
    public enum Verdict: Sendable, Equatable {
        case allowed
        /// Why not, naming the address and its block: "127.0.0.1 is a loopback address".
        case refused(String)
    }

    /// Blocks the operator allows even though they are not public.
    public private(set) var allowedRanges: [IPAddressRange] = []
    /// Host names whose every address the operator allows (exact names, lowercased, no trailing dot).
    public private(set) var allowedHosts: Set<String> = []

    /// Public addresses only.
    public static let publicOnly = OutboundAddressPolicy()

    public init() {}

    /// Each entry is a block (`10.0.0.0/8`), an address (`127.0.0.1`, `::1`) or a host name
    /// (`hooks.internal`); entries may also be comma-separated.
    public init(allowing entries: [String]) throws(InvalidEntry) {
        for entry in entries.flatMap({ $0.split(separator: ",") }) {
            var text = entry.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text.hasPrefix("["), let close = text.firstIndex(of: "]") { text.remove(at: close); text.removeFirst() }
            if text.contains("/") || IPAddress(text) != nil {
                do { allowedRanges.append(try IPAddressRange(text)) } catch { throw InvalidEntry(entry: String(entry), reason: error.description) }
            } else if CallbackURL.isHostName(text), !CallbackURL.endsInNumber(text) {
                allowedHosts.insert(Self.normalized(text))
            } else {
                throw InvalidEntry(entry: String(entry), reason: "not an address block, an address or a host name")
            }
        }
    }

    public var isPublicOnly: Bool { allowedRanges.isEmpty && allowedHosts.isEmpty }

    /// The entries, as `--webhook-allow` takes them.
    public var entries: [String] { allowedRanges.map(\.description) + allowedHosts.sorted() }

    /// Whether the operator allowed this host name, so any address it resolves to may be used.
    public func allowsHost(_ name: String) -> Bool { allowedHosts.contains(Self.normalized(name)) }

    public func judge(_ address: IPAddress) -> Verdict {
        if allows(address) { return .allowed }
        switch Self.block(of: address) {
        case nil: return .allowed
        case .special(let phrase): return .refused("\(address) is \(phrase)")
        case .embedding(let offset, let form):
            // The address a translator or tunnel would deliver to is the one that counts.
            let inner = address.embeddedV4(at: offset)
            guard !allows(inner), case .special(let phrase) = Self.block(of: inner) else { return .allowed }
            return .refused("\(address) embeds \(inner) (\(form)), which is \(phrase)")
        }
    }

    private func allows(_ address: IPAddress) -> Bool { allowedRanges.contains { $0.contains(address) } }

    private static func normalized(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }

    // MARK: - The table

    enum Block: Equatable, Sendable {
        /// Not public, with a phrase that completes "ADDRESS is …".
        case special(String)
        /// An IPv6 form that stands for the IPv4 address at this byte offset.
        case embedding(offset: Int, form: String)
    }

    /// The special-purpose block an address is in (RFC 6890 and the IANA registries); nil when it
    /// is public. The first match wins, so narrower blocks come before the ones they sit in.
    static func block(of address: IPAddress) -> Block? {
        let table = address.family == .v4 ? v4Blocks : v6Blocks
        if let match = table.first(where: { $0.range.contains(address) }) { return match.block }
        // Only 2000::/3 is global unicast; everything else in IPv6 is reserved or local.
        if address.family == .v6, address.bytes[0] & 0xe0 != 0x20 { return .special("not a global unicast address") }
        return nil
    }

    private static let v4Blocks: [(range: IPAddressRange, block: Block)] = ([
        ("0.0.0.0/8", "an unspecified (\"this network\") address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        // Cloud metadata services (169.254.169.254) live here.
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay anycast address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    ] as [(String, String)]).map { (IPAddressRange(literal: $0.0), Block.special($0.1)) }

    private static let v6Blocks: [(range: IPAddressRange, block: Block)] = ([
        ("::/128", .special("the unspecified address")),
        ("::1/128", .special("the loopback address")),
        ("::ffff:0:0/96", .embedding(offset: 12, form: "IPv4-mapped")),
        ("::/96", .embedding(offset: 12, form: "IPv4-compatible")),
        ("64:ff9b::/96", .embedding(offset: 12, form: "NAT64")),
        ("2002::/16", .embedding(offset: 2, form: "6to4")),
        // Teredo hides the address it tunnels to; nothing to judge, so nothing goes there.
        ("2001::/32", .special("a Teredo address")),
        ("2001::/23", .special("an IETF protocol assignment")),
        ("2001:db8::/32", .special("a documentation address")),
        ("3fff::/20", .special("a documentation address")),
        ("fc00::/7", .special("a unique local address")),
        ("fec0::/10", .special("a site-local address")),
        ("fe80::/10", .special("a link-local address")),
        ("ff00::/8", .special("a multicast address")),
    ] as [(String, Block)]).map { (IPAddressRange(literal: $0.0), $0.1) }

    /// An allow-list entry that cannot be read.
    public struct InvalidEntry: Error, CustomStringConvertible, Sendable, Equatable {
        public let entry: String
        public let reason: String
        public var description: String { "webhook allow-list entry '\(entry)': \(reason)" }
    }
}
