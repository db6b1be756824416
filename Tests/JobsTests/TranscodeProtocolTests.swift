import Foundation
import Jobs
import Store
import Testing
import Processes

/// The worker and its transcode child speak only through ``TranscodeEvent`` lines and
/// ``TranscodeExit`` statuses: every event survives the trip, a line that is not one is an error
/// naming it, and every status maps to its code and back.
@Suite("the transcode child's protocol: events and exit statuses")
struct TranscodeProtocolTests {
    static let summary = TranscodeSummary(
        assetID: "clip", version: "v20261123T171900Z-0123456789ab", profile: "fast", durationSeconds: 5.005, segments: 6,
        wallSeconds: 0.81, renditions: [
            .init(name: "360p", width: 640, height: 360, codecs: ["avc1.42c01f", "mp4a.40.2"], bandwidth: 1_125_056,
                  averageBandwidth: 1_097_677, frameRate: 29.97, segments: 3, bytes: 686_048),
            .init(name: "audio", width: nil, height: nil, codecs: ["mp4a.40.2"], bandwidth: 130_000, averageBandwidth: 128_000,
                  frameRate: nil, segments: 3, bytes: 80_000),
        ], keys: 2, warnings: ["3 damaged packets were skipped"]
    )

    static let events: [TranscodeEvent] = [
        .progress(.init(frames: 150, fps: 187.5, speed: 6.25, processedSeconds: 5, percent: 99.9, etaSeconds: 0.02)),
        .progress(.init(frames: 0, fps: 0, speed: 0, processedSeconds: 0, percent: nil, etaSeconds: nil)),
        .stored("720p/seg_00001.ts"),
        .stored("keys/k0.key"),
        .finished(summary),
        .finished(TranscodeSummary(
            assetID: "a", version: nil, profile: "p", durationSeconds: 0, segments: 0, wallSeconds: 0, renditions: [], keys: 0, warnings: []
        )),
        .split(SplitPlan(duration: 300.5, chunks: [.init(start: 0, end: 60), .init(start: 60, end: nil)], audio: true, posterTime: 10)),
        .stage(TranscodeStage(name: .encode, rendition: "720p", startNanoseconds: 1_764_800_000_000_000_000, endNanoseconds: 1_764_800_002_500_000_000, busySeconds: 1.25, frames: 300)),
        .stage(TranscodeStage(name: .probe, startNanoseconds: 5, endNanoseconds: 5)),
    ] + TranscodeExit.allCases.map { .failed(reason: "/in/clip.mp4: \"quoted\"\nand a second line", status: $0) }

    @Test("every event survives encoding and decoding, as exactly one line", arguments: events)
    func roundTrip(_ event: TranscodeEvent) throws {
        let line = try event.line()
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(line.filter { $0 == UInt8(ascii: "\n") }.count == 1, "one line: \(String(decoding: line, as: UTF8.self))")
        let decoded = try TranscodeEvent(line: String(decoding: line.dropLast(), as: UTF8.self))
        #expect(decoded == event)
    }

    @Test("the lines a child of the previous release writes still decode")
    func previousReleaseLines() throws {
        let progress = #"{"eta_s":3.5,"fps":90,"frames":300,"percent":70,"processed_s":10,"speed":3,"type":"progress"}"#
        #expect(try TranscodeEvent(line: progress) == .progress(.init(
            frames: 300, fps: 90, speed: 3, processedSeconds: 10, percent: 70, etaSeconds: 3.5
        )))
        let done = #"{"summary":{"asset_id":"x","duration":5,"keys":1,"profile":"fast","renditions":[],"segments":3,"#
            + #""version":"v1","wall_time":0.5,"warnings":[]},"type":"done"}"#
        guard case .finished(let summary) = try TranscodeEvent(line: done) else {
            Issue.record("not a done event")
            return
        }
        #expect(summary.version == "v1" && summary.assetID == "x" && summary.segments == 3)
    }

    @Test("a line that is not an event is an error naming the line and what is wrong with it", arguments: [
        ("streamgate: oops", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (#"{"fps": 3}"#, "'type' is missing"),
        (#"{"type": "warning", "text": "x"}"#, "unknown event type 'warning'"),
        (#"{"type": "failed", "reason": "x", "status": 12}"#, "no exit status 12"),
        (#"{"type": "failed", "status": 65}"#, "'reason' is missing"),
        (#"{"type": "progress", "frames": 1, "fps": "fast", "speed": 1, "processed_s": 1}"#, "'fps' has the wrong type"),
        (#"{"type": "done"}"#, "'summary' is missing"),
        (#"{"type": "stored"}"#, "'file' is missing"),
        (#"{"type": "stored", "file": "../../etc/passwd"}"#, "'file': not a plain relative path"),
        (#"{"type": "stored", "file": "/etc/passwd"}"#, "'file': not a plain relative path"),
        (#"{"type": "split", "plan": {"duration": 100, "chunks": [{"start": 0, "end": 50}, {"start": 40}], "audio": true, "poster_time": 1}}"#,
         "'plan': chunk 0 does not end where chunk 1 starts"),
        (#"{"type": "split", "plan": {"duration": 100, "chunks": [{"start": 0}], "audio": true, "poster_time": 1}}"#, "has 1 chunks"),
        (#"{"type": "stage", "stage": {"name": "decode", "start_ns": 10, "end_ns": 9}}"#, "'end_ns' is before 'start_ns'"),
        (#"{"type": "stage", "stage": {"name": "encode", "rendition": "a b", "start_ns": 1, "end_ns": 2}}"#, "'rendition' must be 1-64 printable"),
        (#"{"type": "stage", "stage": {"name": "encode", "rendition": "", "start_ns": 1, "end_ns": 2}}"#, "'rendition' must be 1-64 printable"),
        (#"{"type": "stage", "stage": {"name": "mine", "start_ns": 1, "end_ns": 2}}"#, "'stage.name'"),
        (#"{"type": "stage", "stage": {"name": "seal", "start_ns": -1, "end_ns": 2}}"#, "'stage.start_ns'"),
        (#"{"type": "stage", "stage": {"name": "seal", "start_ns": 1, "end_ns": 2, "busy_s": -3}}"#, "'busy_s' must be 0 or more"),
        ("", "not JSON"),
    ])
    func malformedLine(_ line: String, _ why: String) {
        #expect {
            try TranscodeEvent(line: line)
        } throws: { error in
            guard let error = error as? TranscodeEventError else { return false }
            return error.line == line && error.reason.contains(why) && error.description.hasSuffix(": " + line)
        }
    }

    @Test("a very long bad line is named by its first 300 characters")
    func longMalformedLine() {
        let line = String(repeating: "x", count: 10_000)
        #expect {
            try TranscodeEvent(line: line)
        } throws: { error in
            (error as? TranscodeEventError)?.line == String(repeating: "x", count: 300)
        }
    }

    /// The codes `streamgate transcode` has exited with since before the enum (README, docs/jobs.md).
    static let codes: [(TranscodeExit, Int32)] = [
        (.succeeded, 0), (.internalFailure, 1), (.usage, 64), (.badInput, 65), (.outOfMemory, 71),
        (.storeUnavailable, 73), (.configuration, 78), (.cancelled, 130),
    ]

    @Test("each exit status maps to its code and back, from a child's exit too", arguments: codes)
    func exitStatusBothWays(_ status: TranscodeExit, _ code: Int32) {
        #expect(status.rawValue == code)
        #expect(TranscodeExit(rawValue: code) == status)
        #expect(TranscodeExit(Processes.ExitStatus.exited(code)) == status)
    }

    @Test("the table is complete, and a signal or an unknown code is no status")
    func unknownExits() {
        #expect(Set(Self.codes.map(\.0.rawValue)) == Set(TranscodeExit.allCases.map(\.rawValue)))
        for code: Int32 in [2, 69, 70, 137, 255] { #expect(TranscodeExit(Processes.ExitStatus.exited(code)) == nil, "\(code)") }
        for signal in [SIGKILL, SIGSEGV, SIGTERM, 65] { #expect(TranscodeExit(Processes.ExitStatus.signaled(signal)) == nil, "\(signal)") }
    }
}
