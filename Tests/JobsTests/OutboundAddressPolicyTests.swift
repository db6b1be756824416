import Foundation
import Jobs
import Testing

@Suite("outbound address policy")
struct OutboundAddressPolicyTests {
    /// Each special-purpose block at its edges, with the addresses just outside it; the word the
    /// refusal must name, or nil when the address is public.
    static let table: [(String, String?)] = [
        ("0.0.0.0", "unspecified"), ("0.255.255.255", "unspecified"), ("1.0.0.0", nil),
        ("9.255.255.255", nil), ("10.0.0.0", "private"), ("10.255.255.255", "private"), ("11.0.0.0", nil),
        ("100.63.255.255", nil), ("100.64.0.0", "carrier-grade NAT"), ("100.127.255.255", "carrier-grade NAT"), ("100.128.0.0", nil),
        ("126.255.255.255", nil), ("127.0.0.0", "loopback"), ("127.0.0.1", "loopback"), ("127.255.255.255", "loopback"), ("128.0.0.0", nil),
        ("169.253.255.255", nil), ("169.254.0.0", "link-local"), ("169.254.169.254", "link-local"), ("169.254.255.255", "link-local"), ("169.255.0.0", nil),
        ("172.15.255.255", nil), ("172.16.0.0", "private"), ("172.31.255.255", "private"), ("172.32.0.0", nil),
        ("191.255.255.255", nil), ("192.0.0.0", "IETF protocol"), ("192.0.0.255", "IETF protocol"), ("192.0.1.0", nil),
        ("192.0.2.0", "documentation"), ("192.0.2.255", "documentation"), ("192.0.3.0", nil),
        ("192.88.99.1", "6to4 relay"),
        ("192.167.255.255", nil), ("192.168.0.0", "private"), ("192.168.255.255", "private"), ("192.169.0.0", nil),
        ("198.17.255.255", nil), ("198.18.0.0", "benchmarking"), ("198.19.255.255", "benchmarking"), ("198.20.0.0", nil),
        ("198.51.99.255", nil), ("198.51.100.0", "documentation"), ("198.51.100.255", "documentation"), ("198.51.101.0", nil),
        ("203.0.112.255", nil), ("203.0.113.0", "documentation"), ("203.0.113.255", "documentation"), ("203.0.114.0", nil),
        ("223.255.255.255", nil), ("224.0.0.0", "multicast"), ("239.255.255.255", "multicast"),
        ("240.0.0.0", "reserved"), ("255.255.255.254", "reserved"), ("255.255.255.255", "broadcast"),
        ("8.8.8.8", nil), ("93.184.216.34", nil),

        ("::", "unspecified"), ("::1", "loopback"), ("::2", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "link-local"), ("::ffff:10.1.2.3", "private"),
        ("::ffff:8.8.8.8", nil), ("::127.0.0.1", "loopback"), ("::8.8.8.8", nil),
        ("64:ff9b::127.0.0.1", "loopback"), ("64:ff9b::192.168.1.1", "private"), ("64:ff9b::8.8.8.8", nil),
        ("64:ff9b:1::1", "not a global unicast"),
        ("2002:7f00:1::", "loopback"), ("2002:a9fe:a9fe::1", "link-local"), ("2002:808:808::1", nil),
        ("2001::", "Teredo"), ("2001:0:ffff:ffff::", "Teredo"), ("2001:1::1", "IETF protocol"), ("2001:1ff:ffff::", "IETF protocol"),
        ("2001:200::", nil),
        ("2001:db7:ffff:ffff::", nil), ("2001:db8::", "documentation"), ("2001:db8:ffff:ffff::", "documentation"), ("2001:db9::", nil),
        ("3fff::1", "documentation"), ("3fff:fff::", "documentation"), ("3fff:1000::", nil),
        ("fbff:ffff::", "not a global unicast"), ("fc00::", "unique local"), ("fdff:ffff::1", "unique local"),
        ("fe80::", "link-local"), ("febf:ffff::", "link-local"), ("fec0::", "site-local"), ("feff:ffff::", "site-local"),
        ("ff00::", "multicast"), ("ff02::1", "multicast"),
        ("100::1", "not a global unicast"), ("1fff:ffff::", "not a global unicast"), ("4000::", "not a global unicast"),
        ("2000::", nil), ("2606:4700:4700::1111", nil), ("2a00:1450:4001:81c::200e", nil), ("3ffe::1", nil),
    ]

    @Test("every special-purpose block is refused, by name; the addresses just outside are public", arguments: table)
    func webhookNeverReachesNonPublicBlocks(_ text: String, _ expected: String?) throws {
        let address = try #require(IPAddress(text))
        switch (OutboundAddressPolicy.publicOnly.judge(address), expected) {
        case (.allowed, nil): break
        case (.refused(let why), let word?):
            #expect(why.contains(word), "\(text): \(why)")
            #expect(why.hasPrefix(address.description), "the refusal names the address: \(why)")
        case (let verdict, _): Issue.record("\(text): \(verdict), expected \(expected ?? "public")")
        }
    }

    @Test("the operator's allow-list lets named destinations through and nothing else")
    func allowListOpensOnlyWhatItNames() throws {
        let policy = try OutboundAddressPolicy(allowing: ["127.0.0.1, 10.0.0.0/8", "[fd00::1]", "Hooks.Internal."])
        let allowed = ["127.0.0.1", "::ffff:127.0.0.1", "10.0.0.0", "10.255.255.255", "fd00::1", "8.8.8.8"]
        let refused = ["127.0.0.2", "::1", "192.168.1.1", "169.254.169.254", "fd00::2", "::ffff:192.168.1.1"]
        for text in allowed { #expect(policy.judge(IPAddress(text)!) == .allowed, "\(text)") }
        for text in refused { #expect(policy.judge(IPAddress(text)!) != .allowed, "\(text)") }
        #expect(policy.allowsHost("hooks.internal") && policy.allowsHost("HOOKS.internal."))
        #expect(!policy.allowsHost("other.internal") && !policy.allowsHost("x.hooks.internal"))
        #expect(policy.entries == ["127.0.0.1/32", "10.0.0.0/8", "fd00::1/128", "hooks.internal"])
        #expect(try OutboundAddressPolicy(allowing: [""]).isPublicOnly, "an empty STREAMGATE_WEBHOOK_ALLOW allows nothing")
        #expect(OutboundAddressPolicy.publicOnly.judge(IPAddress("127.0.0.1")!) == .refused("127.0.0.1 is a loopback address"))
    }

    @Test("an allow-list entry that cannot be read is an error, not ignored", arguments: [
        "10.0.0.1/8", "1.2.3.4/33", "::1/129", "300.1.1.1", "127.1", "bad host!", "10.0.0.0/x", "[::1",
    ])
    func badAllowEntries(_ entry: String) {
        #expect(throws: OutboundAddressPolicy.InvalidEntry.self, "\(entry)") { try OutboundAddressPolicy(allowing: [entry]) }
    }

    @Test("numeric hosts are read as inet_aton (and so getaddrinfo) reads them", arguments: [
        "2130706433", "0x7f000001", "0X7F000001", "017700000001", "127.1", "127.0.1", "0x7f.1", "0177.0.0.1", "0x7f.0.0.0x1",
        "127.0.0.1", "1.2.3.4", "0", "00", "4294967295", "0xffffffff", "1.16777215", "1.2.65535", "010.010.010.010",
        "256.1.1.1", "1.2.3.4.5", "0x", "08", "1..2", "1.2.3.", ".1.2.3", "4294967296", "0x100000000", "1.16777216",
        "1.2.65536", "", "-1", "+1", "0x7g", "1.2.3.0x100", "a.1.2.3", "99999999999999999999",
    ])
    func numericHostsMatchInetATON(_ text: String) {
        var address = in_addr()
        let libc = inet_aton(text, &address) != 0 ? withUnsafeBytes(of: &address) { IPAddress(bytes: Array($0)) } : nil
        #expect(IPAddress(inetATON: text) == libc, "\(text)")
    }

    @Test("callback URLs are read strictly, numeric hosts as the address they stand for", arguments: [
        ("http://2130706433/", "127.0.0.1", 80), ("http://0x7f000001:8080/x", "127.0.0.1", 8080), ("https://017700000001/", "127.0.0.1", 443),
        ("http://127.1/", "127.0.0.1", 80), ("http://0x7f.1:9/", "127.0.0.1", 9), ("http://[::1]:9/hook", "::1", 9),
        ("http://[::FFFF:7f00:1]/", "::ffff:127.0.0.1", 80), ("HTTPS://Hooks.Example.COM:8443/a?b#c", "hooks.example.com", 8443),
        ("http://example.com./", "example.com.", 80), ("http://1.2.3.example/", "1.2.3.example", 80),
    ])
    func callbackURLsParse(_ text: String, _ host: String, _ port: Int) throws {
        let url = try CallbackURL(text)
        switch url.host {
        case .address(let address): #expect(address.description == host, "\(text)")
        case .name(let name): #expect(name == host, "\(text)")
        }
        #expect(url.port == port)
    }

    @Test("a callback URL that could be read two ways, or carries credentials, is refused", arguments: [
        "ftp://example.com/", "javascript:alert(1)", "http:/example.com", "http:///x", "http://user:pw@example.com/",
        "http://example.com@127.0.0.1/", "http://example.com:0/", "http://example.com:65536/", "http://example.com:/",
        "http://example.com:8o/", "http://%31%32%37.0.0.1/", "http://ex%41mple.com/", "http://a.b\\@c/", "http://exa mple.com/",
        "http://[fe80::1%25eth0]/", "http://[::1/", "http://[::1]x/", "http://[127.0.0.1]/", "http://host:80:80/",
        "http://127.0.0.1./", "http://999.1.1.1/", "http://1.2.3.4.5/", "http://0x/", "http://a..b/", "http://ex\u{e4}mple.com/",
    ])
    func callbackURLsRefused(_ text: String) {
        #expect(throws: CallbackURL.Invalid.self, "\(text)") { try CallbackURL(text) }
    }

    @Test("enqueueing refuses a literal non-public callback address with a clear message, unless allowed")
    func enqueueRefusesLiteralPrivateCallbacks() throws {
        func spec(_ url: String) -> JobSpec { JobSpec(kind: .noop, callbackURL: url) }
        let error = try #require(throws: JobError.self) { try spec("http://127.0.0.1:9/hook").validate(callbackPolicy: .publicOnly) }
        #expect(error.field == "callback_url")
        #expect(error.description.contains("127.0.0.1 is a loopback address") && error.description.contains("--webhook-allow"), "\(error)")
        for url in ["http://[::1]/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/", "http://0x7f.1/", "http://[::ffff:192.168.0.1]/"] {
            #expect(throws: JobError.self, "\(url)") { try spec(url).validate(callbackPolicy: .publicOnly) }
        }
        try spec("http://127.0.0.1:9/hook").validate(callbackPolicy: try OutboundAddressPolicy(allowing: ["127.0.0.1"]))
        try spec("https://hooks.example.com/x").validate(callbackPolicy: .publicOnly)
        try spec("http://93.184.216.34/x").validate(callbackPolicy: .publicOnly)
        // A name is judged by the sender, once resolved; a worker starting a job checks the form only.
        try spec("http://localhost:9/").validate(callbackPolicy: .publicOnly)
        try spec("http://127.0.0.1:9/hook").validate()
        #expect(throws: JobError.self) { try spec("http://user:pw@example.com/").validate() }
    }
}
