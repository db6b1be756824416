/// Lowercase hexadecimal helpers for key identifiers.
enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `string` is exactly `count` lowercase hex digits. Identifiers end up in file
    /// names (`keys/<id>.key`), so anything else is rejected rather than normalised.
    static func isLowercase(_ string: String, count: Int) -> Bool {
        let utf8 = string.utf8
        return utf8.count == count && utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
