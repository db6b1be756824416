/// `0x`-prefixed hexadecimal, as Ethereum writes hashes, signatures and call data.
public enum EthereumHex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// `bytes` as `0x` followed by two lowercase digits per byte (`0x` alone for no bytes).
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = [0x30, 0x78]
        out.reserveCapacity(2 + bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of `text`: `0x` (lowercase x) then an even number of hex digits of either case.
    ///
    /// - Parameter count: when given, the number of bytes `text` must hold.
    public static func decode(_ text: String, count: Int? = nil) throws(EthereumHexError) -> [UInt8] {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == 0x30, utf8[1] == 0x78 else {
            throw EthereumHexError("'\(abbreviated(text))' does not start with 0x")
        }
        let digitCount = utf8.count - 2
        guard digitCount % 2 == 0 else {
            throw EthereumHexError("odd number of hex digits (\(digitCount))")
        }
        if let count, digitCount / 2 != count {
            throw EthereumHexError("expected \(count) bytes (\(count * 2) hex digits), found \(digitCount / 2)")
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(digitCount / 2)
        var index = 2
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else {
                let bad = nibble(utf8[index]) == nil ? index : index + 1
                throw EthereumHexError("\(describe(utf8[bad])) at offset \(bad) is not a hex digit")
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    /// The value of one ASCII hex digit of either case.
    package static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case 0x30...0x39: character - 0x30
        case 0x61...0x66: character - 0x61 + 10
        case 0x41...0x46: character - 0x41 + 10
        default: nil
        }
    }

    /// One byte of text for an error message: the character when it is printable ASCII.
    package static func describe(_ byte: UInt8) -> String {
        (0x20...0x7e).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
    }

    /// `text` cut to a length fit for an error message.
    package static func abbreviated(_ text: some StringProtocol, limit: Int = 48) -> String {
        text.count <= limit ? String(text) : String(text.prefix(limit)) + "…"
    }
}

/// Text that is not `0x`-prefixed hex of the expected length.
public struct EthereumHexError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What is wrong, e.g. `odd number of hex digits (7)`.
    public let reason: String

    package init(_ reason: String) { self.reason = reason }

    public var description: String { "hex: \(reason)" }
}
