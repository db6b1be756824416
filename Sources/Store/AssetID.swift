import Foundation

/// An asset's identifier: 1 to 64 characters of `[A-Za-z0-9_-]`, starting with a letter or digit.
///
/// The identifier names folders in the store and appears in URLs, so the grammar leaves no room for
/// a path separator, a dot segment or anything a URL would have to escape.
public struct AssetID: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The longest identifier accepted.
    public static let maximumLength = 64

    public let rawValue: String

    /// Validates `rawValue`; the error names the offending character or the rule broken.
    public init(_ rawValue: String) throws(StoreError) {
        guard !rawValue.isEmpty else { throw StoreError("asset id is empty") }
        guard rawValue.utf8.count <= Self.maximumLength else {
            throw StoreError("asset id is \(rawValue.utf8.count) bytes long; at most \(Self.maximumLength) are allowed")
        }
        for (offset, byte) in rawValue.utf8.enumerated() {
            let allowed = Self.isAlphanumeric(byte) || (offset > 0 && (byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")))
            guard allowed else {
                throw StoreError(
                    "asset id '\(rawValue.unicodeScalars.count <= 80 ? rawValue : String(rawValue.prefix(80)) + "…")' "
                        + "has a character not allowed at position \(offset + 1) (letters, digits, '-' and '_'; a letter or digit first)"
                )
            }
        }
        self.rawValue = rawValue
    }

    /// A new random identifier: 20 lowercase base-32 characters (100 bits).
    public static func random() -> AssetID {
        // The alphabet only holds allowed characters.
        try! AssetID(randomBase32(count: 20))
    }

    /// `count` random lowercase base-32 characters, 5 bits each. Each draw from the system
    /// generator is a system call, so one draw of 64 bits serves 12 characters.
    public static func randomBase32(count: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
        var generator = SystemRandomNumberGenerator()
        var characters: [UInt8] = []
        characters.reserveCapacity(count)
        var bits: UInt64 = 0
        for index in 0..<count {
            if index % 12 == 0 { bits = generator.next() }
            characters.append(alphabet[Int(bits & 31)])
            bits >>= 5
        }
        return String(decoding: characters, as: UTF8.self)
    }

    /// True when `text` is a valid identifier; for request paths, where a bad one is simply not found.
    public static func isValid(_ text: some StringProtocol) -> Bool {
        (try? AssetID(String(text))) != nil
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
