import Foundation

/// One stage of a transcode as the child measured it (open and probe, decode, each rung's encode,
/// audio, stills, sealing the last segments and the playlists): reported over the child's pipe,
/// and recorded by the worker as a span of the job's trace, since the sandboxed child has no
/// socket to export it itself.
public struct TranscodeStage: Codable, Sendable, Equatable {
    public enum Name: String, Codable, Sendable, CaseIterable {
        case probe, decode, encode, audio, stills, seal
    }

    public var name: Name
    /// The rung, for an `encode` stage.
    public var rendition: String?
    /// When the stage began and ended, nanoseconds since the Unix epoch.
    public var startNanoseconds: UInt64
    public var endNanoseconds: UInt64
    /// Time spent in the stage's own work: stages run interleaved (every frame is decoded, then
    /// encoded by every rung), so a stage's span is longer than its work.
    public var busySeconds: Double?
    public var frames: Int?

    public init(
        name: Name, rendition: String? = nil, startNanoseconds: UInt64, endNanoseconds: UInt64, busySeconds: Double? = nil, frames: Int? = nil
    ) {
        self.name = name
        self.rendition = rendition
        self.startNanoseconds = startNanoseconds
        self.endNanoseconds = endNanoseconds
        self.busySeconds = busySeconds
        self.frames = frames
    }

    enum CodingKeys: String, CodingKey {
        case name, rendition, startNanoseconds = "start_ns", endNanoseconds = "end_ns", busySeconds = "busy_s", frames
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // Read signed, so a negative instant is named rather than failing as a number out of range.
        func instant(_ key: CodingKeys) throws -> UInt64 {
            let value = try container.decode(Int64.self, forKey: key)
            guard value >= 0 else { throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "must be 0 or more") }
            return UInt64(value)
        }
        name = try container.decode(Name.self, forKey: .name)
        rendition = try container.decodeIfPresent(String.self, forKey: .rendition)
        startNanoseconds = try instant(.startNanoseconds)
        endNanoseconds = try instant(.endNanoseconds)
        busySeconds = try container.decodeIfPresent(Double.self, forKey: .busySeconds)
        frames = try container.decodeIfPresent(Int.self, forKey: .frames)
    }

    /// Why a stage a child reported cannot be recorded; nil when it can. A child parses hostile
    /// media: what it says is bounded before it becomes a span.
    public var problem: String? {
        if let rendition, rendition.isEmpty || rendition.utf8.count > 64 || !rendition.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) }) {
            return "'rendition' must be 1-64 printable characters"
        }
        guard endNanoseconds >= startNanoseconds else { return "'end_ns' is before 'start_ns'" }
        if let busySeconds, !(busySeconds.isFinite && busySeconds >= 0) { return "'busy_s' must be 0 or more seconds" }
        if let frames, frames < 0 { return "'frames' must be 0 or more" }
        return nil
    }
}

/// Measures one stage of a transcode: when it first and last worked, and for how long in all.
public struct StageClock: Sendable {
    public private(set) var start: UInt64?
    public private(set) var end: UInt64 = 0
    private var busy: UInt64 = 0

    public init() {}

    /// Runs `body` as part of the stage's work.
    public mutating func measure<T>(_ body: () throws -> T) rethrows -> T {
        let began = Self.now()
        defer {
            let ended = Self.now()
            if start == nil { start = began }
            end = ended
            busy &+= ended &- began
        }
        return try body()
    }

    /// The stage, when it worked at all.
    public func stage(_ name: TranscodeStage.Name, rendition: String? = nil, frames: Int? = nil) -> TranscodeStage? {
        guard let start else { return nil }
        return TranscodeStage(
            name: name, rendition: rendition, startNanoseconds: start, endNanoseconds: end, busySeconds: Double(busy) / 1e9, frames: frames
        )
    }

    /// Nanoseconds since the Unix epoch (the wall clock: the stage becomes a span beside the
    /// worker's, which are stamped with the same clock).
    public static func now() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
