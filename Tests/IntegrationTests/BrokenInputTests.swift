import Foundation
import Testing

/// A broken input and what its one-line error must say.
struct BrokenCase: Sendable, CustomTestStringConvertible {
    var file: String
    var reason: String
    var testDescription: String { file }
}

@Suite("bad input: a clear error, a non-zero exit, nothing published")
struct BrokenInputTests {
    static let cases: [BrokenCase] = [
        BrokenCase(file: "bad/empty.mp4", reason: "file is empty"),
        BrokenCase(file: "bad/truncated.mp4", reason: "moov atom not found"),
        BrokenCase(file: "bad/random.mp4", reason: "not a media file FFmpeg can read"),
        BrokenCase(file: "bad/notes.txt", reason: "not a media file FFmpeg can read"),
        BrokenCase(file: "bad/no_streams.mkv", reason: "no decodable video or audio stream (streams: subtitle (subrip))"),
        BrokenCase(file: "bad/does-not-exist.mp4", reason: "no such file or directory"),
    ]

    @Test("each broken fixture fails cleanly", .tags(.endToEnd), arguments: cases)
    func brokenFixture(_ broken: BrokenCase) async throws {
        let folder = try TemporaryFolder()
        let store = folder.url.appendingPathComponent("store").path
        let input = packageRoot.appendingPathComponent("fixtures").appendingPathComponent(broken.file).path
        let result = try await run(streamgateBinary, [
            "transcode", input, "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path,
            "--out", store, "--asset-id", "broken",
        ], environment: streamgateEnvironment())
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "one line, got: \(result.stderr)")
        #expect(result.stderr.contains(input), "names the file: \(result.stderr)")
        #expect(result.stderr.contains(broken.reason), "says why: \(result.stderr)")
        try expectNothingPublished(store: store)
    }

    @Test("a missing master key is refused before any work", .tags(.endToEnd))
    func missingMasterKey() async throws {
        let folder = try TemporaryFolder()
        let store = folder.url.appendingPathComponent("store").path
        let result = try await run(streamgateBinary, [
            "transcode", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, "--out", store,
            "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path,
        ], environment: streamgateEnvironment(masterKey: nil))
        #expect(result.status != 0)
        #expect(result.stderr.contains("STREAMGATE_MASTER_KEY"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: store + "/assets"), "nothing created")
    }

    @Test("a malformed master key is refused", .tags(.endToEnd), arguments: [
        ("not base64 at all!", "not valid base64"),
        (Data(repeating: 1, count: 31).base64EncodedString(), "31 bytes"),
    ])
    func malformedMasterKey(key: String, reason: String) async throws {
        let folder = try TemporaryFolder()
        let result = try await run(streamgateBinary, [
            "transcode", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path,
            "--out", folder.path + "/store", "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path,
        ], environment: streamgateEnvironment(masterKey: key))
        #expect(result.status != 0)
        #expect(result.stderr.contains("STREAMGATE_MASTER_KEY"), "\(result.stderr)")
        #expect(result.stderr.contains(reason), "\(result.stderr)")
    }

    @Test("an unwritable store is refused", .tags(.endToEnd))
    func unwritableStore() async throws {
        let folder = try TemporaryFolder()
        // Tests run as root, which permission bits do not stop: a store below a regular file cannot exist.
        let blocker = folder.url.appendingPathComponent("a-file").path
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        let store = blocker + "/store"
        let result = try await run(streamgateBinary, [
            "transcode", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, "--out", store,
            "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path,
        ], environment: streamgateEnvironment())
        #expect(result.status != 0)
        #expect(result.stderr.contains(blocker), "names the path: \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test("a bad profile names its line", .tags(.endToEnd))
    func badProfile() async throws {
        let folder = try TemporaryFolder()
        let profile = folder.url.appendingPathComponent("bad.yaml").path
        try """
        name: bad
        segment_duration: 6
        keyframe_interval: 2
        rungs:
          - name: 720p
            width: 1280
            height: 720
            bitrate: -3000k
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        let result = try await run(streamgateBinary, [
            "transcode", packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path,
            "--out", folder.path + "/store", "--profile", profile,
        ], environment: streamgateEnvironment())
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(profile):8:"), "names the line: \(result.stderr)")
        #expect(result.stderr.contains("bitrate"), "\(result.stderr)")
    }

}
