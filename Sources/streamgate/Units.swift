import ArgumentParser
import Foundation

// Sizes and durations as operators write them on the command line. The options keep their names
// and plain numbers keep their meaning (bytes, seconds), so existing scripts and units still work.
//
// Grammar (no spaces, no sign, no exponent; units are case-sensitive except K/k):
//   size     = number [ size-unit ]        plain number: bytes
//   size-unit: B; KiB MiB GiB TiB, or K (k) M G T: powers of 1024 (as in coreutils, systemd);
//              kB (KB) MB GB TB: powers of 1000
//   duration = number [ time-unit ]        plain number: seconds
//   time-unit: ms s m h d
//   number   = digits [ "." digits ]       a fraction must come to whole bytes (1.5KiB, not 1.5B)
//              or whole nanoseconds; at most 18 decimals.

/// Why a size or a duration was refused: what was given and what is wrong with it, with what is
/// expected when the form itself is wrong.
struct UnitError: Error, CustomStringConvertible, Equatable {
    let given: String
    /// The problem on its own ("not a whole number of bytes"), for messages that quote `given` already.
    let problem: String

    var description: String { given.isEmpty ? problem : "'\(given)': \(problem)" }
}

/// A number of bytes, given as `268435456`, `256MiB`, `1GiB`, `8GB` or `512K`.
struct ByteCount: Hashable, Sendable, CustomStringConvertible {
    let bytes: Int

    init(_ bytes: Int) {
        precondition(bytes >= 0, "a byte count is 0 or more")
        self.bytes = bytes
    }

    init(parsing text: String) throws(UnitError) {
        bytes = try Self.parse(text, plainUnit: 1, plainName: "bytes", plainExample: "268435456")
    }

    /// The largest unit that divides it exactly (`256MiB`, `64GB`), else plain bytes.
    var description: String { Self.format(bytes) }

    /// Every unit a size may have. The one-letter ones are binary, as in coreutils and systemd.
    static let units: [(name: String, multiplier: Int)] = [
        ("B", 1),
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
        ("K", 1 << 10), ("k", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40),
        ("kB", 1_000), ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
    ]

    /// What `description` writes: the spelled-out names, biggest first.
    private static let writtenUnits: [(name: String, multiplier: Int)] = [
        ("TiB", 1 << 40), ("TB", 1_000_000_000_000), ("GiB", 1 << 30), ("GB", 1_000_000_000),
        ("MiB", 1 << 20), ("MB", 1_000_000), ("KiB", 1 << 10), ("kB", 1_000),
    ]

    static func format(_ bytes: Int) -> String {
        guard bytes > 0 else { return String(bytes) }
        for unit in writtenUnits where bytes % unit.multiplier == 0 {
            return "\(bytes / unit.multiplier)\(unit.name)"
        }
        return String(bytes)
    }

    /// Reads a size whose plain numbers count `plainUnit` bytes (1, or 1 MiB for `--memory-limit-mib`).
    static func parse(_ text: String, plainUnit: Int, plainName: String, plainExample: String) throws(UnitError) -> Int {
        let expected = "expected a number of \(plainName) (\(plainExample)) or a number and a unit: "
            + "KiB MiB GiB TiB or K M G T (powers of 1024), kB MB GB TB (powers of 1000), B; as in 256MiB, 1.5GiB, 8GB"
        let quantity = try WrittenQuantity(text, kind: "size", expected: expected)
        let multiplier: Int
        if quantity.unit.isEmpty {
            multiplier = plainUnit
        } else if let unit = units.first(where: { $0.name == quantity.unit }) {
            multiplier = unit.multiplier
        } else {
            throw UnitError(given: text, problem: "'\(quantity.unit)' is not a unit of size; \(expected)")
        }
        switch quantity.scaled(by: multiplier) {
        case .value(let bytes): return bytes
        case .tooLarge: throw UnitError(given: text, problem: "too large; a size is at most \(Int.max) bytes")
        case .notWhole: throw UnitError(given: text, problem: "not a whole number of bytes")
        case .tooManyDecimals: throw UnitError(given: text, problem: "more than \(WrittenQuantity.maximumDecimals) decimals")
        }
    }
}

extension ByteCount: ExpressibleByArgument {
    init?(argument: String) {
        do { try self.init(parsing: argument) } catch { RefusedValue.note(error); return nil }
    }

    var defaultValueDescription: String { description }
}

/// A size whose plain numbers are MiB: `--memory-limit-mib`, which took MiB before units.
struct MebibyteCount: Hashable, Sendable, CustomStringConvertible {
    let mebibytes: Int

    init(_ mebibytes: Int) {
        precondition(mebibytes >= 0 && mebibytes <= Int.max >> 20, "a MiB count is 0 or more and fits in bytes")
        self.mebibytes = mebibytes
    }

    init(parsing text: String) throws(UnitError) {
        let bytes = try ByteCount.parse(text, plainUnit: 1 << 20, plainName: "MiB", plainExample: "8192")
        // The limit is set in whole MiB; rounding a size the operator gave would hide a mistake.
        guard bytes % (1 << 20) == 0 else { throw UnitError(given: text, problem: "not a whole number of MiB") }
        mebibytes = bytes >> 20
    }

    var description: String { ByteCount.format(mebibytes << 20) }
}

extension MebibyteCount: ExpressibleByArgument {
    init?(argument: String) {
        do { try self.init(parsing: argument) } catch { RefusedValue.note(error); return nil }
    }

    var defaultValueDescription: String { description }
}

/// A span of time, given as `90`, `90s`, `1.5s`, `250ms`, `10m`, `4h` or `1d`; kept in whole
/// nanoseconds so that every conversion (to `Duration`, to seconds) is exact and cannot overflow.
struct DurationValue: Hashable, Sendable, CustomStringConvertible {
    let nanoseconds: Int

    init(nanoseconds: Int) {
        precondition(nanoseconds >= 0, "a duration is 0 or more")
        self.nanoseconds = nanoseconds
    }

    init(seconds: Int) {
        self.init(nanoseconds: seconds * 1_000_000_000)
    }

    init(parsing text: String) throws(UnitError) {
        let expected = "expected a number of seconds (90, 1.5) or a number and a unit: ms s m h d; as in 250ms, 90s, 10m, 4h, 7d"
        let quantity = try WrittenQuantity(text, kind: "duration", expected: expected)
        guard let multiplier = quantity.unit.isEmpty ? 1_000_000_000 : Self.units.first(where: { $0.name == quantity.unit })?.nanoseconds else {
            throw UnitError(given: text, problem: "'\(quantity.unit)' is not a unit of time; \(expected)")
        }
        switch quantity.scaled(by: multiplier) {
        case .value(let nanoseconds): self.nanoseconds = nanoseconds
        case .tooLarge: throw UnitError(given: text, problem: "too long; a duration is at most 106751d (292 years)")
        case .notWhole: throw UnitError(given: text, problem: "finer than a nanosecond")
        case .tooManyDecimals: throw UnitError(given: text, problem: "more than \(WrittenQuantity.maximumDecimals) decimals")
        }
    }

    static let units: [(name: String, nanoseconds: Int)] = [
        ("d", 86_400_000_000_000), ("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000),
    ]

    var seconds: Double { Double(nanoseconds) / 1e9 }

    var duration: Duration { .nanoseconds(nanoseconds) }

    /// The seconds, when they are whole: for what is kept in whole seconds (Cache-Control
    /// max-age, Redis TTLs); nil otherwise.
    var wholeSeconds: Int? { nanoseconds % 1_000_000_000 == 0 ? nanoseconds / 1_000_000_000 : nil }

    /// The largest unit that divides it exactly (`90s`, `4h`, `250ms`), else seconds with decimals.
    var description: String { Self.format(nanoseconds) }

    static func format(_ nanoseconds: Int) -> String {
        guard nanoseconds > 0 else { return "0s" }
        for unit in units where nanoseconds % unit.nanoseconds == 0 {
            return "\(nanoseconds / unit.nanoseconds)\(unit.name)"
        }
        var decimals = String(nanoseconds % 1_000_000_000)
        decimals = String(repeating: "0", count: 9 - decimals.count) + decimals
        while decimals.hasSuffix("0") { decimals.removeLast() }
        return "\(nanoseconds / 1_000_000_000).\(decimals)s"
    }
}

extension DurationValue: ExpressibleByArgument {
    init?(argument: String) {
        do { try self.init(parsing: argument) } catch { RefusedValue.note(error); return nil }
    }

    var defaultValueDescription: String { description }
}

/// A number as written (digits, then maybe a point and more digits) and the unit after it.
private struct WrittenQuantity {
    static let maximumDecimals = 18

    let whole: Substring
    /// The digits after the point, trailing zeros dropped.
    let fraction: Substring
    let unit: Substring

    init(_ text: String, kind: String, expected: String) throws(UnitError) {
        if text.isEmpty { throw UnitError(given: text, problem: "no \(kind) given; \(expected)") }
        if text.contains(where: \.isWhitespace) {
            throw UnitError(given: text, problem: "contains a space; write the number and its unit together, as in \(kind == "size" ? "256MiB" : "90s")")
        }
        if text.hasPrefix("-") { throw UnitError(given: text, problem: "negative; a \(kind) is 0 or more") }
        let isDigit: (Character) -> Bool = { $0.isASCII && $0.isNumber }
        let whole = text.prefix(while: isDigit)
        var rest = text[whole.endIndex...]
        var fraction: Substring = ""
        if rest.hasPrefix(".") {
            fraction = rest.dropFirst().prefix(while: isDigit)
            rest = rest[fraction.endIndex...]
            if fraction.isEmpty { throw UnitError(given: text, problem: "a point needs digits after it; \(expected)") }
        }
        guard !whole.isEmpty else { throw UnitError(given: text, problem: "not a \(kind); \(expected)") }
        while fraction.hasSuffix("0") { fraction = fraction.dropLast() }
        self.whole = whole
        self.fraction = fraction
        self.unit = rest
    }

    enum Scaled: Equatable {
        case value(Int)
        case tooLarge
        case notWhole
        case tooManyDecimals
    }

    /// The number times `multiplier`, computed with overflow reported, never trapped: the input
    /// is an operator's, and a typo must become an error message, not a crash.
    func scaled(by multiplier: Int) -> Scaled {
        guard let whole = Self.integer(whole) else { return .tooLarge }
        let (wholePart, wholeOverflow) = whole.multipliedReportingOverflow(by: multiplier)
        if wholeOverflow { return .tooLarge }
        if fraction.isEmpty { return .value(wholePart) }
        guard fraction.count <= Self.maximumDecimals, let digits = Self.integer(fraction) else { return .tooManyDecimals }
        // digits / 10^count × multiplier is whole when 10^count / gcd divides digits; the result
        // is then below multiplier, so this part cannot overflow.
        var tenPower = 1
        for _ in 0..<fraction.count { tenPower *= 10 }
        let common = Self.gcd(tenPower, multiplier)
        let denominator = tenPower / common
        guard digits % denominator == 0 else { return .notWhole }
        let (total, totalOverflow) = wholePart.addingReportingOverflow(digits / denominator * (multiplier / common))
        return totalOverflow ? .tooLarge : .value(total)
    }

    private static func integer(_ digits: Substring) -> Int? {
        var value = 0
        for digit in digits.utf8 {
            let (shifted, shiftOverflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, sumOverflow) = shifted.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
            if shiftOverflow || sumOverflow { return nil }
            value = sum
        }
        return value
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }
}

/// ArgumentParser learns only that a value was refused (`init?(argument:)` cannot say why); the
/// reason is kept here so that `StreamGate.main` can print it with ArgumentParser's own error.
enum RefusedValue {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var latest: UnitError?

    static func note(_ refusal: UnitError) {
        lock.lock(); defer { lock.unlock() }
        latest = refusal
    }

    /// ArgumentParser's error message, with the reason the value was refused after its first
    /// line ("The value '10XB' is invalid for '--l1-bytes <size>'"); nil when no refusal explains it.
    static func explain(_ message: String) -> String? {
        lock.lock()
        let refusal = latest
        latest = nil
        lock.unlock()
        guard let refusal else { return nil }
        var lines = message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let first = lines.first, first.contains("'\(refusal.given)'") else { return nil }
        lines[0] = first + ": " + refusal.problem
        return lines.joined(separator: "\n")
    }
}

/// The grammar in a sentence, for the help of commands that take sizes or durations.
let unitsHelp = """
Sizes: bytes, or a number and a unit: KiB MiB GiB TiB or K M G T (powers of 1024), kB MB GB TB \
(powers of 1000), B (256MiB, 1.5GiB). Durations: seconds, or a number and a unit: ms s m h d (250ms, 90s, 10m, 4h, 7d).
"""
