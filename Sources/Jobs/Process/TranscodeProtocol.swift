import Foundation
import Store
import Processes

// What a worker and its `streamgate transcode --events` child say to each other: events, one JSON
// object a line on the child's standard output, and the child's exit status. In Jobs, beside
// ChildProcess, because both sides already import it: the worker (Farm) cannot see Media, and
// must not, since it never runs FFmpeg itself.

/// How `streamgate transcode` ends: its exit status, sysexits(3) values where one fits. The one
/// table of them: the child exits with these and the worker decides from them.
public enum TranscodeExit: Int32, CaseIterable, Sendable, CustomStringConvertible {
    /// Published, or found already published by an earlier attempt of the same job.
    case succeeded = 0
    /// An error of no known kind (a bug, the address-space cap refused by the kernel): worth
    /// another attempt.
    case internalFailure = 1
    /// EX_USAGE: the command line was refused (the worker's arguments, not the job's input).
    case usage = 64
    /// EX_DATAERR: the input is damaged, unsupported, over a limit, or asks libav* for more memory
    /// than it allocates whatever the cap. Another attempt would fail the same way.
    case badInput = 65
    /// EX_OSERR: ran out of memory under the address-space cap (`--memory-limit-mib`): worth
    /// another attempt, elsewhere or at a calmer moment.
    case outOfMemory = 71
    /// EX_CANTCREAT: the store failed (full, unwritable). The farm's failure, not the job's.
    case storeUnavailable = 73
    /// EX_CONFIG: the master key or the profile.
    case configuration = 78
    /// 128 + SIGINT: asked to stop (SIGTERM, SIGINT), or its worker died.
    case cancelled = 130

    /// The status of a child that exited with a code in this table; nil for one killed by a
    /// signal (a crash, the kernel, a kill at the time limit) or exiting with any other code.
    public init?(_ status: ExitStatus) {
        guard case .exited(let code) = status else { return nil }
        self.init(rawValue: code)
    }

    public var description: String {
        switch self {
        case .succeeded: "succeeded"
        case .internalFailure: "internal failure"
        case .usage: "usage"
        case .badInput: "bad input"
        case .outOfMemory: "out of memory"
        case .storeUnavailable: "store unavailable"
        case .configuration: "configuration"
        case .cancelled: "cancelled"
        }
    }
}

/// One line the transcode child writes on standard output.
public enum TranscodeEvent: Sendable, Equatable {
    /// How far the transcode has got: at most twice a second.
    case progress(Progress)
    /// A file of the staging folder is complete (a sealed segment, a key, a playlist): the
    /// worker may store it now.
    case stored(String)
    /// Every rendition has a segment and the multivariant playlist is written (after their
    /// `stored` events): a growing version (`--growing`) may be shown now.
    case playable
    /// Every file is written into the staging folder: the last line of a transcode that
    /// succeeded. The worker publishes the version (or, for a part, records its manifest).
    case finished(TranscodeSummary)
    /// The source is long enough for the profile to split it (`--may-split`): the last line of a
    /// child that transcoded nothing. The worker enqueues the chunks.
    case split(SplitPlan)
    /// Why the transcode failed, and the status it is about to exit with: the last line of one
    /// that failed on its own terms (a crash or a kill writes nothing).
    case failed(reason: String, status: TranscodeExit)
    /// A stage the child measured (with `--stages`), for the job's trace.
    case stage(TranscodeStage)

    public struct Progress: Codable, Sendable, Equatable {
        /// Video frames decoded so far.
        public var frames: Int
        public var fps: Double
        /// Media seconds per wall second.
        public var speed: Double
        /// Media time processed, seconds.
        public var processedSeconds: Double
        /// 0…100, when the source's duration is known.
        public var percent: Double?
        /// Seconds left at the current speed, when the duration is known.
        public var etaSeconds: Double?

        public init(frames: Int, fps: Double, speed: Double, processedSeconds: Double, percent: Double?, etaSeconds: Double?) {
            self.frames = frames
            self.fps = fps
            self.speed = speed
            self.processedSeconds = processedSeconds
            self.percent = percent
            self.etaSeconds = etaSeconds
        }

        enum CodingKeys: String, CodingKey {
            case frames, fps, speed, processedSeconds = "processed_s", percent, etaSeconds = "eta_s"
        }
    }
}

/// A line from a transcode child that is not an event: the line (cut to 300 characters) and why.
public struct TranscodeEventError: Error, CustomStringConvertible, Sendable, Equatable {
    public let line: String
    public let reason: String

    public var description: String { "not a transcode event (\(reason)): \(line)" }
}

extension TranscodeEvent {
    /// The event as one line of JSON, with its newline.
    public func line() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// Decodes one line (without its newline).
    public init(line: some StringProtocol) throws(TranscodeEventError) {
        do {
            self = try JSONDecoder().decode(TranscodeEvent.self, from: Data(line.utf8))
        } catch let error as DecodingError {
            throw TranscodeEventError(line: String(line.prefix(300)), reason: Self.explain(error))
        } catch {
            throw TranscodeEventError(line: String(line.prefix(300)), reason: "\(error)")
        }
    }

    /// DecodingError's own description is a dump; this names the field and the problem.
    private static func explain(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey]) -> String { path.map(\.stringValue).joined(separator: ".") }
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty: return "not JSON"
        case .dataCorrupted(let context): return "'\(field(context.codingPath))': \(context.debugDescription)"
        case .keyNotFound(let key, let context): return "'\(field(context.codingPath + [key]))' is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return context.codingPath.isEmpty ? "not a JSON object" : "'\(field(context.codingPath))' has the wrong type"
        @unknown default: return "\(error)"
        }
    }
}

// The wire format: {"type":"progress",…fields}, {"type":"stored","file":"720p/seg_00001.ts"},
// {"type":"playable"}, {"type":"done","summary":{…}}, {"type":"split","plan":{…}},
// {"type":"failed","reason":…,"status":65}.
extension TranscodeEvent: Codable {
    private enum CodingKeys: String, CodingKey {
        case type, summary, reason, status, file, plan, stage
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "progress":
            self = .progress(try Progress(from: decoder))
        case "stored":
            let file = try container.decode(String.self, forKey: .file)
            guard StorePath.isSafeRelative(file) else {
                throw DecodingError.dataCorruptedError(forKey: .file, in: container, debugDescription: "not a plain relative path")
            }
            self = .stored(file)
        case "playable":
            self = .playable
        case "done":
            self = .finished(try container.decode(TranscodeSummary.self, forKey: .summary))
        case "split":
            switch try container.decode(SplitPlan.self, forKey: .plan).validated() {
            case .success(let plan): self = .split(plan)
            case .failure(let problem): throw DecodingError.dataCorruptedError(forKey: .plan, in: container, debugDescription: problem.reason)
            }
        case "stage":
            let stage = try container.decode(TranscodeStage.self, forKey: .stage)
            if let problem = stage.problem { throw DecodingError.dataCorruptedError(forKey: .stage, in: container, debugDescription: problem) }
            self = .stage(stage)
        case "failed":
            let code = try container.decode(Int32.self, forKey: .status)
            guard let status = TranscodeExit(rawValue: code) else {
                throw DecodingError.dataCorruptedError(forKey: .status, in: container, debugDescription: "no exit status \(code)")
            }
            self = .failed(reason: try container.decode(String.self, forKey: .reason), status: status)
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown event type '\(type)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .progress(let progress):
            try container.encode("progress", forKey: .type)
            try progress.encode(to: encoder)
        case .stored(let file):
            try container.encode("stored", forKey: .type)
            try container.encode(file, forKey: .file)
        case .playable:
            try container.encode("playable", forKey: .type)
        case .finished(let summary):
            try container.encode("done", forKey: .type)
            try container.encode(summary, forKey: .summary)
        case .split(let plan):
            try container.encode("split", forKey: .type)
            try container.encode(plan, forKey: .plan)
        case .stage(let stage):
            try container.encode("stage", forKey: .type)
            try container.encode(stage, forKey: .stage)
        case .failed(let reason, let status):
            try container.encode("failed", forKey: .type)
            try container.encode(reason, forKey: .reason)
            try container.encode(status.rawValue, forKey: .status)
        }
    }
}
