import Foundation

/// An approximate count of how often each key was asked for recently: a count-min sketch of 4-bit
/// counters (4 rows), halved every `sampleSize` increments so old popularity fades.
///
/// This is the "TinyLFU" half of W-TinyLFU: it lets the cache admit a new object only when it has
/// been asked for more often than the object it would push out, so a scan of one-time keys cannot
/// flush the hot set.
struct FrequencySketch {
    private var table: [UInt64]
    private let mask: Int
    private let sampleSize: Int
    private var additions = 0
    private static let seeds: [UInt64] = [0xc3a5_c85c_97cb_3127, 0xb492_b66f_be98_f273, 0x9ae1_6a3b_2f90_404f, 0xcbf2_9ce4_8422_2325]

    /// - Parameter expectedEntries: about how many objects the cache holds.
    init(expectedEntries: Int) {
        // 16 four-bit counters per UInt64; a power of two of words, about one word per entry.
        let words = max(8, 1 << Int(ceil(log2(Double(max(1, expectedEntries))))))
        table = [UInt64](repeating: 0, count: words)
        mask = words - 1
        sampleSize = 10 * max(16, expectedEntries)
    }

    /// The estimated recent frequency of `hash` (0…15).
    func frequency(_ hash: UInt64) -> Int {
        var minimum = 15
        for row in 0..<4 {
            let (word, shift) = position(hash, row: row)
            minimum = min(minimum, Int((table[word] >> shift) & 0xF))
        }
        return minimum
    }

    /// Counts one more request for `hash`.
    mutating func increment(_ hash: UInt64) {
        var added = false
        for row in 0..<4 {
            let (word, shift) = position(hash, row: row)
            if (table[word] >> shift) & 0xF < 15 {
                table[word] += 1 << shift
                added = true
            }
        }
        guard added else { return }
        additions += 1
        if additions >= sampleSize { age() }
    }

    /// Halves every counter: popularity decays.
    private mutating func age() {
        for index in table.indices {
            table[index] = (table[index] >> 1) & 0x7777_7777_7777_7777
        }
        additions /= 2
    }

    /// A word and a counter within it for one row, from independent mixes of the hash.
    private func position(_ hash: UInt64, row: Int) -> (Int, UInt64) {
        var mixed = (hash &+ Self.seeds[row]) &* 0x9e37_79b9_7f4a_7c15
        mixed ^= mixed >> 29
        let word = Int(truncatingIfNeeded: mixed) & mask
        let counter = UInt64((mixed >> 40) & 0xF)
        return (word, counter * 4)
    }
}
