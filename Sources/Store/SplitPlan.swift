/// How a long upload is split across workers: its chunks, cut on segment boundaries, each a job
/// that encodes the video renditions of its stretch; and whether the source has audio, encoded
/// once for the whole source as a rendition of its own. A transcode child plans it (it can read
/// the source), its worker enqueues the chunks; the plan travels as a child's event and in the
/// job's record, so ``validated()`` checks one before it is used.
public struct SplitPlan: Codable, Sendable, Equatable {
    public struct Chunk: Codable, Sendable, Equatable {
        /// Seconds from the source's start.
        public var start: Double
        /// nil: to the source's end (the last chunk).
        public var end: Double?

        public init(start: Double, end: Double?) {
            self.start = start
            self.end = end
        }
    }

    /// The source's duration, seconds, as its container says.
    public var duration: Double
    public var chunks: [Chunk]
    /// The source has audio the profile keeps: one more part encodes it.
    public var audio: Bool
    /// The poster's instant, seconds: the chunk that holds it writes the poster.
    public var posterTime: Double

    enum CodingKeys: String, CodingKey {
        case duration, chunks, audio, posterTime = "poster_time"
    }

    public init(duration: Double, chunks: [Chunk], audio: Bool, posterTime: Double) {
        self.duration = duration
        self.chunks = chunks
        self.audio = audio
        self.posterTime = posterTime
    }

    /// Chunks a plan may have: a 24-hour source in 60 s chunks is 1,440.
    public static let maxChunks = 2_000
    /// A week of media: more than any limit a worker accepts.
    public static let maxDuration = 7 * 86_400.0

    /// The plan when its chunks cover the source in order without gap or overlap (the first from
    /// 0, each ending where the next starts, the last open); else why not.
    public func validated() -> Result<SplitPlan, SplitPlanError> {
        guard duration.isFinite, duration > 0, duration <= Self.maxDuration else { return .failure(SplitPlanError("duration \(duration) is not a positive number of seconds")) }
        guard (2...Self.maxChunks).contains(chunks.count) else { return .failure(SplitPlanError("has \(chunks.count) chunks; 2…\(Self.maxChunks) are accepted")) }
        guard posterTime.isFinite, posterTime >= 0 else { return .failure(SplitPlanError("poster time \(posterTime) is not seconds from the start")) }
        guard chunks[0].start == 0 else { return .failure(SplitPlanError("the first chunk starts at \(chunks[0].start) s, not 0")) }
        for (index, chunk) in chunks.enumerated() {
            let isLast = index == chunks.count - 1
            guard chunk.start.isFinite, chunk.start >= 0, chunk.start <= duration else { return .failure(SplitPlanError("chunk \(index) starts at \(chunk.start)")) }
            if isLast {
                guard chunk.end == nil else { return .failure(SplitPlanError("the last chunk must run to the source's end")) }
            } else {
                guard let end = chunk.end, end.isFinite, end > chunk.start, end == chunks[index + 1].start else {
                    return .failure(SplitPlanError("chunk \(index) does not end where chunk \(index + 1) starts"))
                }
            }
        }
        return .success(self)
    }
}

/// Why a split plan cannot be used.
public struct SplitPlanError: Error, CustomStringConvertible, Sendable, Equatable {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
