import Foundation
import Store
import Testing

/// A split transcode's plan and its parts' manifests come from children the worker does not trust:
/// each is checked before a playlist is built from it, and the error names what is wrong.
@Suite("split plans and part manifests: what a child says is checked")
struct SplitRecordsTests {
    static func segment(_ index: Int, file: String? = nil, duration: Double = 2, key: String = String(repeating: "a", count: 32), iv: String = String(repeating: "0", count: 32)) -> PartManifest.Segment {
        PartManifest.Segment(index: index, file: file ?? String(format: "%05d.ts", index), duration: duration, size: 1880, key: key, iv: iv)
    }

    static func manifest(_ segments: [PartManifest.Segment], name: String = "360p", codecs: [String] = ["avc1.4d401f"]) -> PartManifest {
        PartManifest(renditions: [.init(name: name, width: 640, height: 360, codecs: codecs, frameRate: 30, segments: segments)], frames: 60, poster: nil, warnings: [])
    }

    @Test("a well-formed manifest survives its JSON and is accepted")
    func goodManifest() throws {
        let good = Self.manifest([Self.segment(6), Self.segment(7)])
        #expect(try PartManifest.parse(good.json()).get() == good)
    }

    @Test("a hostile manifest is refused, naming the field", arguments: [
        (manifest([segment(0, file: "../../etc/passwd")]), "is not a plain .ts name"),
        (manifest([segment(0, file: ".hidden.ts")]), "is not a plain .ts name"),
        (manifest([segment(0), segment(2)]), "indexes are not contiguous"),
        (manifest([segment(0, duration: .nan)]), "duration nan"),
        (manifest([segment(0, duration: -1)]), "duration -1"),
        (manifest([segment(0, key: "k0")]), "is not 32 hex digits"),
        (manifest([segment(0, iv: "zz")]), "IV is not 32 hex digits"),
        (manifest([segment(0)], name: "360p/../x"), "is not a plain, unique name"),
        (manifest([segment(0)], codecs: ["avc1\",URI=\"x"]), "are not plain codec names"),
        (manifest([]), "has 0 segments"),
        (manifest([segment(Int.max), segment(0)]), "index out of"),
        (manifest([segment(3), segment(Int.min)]), "index out of"),
    ])
    func hostileManifest(_ manifest: PartManifest, reason: String) {
        guard case .failure(let error) = manifest.validated() else {
            Issue.record("accepted: \(manifest)")
            return
        }
        #expect(error.reason.contains(reason), "\(error.reason)")
    }

    @Test("a storyboard cue must name a sheet under storyboard/ and a span of seconds")
    func storyboardCues() {
        func problem(_ cue: StoryboardIndex.Cue) -> String? {
            var manifest = Self.manifest([Self.segment(0)])
            manifest.storyboard = [cue]
            if case .failure(let error) = manifest.validated() { return error.reason }
            return nil
        }
        #expect(problem(.init(start: 0, end: 1, sheet: "storyboard/p0-000.jpg", x: 0, y: 0, width: 160, height: 90)) == nil)
        #expect(problem(.init(start: 0, end: 1, sheet: "storyboard/../../keys/x.jpg", x: 0, y: 0, width: 160, height: 90))?.contains("is not storyboard/") == true)
        #expect(problem(.init(start: 0, end: 1, sheet: "keys/x.key", x: 0, y: 0, width: 160, height: 90))?.contains("is not storyboard/") == true)
        #expect(problem(.init(start: 2, end: 1, sheet: "storyboard/a.jpg", x: 0, y: 0, width: 160, height: 90))?.contains("span of seconds") == true)
        #expect(problem(.init(start: 0, end: 1, sheet: "storyboard/a.jpg", x: -1, y: 0, width: 160, height: 90))?.contains("out of range") == true)
    }

    @Test("bytes that are not a manifest are refused")
    func notAManifest() {
        for text in ["", "{", "[]", "{\"renditions\": 3}", String(repeating: "[", count: 10_000)] {
            #expect(throws: PartManifestError.self) { try PartManifest.parse(text).get() }
        }
    }

    @Test("a plan must cover the source in order, without gap or overlap", arguments: [
        ([SplitPlan.Chunk(start: 0, end: 60), .init(start: 60, end: nil)], nil),
        ([SplitPlan.Chunk(start: 0, end: nil)], "has 1 chunks"),
        ([SplitPlan.Chunk(start: 1, end: 60), .init(start: 60, end: nil)], "starts at 1.0 s, not 0"),
        ([SplitPlan.Chunk(start: 0, end: 60), .init(start: 61, end: nil)], "does not end where chunk 1 starts"),
        ([SplitPlan.Chunk(start: 0, end: 60), .init(start: 60, end: 90)], "must run to the source's end"),
        ([SplitPlan.Chunk(start: 0, end: .infinity), .init(start: .infinity, end: nil)], "does not end where"),
        ([SplitPlan.Chunk(start: 0, end: 1e300), .init(start: 1e300, end: nil)], "chunk 1 starts at"),
    ] as [([SplitPlan.Chunk], String?)])
    func planChecks(_ chunks: [SplitPlan.Chunk], problem: String?) {
        let result = SplitPlan(duration: 100, chunks: chunks, audio: true, posterTime: 10).validated()
        switch (result, problem) {
        case (.success, nil): break
        case (.failure(let error), let expected?): #expect(error.reason.contains(expected), "\(error.reason)")
        default: Issue.record("\(chunks): \(result), expected \(problem ?? "success")")
        }
    }
}
