import Foundation

/// The parts of HTTP semantics (RFC 9110) the origin implements itself: validators, conditional
/// requests, byte ranges, content coding negotiation and HTTP dates. `package` so the fuzz
/// harnesses (fuzz/) can call it with whatever a client could send.
package enum HTTPSemantics {
    // MARK: - Conditional requests (RFC 9110 §13)

    /// Whether a GET or HEAD may be answered 304: `If-None-Match` decides when present (weak
    /// comparison, `*` matches); otherwise `If-Modified-Since` does.
    package static func notModified(ifNoneMatch: String?, ifModifiedSince: String?, eTag: String, lastModified: Int) -> Bool {
        if let ifNoneMatch {
            return matches(ifNoneMatch, eTag: eTag)
        }
        if let ifModifiedSince, let since = parseHTTPDate(ifModifiedSince) {
            return lastModified <= since
        }
        return false
    }

    /// Weak comparison of an `If-None-Match` list against one entity tag.
    package static func matches(_ list: String, eTag: String) -> Bool {
        let wanted = opaque(eTag)
        for candidate in list.split(separator: ",") {
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            if tag == "*" || opaque(tag) == wanted { return true }
        }
        return false
    }

    private static func opaque(_ tag: some StringProtocol) -> Substring {
        let text = Substring(tag)
        return text.hasPrefix("W/") ? text.dropFirst(2) : text
    }

    // MARK: - Ranges (RFC 9110 §14)

    package enum RangeDecision: Equatable {
        /// Serve the whole representation (no Range, a Range to ignore, or several ranges).
        case whole
        /// Serve bytes `lower..<upper`.
        case partial(lower: Int, upper: Int)
        /// 416: no range overlaps the representation.
        case unsatisfiable
    }

    /// Decides how to answer `Range` for a representation of `size` bytes. `If-Range` with a
    /// validator that is not the current strong ETag (or a date) makes the Range ignored, as does a
    /// header that is not a `bytes` range set. Several ranges are answered with the whole body,
    /// which the RFC allows and players never need otherwise.
    package static func range(_ header: String?, ifRange: String?, size: Int, eTag: String) -> RangeDecision {
        guard let header else { return .whole }
        if let ifRange {
            let trimmed = ifRange.trimmingCharacters(in: .whitespaces)
            // Only a strong, equal ETag keeps the Range; a date is never strong enough here.
            guard !trimmed.hasPrefix("W/"), trimmed == eTag else { return .whole }
        }
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else { return .whole }
        let specs = text.dropFirst(6).split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard specs.count == 1, let spec = specs.first, let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        guard first.allSatisfy(\.isASCIIDigit), last.allSatisfy(\.isASCIIDigit), !(first.isEmpty && last.isEmpty) else {
            return .whole
        }
        if first.isEmpty {
            // A suffix: the last N bytes.
            guard let count = Int(last), count > 0, size > 0 else { return .unsatisfiable }
            return .partial(lower: max(0, size - count), upper: size)
        }
        guard let lower = Int(first) else { return .unsatisfiable }
        if !last.isEmpty {
            guard let upper = Int(last) else { return .whole }
            if upper < lower { return .whole }  // invalid: ignored, not refused
            guard lower < size else { return .unsatisfiable }
            return .partial(lower: lower, upper: min(upper, size - 1) + 1)
        }
        guard lower < size else { return .unsatisfiable }
        return .partial(lower: lower, upper: size)
    }

    // MARK: - Content coding

    /// Whether `Accept-Encoding` accepts gzip (a `q=0` refuses it).
    package static func acceptsGzip(_ header: String?) -> Bool {
        guard let header else { return false }
        for item in header.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let coding = parts.first, coding == "gzip" || coding == "x-gzip" || coding == "*" else { continue }
            let quality = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            if quality > 0 { return true }
        }
        return false
    }

    // MARK: - Dates (IMF-fixdate, RFC 9110 §5.6.7)

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Sun, 06 Nov 1994 08:49:37 GMT` for seconds since 1970.
    package static func httpDate(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        // The weekday is gmtime's: days counted by truncating division named each day before 1970
        // after the next one. The year has IMF-fixdate's four digits, which parseHTTPDate requires.
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(four(parts.tm_year + 1900)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    private static func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }

    private static func four(_ value: Int32) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`: every number of a fixed width, so
    /// no value can grow past what the arithmetic holds); nil for anything else (obsolete formats
    /// are not worth a 304).
    package static func parseHTTPDate(_ text: String) -> Int? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 6, fields[0].count == 4, fields[0].hasSuffix(","), fields[5] == "GMT",
              let day = digits(fields[1], count: 2), let month = months.firstIndex(of: String(fields[2])),
              let year = digits(fields[3], count: 4)
        else { return nil }
        let clock = fields[4].split(separator: ":", omittingEmptySubsequences: false)
        guard clock.count == 3, let hour = digits(clock[0], count: 2), let minute = digits(clock[1], count: 2),
              let second = digits(clock[2], count: 2)
        else { return nil }
        return epochSeconds(year: year, month: month + 1, day: day, hour: hour, minute: minute, second: second)
    }

    /// The value of exactly `count` ASCII digits; nil for a sign, a space or any other width.
    private static func digits(_ text: Substring, count: Int) -> Int? {
        guard text.utf8.count == count else { return nil }
        var value = 0
        for byte in text.utf8 {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// Seconds since 1970 for a UTC civil time (days-from-civil, no time zone involved); nil outside
    /// years 1–9999, which also keeps every product below far from overflowing.
    static func epochSeconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int? {
        guard (1...9999).contains(year), (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour),
              (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second
        // A leap second ending 9999 is the first second of 10000, which no four-digit year writes.
        return seconds < 253_402_300_800 ? seconds : nil
    }

    /// The publish time a store version name carries (`v20261123T194429Z-…`), in seconds.
    static func publishTime(ofVersion version: String) -> Int? {
        let bytes = Array(version.utf8)
        guard bytes.count >= 17, bytes[0] == UInt8(ascii: "v"), bytes[9] == UInt8(ascii: "T"), bytes[16] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int? { Int(String(decoding: bytes[range], as: UTF8.self)) }
        guard let year = number(1..<5), let month = number(5..<7), let day = number(7..<9), let hour = number(10..<12),
              let minute = number(12..<14), let second = number(14..<16)
        else { return nil }
        return epochSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
