import Foundation

/// An RFC 3339 `date-time` (`2021-09-30T16:25:24Z`, `2021-09-30T18:25:24.5+02:00`): its text as
/// written and the instant it names.
///
/// Parsing follows RFC 3339 §5.6 exactly: a four-digit year, two-digit fields in range (days by
/// month and leap year, a leap second `:60` allowed), optional fractional seconds, and an offset that
/// is `Z` or `±hh:mm`; `T` and `Z` may be lowercase, as the RFC's ABNF allows. Nothing else — no
/// space for `T`, no missing seconds, no `+0200`.
public struct RFC3339Timestamp: Sendable, Hashable, CustomStringConvertible {
    /// The timestamp as written.
    public let text: String
    /// The instant it names. A leap second `23:59:60` is the instant after `23:59:59`.
    public let date: Date

    /// Parses `text`; the error says which part is wrong.
    public init(_ text: String) throws(RFC3339Error) {
        self.text = text
        self.date = try Self.parse(Array(text.utf8))
    }

    /// The UTC timestamp of `date`, with milliseconds when `date` has a fraction of a second. RFC 3339
    /// writes years 0000 to 9999 only: an instant outside them is written as the nearest one inside.
    public init(_ date: Date) {
        // Also what keeps the conversion to Int64 below from trapping on a far date.
        let instant = date.timeIntervalSince1970.isNaN ? 0 : min(max(date.timeIntervalSince1970, -62_167_219_200), 253_402_300_799.999)
        let milliseconds = Int64((instant * 1000).rounded(.down))
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let fraction = milliseconds - seconds * 1000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = Self.civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        var text = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
        text += "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))"
        if fraction != 0 { text += ".\(pad(fraction, 3))" }
        self.text = text + "Z"
        self.date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    public var description: String { text }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    private static func parse(_ bytes: [UInt8]) throws(RFC3339Error) -> Date {
        var index = 0

        func digits(_ count: Int, _ field: String) throws(RFC3339Error) -> Int64 {
            var value: Int64 = 0
            for _ in 0..<count {
                guard index < bytes.count, (0x30...0x39).contains(bytes[index]) else {
                    throw RFC3339Error("\(field) must be \(count) digits")
                }
                value = value * 10 + Int64(bytes[index] - 0x30)
                index += 1
            }
            return value
        }
        func literal(_ accepted: [UInt8], _ what: String) throws(RFC3339Error) {
            guard index < bytes.count, accepted.contains(bytes[index]) else {
                throw RFC3339Error("expected \(what) at offset \(index)")
            }
            index += 1
        }
        func check(_ value: Int64, _ range: ClosedRange<Int64>, _ field: String) throws(RFC3339Error) {
            guard range.contains(value) else { throw RFC3339Error("\(field) \(value) is out of range \(range.lowerBound)–\(range.upperBound)") }
        }

        let year = try digits(4, "year")
        try literal([0x2d], "'-' after the year")
        let month = try digits(2, "month")
        try check(month, 1...12, "month")
        try literal([0x2d], "'-' after the month")
        let day = try digits(2, "day")
        try check(day, 1...daysInMonth(year: year, month: month), "day")
        try literal([0x54, 0x74], "'T' between date and time")
        let hour = try digits(2, "hour")
        try check(hour, 0...23, "hour")
        try literal([0x3a], "':' after the hour")
        let minute = try digits(2, "minute")
        try check(minute, 0...59, "minute")
        try literal([0x3a], "':' after the minute")
        let second = try digits(2, "second")
        try check(second, 0...60, "second")

        var fraction = 0.0
        if index < bytes.count, bytes[index] == 0x2e {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) {
                fraction += Double(bytes[index] - 0x30) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { throw RFC3339Error("expected digits after '.' in the seconds") }
        }

        var offset: Int64 = 0
        guard index < bytes.count else { throw RFC3339Error("missing the time offset ('Z' or ±hh:mm)") }
        switch bytes[index] {
        case 0x5a, 0x7a:
            index += 1
        case 0x2b, 0x2d:
            let sign: Int64 = bytes[index] == 0x2d ? -1 : 1
            index += 1
            let offsetHour = try digits(2, "offset hour")
            try check(offsetHour, 0...23, "offset hour")
            try literal([0x3a], "':' in the time offset")
            let offsetMinute = try digits(2, "offset minute")
            try check(offsetMinute, 0...59, "offset minute")
            offset = sign * (offsetHour * 3600 + offsetMinute * 60)
        default:
            throw RFC3339Error("expected the time offset ('Z' or ±hh:mm) at offset \(index)")
        }
        guard index == bytes.count else { throw RFC3339Error("unexpected text after the time offset") }

        let days = Self.days(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    private static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    private static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    private static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date of a day count since 1970-01-01 (`civil_from_days`).
    private static func civil(fromDays count: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = count + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// Text that is not an RFC 3339 `date-time`.
public struct RFC3339Error: Error, CustomStringConvertible, Sendable, Equatable {
    /// What is wrong, e.g. `month 13 is out of range 1–12`.
    public let reason: String

    init(_ reason: String) { self.reason = reason }

    public var description: String { "not an RFC 3339 date-time: \(reason)" }
}
