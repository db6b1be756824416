import Foundation
import Store

// Read-ahead: a client playing on finds its next segments in memory.

extension OriginRoutes {
    /// One client playing one rendition of one version (read-ahead follows each).
    struct PlayingStream: Hashable {
        let client: String
        let asset: String
        let version: String
        let folder: String
    }

    /// At most this many read-aheads run at once, so a burst of viewers cannot flood the store.
    static let maximumWarming = 4

    /// A client that asks for segment k right after segment k-1 of the same rendition is playing
    /// on: segments k+1 … k+n are read into L1 (and L2) in the background, so it finds them in
    /// memory. Random access (seeking, a crawler, a mix of many viewers behind one address) reads
    /// nothing ahead. Segment names are numbered (`00042.ts`).
    func warm(after version: PublishedVersion, _ segment: NumberedSegment, client: String) {
        // A growing version's next segments mostly do not exist yet: asking would cost a miss each.
        guard options.warmSegments > 0, !version.isGrowing else { return }
        let (folder, number, digits) = (segment.folder, segment.number, segment.digits)
        let stream = PlayingStream(client: client, asset: version.asset.rawValue, version: version.version, folder: folder)
        let sequential = lastSegments.withLockedValue { last -> Bool in
            if last.count >= 100_000 { last.removeAll() }
            return last.updateValue(number, forKey: stream) == number - 1
        }
        guard sequential else { return }
        for step in 1...options.warmSegments {
            var next = String(number + step)
            if next.count < digits { next = String(repeating: "0", count: digits - next.count) + next }
            let nextRelative = "\(folder)/\(next).ts"
            let key = "\(version.asset.rawValue)/\(version.version)/\(nextRelative)"
            if cache.contains(key) { continue }
            let admitted = warming.withLockedValue { running -> Bool in
                guard running < Self.maximumWarming else { return false }
                running += 1
                return true
            }
            guard admitted else { return }
            Task {
                defer { warming.withLockedValue { $0 -= 1 } }
                if (try? await load(version, nextRelative, type: .transportStream, rewritten: false, readAhead: true)) != nil {
                    counters.withLockedValue { $0.warmed += 1 }
                    metrics.warmed.increment()
                }
            }
        }
    }
}

/// A numbered segment's place in its rendition (`540p/00042.ts`: folder `540p`, number 42,
/// written with 5 digits); nil for any other name.
struct NumberedSegment {
    let folder: String
    let number: Int
    let digits: Int

    init?(_ relative: String) {
        // On the UTF-8 view: the names are ASCII.
        let bytes = relative.utf8
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        let file = bytes[bytes.index(after: slash)...]
        guard file.count > 3, file.suffix(3).elementsEqual(".ts".utf8) else { return nil }
        let digits = file.dropLast(3)
        guard digits.count <= 18 else { return nil }
        var number = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            number = number * 10 + Int(byte - UInt8(ascii: "0"))
        }
        folder = String(Substring(bytes[..<slash]))
        self.number = number
        self.digits = digits.count
    }
}
