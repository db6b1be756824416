import Foundation
import FuzzHarnesses
import Testing

/// Every committed fuzz input, seeds and crashes alike, through its harness: a crash fixed once stays
/// fixed, and the seeds keep parsing as the harnesses expect. A harness that traps ends the test
/// process, so the failing input is named before it runs.
@Suite("fuzz corpus replay")
struct CorpusReplayTests {
    static let fuzzFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz")

    static func inputs(_ kind: String, _ harness: String) -> [URL] {
        let folder = fuzzFolder.appendingPathComponent(kind).appendingPathComponent(harness)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
    }

    @Test("every harness has seeds")
    func everyHarnessHasSeeds() {
        for harness in Harnesses.all {
            #expect(!Self.inputs("corpus", harness.name).isEmpty, "fuzz/corpus/\(harness.name)/ is empty")
        }
    }

    @Test("no corpus or crash folder without a harness")
    func noStrayFolders() throws {
        let names = Set(Harnesses.all.map(\.name))
        for kind in ["corpus", "crashes"] {
            let folder = Self.fuzzFolder.appendingPathComponent(kind)
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where !entry.hasPrefix(".") {
                #expect(names.contains(entry), "fuzz/\(kind)/\(entry) belongs to no harness")
            }
        }
    }

    @Test("seeds and crashes replay without a trap", arguments: Harnesses.all.map(\.name))
    func replay(_ name: String) throws {
        let harness = try #require(Harnesses.named(name))
        let files = Self.inputs("corpus", name) + Self.inputs("crashes", name)
        for file in files {
            // Printed first: if the harness traps, this is the last line of the test's output.
            print("fuzz replay: \(name) \(file.lastPathComponent)")
            harness(Array(try Data(contentsOf: file)))
        }
    }
}
