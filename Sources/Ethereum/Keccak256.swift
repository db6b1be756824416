/// Keccak-256: the hash Ethereum calls "SHA-3" — Keccak-f[1600] with rate 136 bytes and the
/// original Keccak padding (`0x01 … 0x80`), not FIPS 202's SHA3-256 (`0x06 … 0x80`), so
/// `Keccak256.hash([])` is `c5d24601…5d85a470`, not SHA3-256's `a7ffc6f8…`.
///
/// Pure Swift, no allocation but the digest: the state is 25 lanes held inline, bytes are absorbed
/// straight into the lanes, and the permutation runs on locals with every round unrolled.
///
/// ```swift
/// let digest = Keccak256.hash("abc".utf8)            // one shot
/// var hasher = Keccak256()                            // or incrementally
/// hasher.update(prefix); hasher.update(message)
/// let same = hasher.finalize()
/// ```
public struct Keccak256: Sendable {
    /// The digest's size in bytes.
    public static let digestCount = 32
    /// Bytes absorbed per permutation: 1600 bits minus a capacity of twice the digest size.
    static let rate = 136

    private typealias Lanes = (
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64
    )

    private var lanes: Lanes = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    /// Bytes of the current block already absorbed, `0..<rate`.
    private var offset = 0

    /// A hasher that has absorbed nothing.
    public init() {}

    /// The Keccak-256 digest (32 bytes) of `bytes`.
    public static func hash(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var hasher = Keccak256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Absorbs `bytes`. Contiguous collections (`[UInt8]`, `String.UTF8View`, `Data`) are read a lane
    /// at a time; other sequences a byte at a time.
    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            absorb(UnsafeRawBufferPointer(buffer))
        }
        if done == nil {
            for byte in bytes { absorb(byte) }
        }
    }

    /// The digest of everything absorbed so far. The hasher itself is left as it was, so more bytes
    /// may follow for a longer message's digest.
    public func finalize() -> [UInt8] {
        var copy = self
        let offset = copy.offset
        copy.withLanes { lane in
            lane[offset >> 3] ^= 0x01 << UInt64((offset & 7) << 3)
            lane[(Self.rate - 1) >> 3] ^= 0x80 << 56
        }
        copy.permute()
        return [UInt8](unsafeUninitializedCapacity: Self.digestCount) { output, initialized in
            copy.withLanes { lane in
                for index in 0..<Self.digestCount {
                    output[index] = UInt8(truncatingIfNeeded: lane[index >> 3] >> UInt64((index & 7) << 3))
                }
            }
            initialized = Self.digestCount
        }
    }

    private mutating func absorb(_ byte: UInt8) {
        let offset = self.offset
        withLanes { lane in lane[offset >> 3] ^= UInt64(byte) << UInt64((offset & 7) << 3) }
        if offset + 1 == Self.rate {
            permute()
            self.offset = 0
        } else {
            self.offset = offset + 1
        }
    }

    private mutating func absorb(_ bytes: UnsafeRawBufferPointer) {
        var index = 0
        let count = bytes.count
        // Finish a block a previous update left open, a byte at a time.
        while offset != 0, index < count {
            absorb(bytes[index])
            index += 1
        }
        // Whole blocks, a lane at a time.
        while count - index >= Self.rate {
            let start = index
            withLanes { lane in
                for word in 0..<(Self.rate >> 3) {
                    lane[word] ^= UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: start + (word << 3), as: UInt64.self))
                }
            }
            permute()
            index += Self.rate
        }
        while index < count {
            absorb(bytes[index])
            index += 1
        }
    }

    private mutating func withLanes<T>(_ body: (UnsafeMutablePointer<UInt64>) -> T) -> T {
        withUnsafeMutablePointer(to: &lanes) { tuple in
            tuple.withMemoryRebound(to: UInt64.self, capacity: 25) { body($0) }
        }
    }

    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808a, 0x8000_0000_8000_8000,
        0x0000_0000_0000_808b, 0x0000_0000_8000_0001, 0x8000_0000_8000_8081, 0x8000_0000_0000_8009,
        0x0000_0000_0000_008a, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000a,
        0x0000_0000_8000_808b, 0x8000_0000_0000_008b, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003,
        0x8000_0000_0000_8002, 0x8000_0000_0000_0080, 0x0000_0000_0000_800a, 0x8000_0000_8000_000a,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008,
    ]

    /// Keccak-f[1600]: 24 rounds of θ, ρ, π, χ, ι. Lane (x, y) is `a` numbered x + 5y; θ, ρ and π
    /// are fused into the `b` lanes, χ writes them back.
    private mutating func permute() {
        var (a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24) = lanes
        Self.roundConstants.withUnsafeBufferPointer { constants in
            for round in 0..<24 {
                let c0 = a00 ^ a05 ^ a10 ^ a15 ^ a20
                let c1 = a01 ^ a06 ^ a11 ^ a16 ^ a21
                let c2 = a02 ^ a07 ^ a12 ^ a17 ^ a22
                let c3 = a03 ^ a08 ^ a13 ^ a18 ^ a23
                let c4 = a04 ^ a09 ^ a14 ^ a19 ^ a24
                let d0 = c4 ^ rotl(c1, 1)
                let d1 = c0 ^ rotl(c2, 1)
                let d2 = c1 ^ rotl(c3, 1)
                let d3 = c2 ^ rotl(c4, 1)
                let d4 = c3 ^ rotl(c0, 1)
                let b00 = (a00 ^ d0)
                let b01 = rotl(a06 ^ d1, 44)
                let b02 = rotl(a12 ^ d2, 43)
                let b03 = rotl(a18 ^ d3, 21)
                let b04 = rotl(a24 ^ d4, 14)
                let b05 = rotl(a03 ^ d3, 28)
                let b06 = rotl(a09 ^ d4, 20)
                let b07 = rotl(a10 ^ d0, 3)
                let b08 = rotl(a16 ^ d1, 45)
                let b09 = rotl(a22 ^ d2, 61)
                let b10 = rotl(a01 ^ d1, 1)
                let b11 = rotl(a07 ^ d2, 6)
                let b12 = rotl(a13 ^ d3, 25)
                let b13 = rotl(a19 ^ d4, 8)
                let b14 = rotl(a20 ^ d0, 18)
                let b15 = rotl(a04 ^ d4, 27)
                let b16 = rotl(a05 ^ d0, 36)
                let b17 = rotl(a11 ^ d1, 10)
                let b18 = rotl(a17 ^ d2, 15)
                let b19 = rotl(a23 ^ d3, 56)
                let b20 = rotl(a02 ^ d2, 62)
                let b21 = rotl(a08 ^ d3, 55)
                let b22 = rotl(a14 ^ d4, 39)
                let b23 = rotl(a15 ^ d0, 41)
                let b24 = rotl(a21 ^ d1, 2)
                a00 = b00 ^ (~b01 & b02)
                a01 = b01 ^ (~b02 & b03)
                a02 = b02 ^ (~b03 & b04)
                a03 = b03 ^ (~b04 & b00)
                a04 = b04 ^ (~b00 & b01)
                a05 = b05 ^ (~b06 & b07)
                a06 = b06 ^ (~b07 & b08)
                a07 = b07 ^ (~b08 & b09)
                a08 = b08 ^ (~b09 & b05)
                a09 = b09 ^ (~b05 & b06)
                a10 = b10 ^ (~b11 & b12)
                a11 = b11 ^ (~b12 & b13)
                a12 = b12 ^ (~b13 & b14)
                a13 = b13 ^ (~b14 & b10)
                a14 = b14 ^ (~b10 & b11)
                a15 = b15 ^ (~b16 & b17)
                a16 = b16 ^ (~b17 & b18)
                a17 = b17 ^ (~b18 & b19)
                a18 = b18 ^ (~b19 & b15)
                a19 = b19 ^ (~b15 & b16)
                a20 = b20 ^ (~b21 & b22)
                a21 = b21 ^ (~b22 & b23)
                a22 = b22 ^ (~b23 & b24)
                a23 = b23 ^ (~b24 & b20)
                a24 = b24 ^ (~b20 & b21)
                a00 ^= constants[round]
            }
        }
        lanes = (a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24)
    }
}

@inline(__always)
private func rotl(_ value: UInt64, _ count: UInt64) -> UInt64 {
    (value &<< count) | (value &>> (64 &- count))
}
