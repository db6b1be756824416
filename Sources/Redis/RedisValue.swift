/// A Redis reply, copied out of hiredis's reply object (which is freed at once).
public enum RedisValue: Sendable, Equatable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case array([RedisValue])
    case null
    /// An error reply. ``RedisConnection/send(_:)`` throws these as ``RedisError/server(_:)``;
    /// pipelines return them in place, so one failing command does not hide the others' replies.
    case error(String)

    /// The value as text: bulk strings as UTF-8, statuses as they are, integers in decimal.
    public var text: String? {
        switch self {
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        case .integer(let value): String(value)
        default: nil
        }
    }

    /// The value as an integer: integer replies, and bulk strings holding a decimal integer.
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .string: text.flatMap { Int64($0) }
        default: nil
        }
    }

    public var array: [RedisValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// A flat `[field, value, field, value…]` array (HGETALL, stream entry fields) as a dictionary.
    public var fieldMap: [String: String] {
        guard let values = array else { return [:] }
        var map: [String: String] = [:]
        var index = 0
        while index + 1 < values.count {
            if let key = values[index].text, let value = values[index + 1].text { map[key] = value }
            index += 2
        }
        return map
    }
}
