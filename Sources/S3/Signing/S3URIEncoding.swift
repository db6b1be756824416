/// Percent-encoding as S3's Signature Version 4 wants it (`UriEncode()` in the S3 documentation):
/// every byte of the UTF-8 form except `A–Z a–z 0–9 - . _ ~` becomes `%XY` with upper-case hex,
/// a space is `%20` (never `+`), and `/` is kept only in an object's path.
///
/// StreamGate sends exactly the text it signs, so the one encoder serves the canonical request and
/// the request line alike.
public enum S3URIEncoding {
    /// One query parameter's name or value, or any text where `/` must be encoded too.
    public static func encode(_ text: String) -> String {
        encode(text, keepingSlash: false)
    }

    /// An object's path: each segment encoded, the slashes between them kept. Nothing is
    /// normalised: S3 keys may hold `//`, `.` and `..`, and they are signed as they are.
    public static func encodePath(_ path: String) -> String {
        encode(path, keepingSlash: true)
    }

    /// The text `%XY` sequences stand for, or nil where one is malformed or the bytes are not UTF-8.
    /// For keys S3 lists with `encoding-type=url`, where `+` also stands for a space.
    public static func decode(_ text: String, plusIsSpace: Bool = false) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next(), let low = iterator.next(),
                      [high, low].allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            case UInt8(ascii: "+") where plusIsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func encode(_ text: String, keepingSlash: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) || (keepingSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
