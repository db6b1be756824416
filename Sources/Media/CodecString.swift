/// RFC 6381 codec strings for the multivariant playlist's CODECS attribute.
enum AVCCodecString {
    /// `avc1.PPCCLL` from the first sequence parameter set in an Annex B H.264 access unit:
    /// profile_idc, the constraint flags byte and level_idc, as the encoder really wrote them.
    static func fromAnnexB(_ bytes: UnsafeRawBufferPointer) -> String? {
        let count = bytes.count
        var index = 0
        while index + 3 < count {
            // A start code is 00 00 01 (or 00 00 00 01, whose tail is the same).
            if bytes[index] == 0, bytes[index + 1] == 0, bytes[index + 2] == 1 {
                let header = index + 3
                if header + 3 < count, bytes[header] & 0x1F == 7 {
                    return String(format: "avc1.%02x%02x%02x", bytes[header + 1], bytes[header + 2], bytes[header + 3])
                }
                index = header
            } else {
                index += 1
            }
        }
        return nil
    }
}

import Foundation
