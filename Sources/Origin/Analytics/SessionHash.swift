/// SipHash-2-4 with a 128-bit key: the viewer session's id. Keyed by a salt that changes every
/// day and is shared by the origins through Redis, so the same viewer counts once across origins,
/// and once the day's salt is gone no id can be linked back to an address or a token.
struct SessionHash {
    let k0: UInt64
    let k1: UInt64

    init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    /// A key from 16 bytes (little-endian halves).
    init(bytes: [UInt8]) {
        precondition(bytes.count == 16)
        var k0: UInt64 = 0, k1: UInt64 = 0
        for index in 0..<8 {
            k0 |= UInt64(bytes[index]) << (8 * index)
            k1 |= UInt64(bytes[8 + index]) << (8 * index)
        }
        self.init(k0: k0, k1: k1)
    }

    static func random() -> SessionHash {
        SessionHash(k0: .random(in: .min ... .max), k1: .random(in: .min ... .max))
    }

    /// The hash of the concatenation of `parts`, each followed by a 0 byte (so "ab"+"c" and
    /// "a"+"bc" differ).
    func hash<Parts: Sequence>(_ parts: Parts) -> UInt64 where Parts.Element == Substring.UTF8View {
        var state = State(k0: k0, k1: k1)
        for part in parts {
            for byte in part { state.append(byte) }
            state.append(0)
        }
        return state.finish()
    }

    /// SipHash-2-4 of `bytes` as they are (the reference function; its published vectors check it).
    func hash<Bytes: Sequence>(raw bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var state = State(k0: k0, k1: k1)
        for byte in bytes { state.append(byte) }
        return state.finish()
    }

    private struct State {
        var v0: UInt64, v1: UInt64, v2: UInt64, v3: UInt64
        var pending: UInt64 = 0
        var pendingBytes = 0
        var total = 0

        init(k0: UInt64, k1: UInt64) {
            v0 = k0 ^ 0x736f_6d65_7073_6575
            v1 = k1 ^ 0x646f_7261_6e64_6f6d
            v2 = k0 ^ 0x6c79_6765_6e65_7261
            v3 = k1 ^ 0x7465_6462_7974_6573
        }

        mutating func append(_ byte: UInt8) {
            pending |= UInt64(byte) << (8 * pendingBytes)
            pendingBytes += 1
            total &+= 1
            if pendingBytes == 8 {
                compress(pending)
                pending = 0
                pendingBytes = 0
            }
        }

        mutating func compress(_ word: UInt64) {
            v3 ^= word
            round(); round()
            v0 ^= word
        }

        mutating func round() {
            v0 &+= v1; v1 = v1.rotated(13); v1 ^= v0; v0 = v0.rotated(32)
            v2 &+= v3; v3 = v3.rotated(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotated(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotated(17); v1 ^= v2; v2 = v2.rotated(32)
        }

        mutating func finish() -> UInt64 {
            compress(pending | (UInt64(truncatingIfNeeded: total) << 56))
            v2 ^= 0xff
            round(); round(); round(); round()
            return v0 ^ v1 ^ v2 ^ v3
        }
    }
}

private extension UInt64 {
    func rotated(_ bits: UInt64) -> UInt64 { (self << bits) | (self >> (64 - bits)) }
}
