import Foundation
import TestSupport
import Testing

/// Media input is data, never a program: files that name other files or URLs are refused before
/// anything they name is opened, and what a file declares is capped. Each test is named after what
/// it prevents.
@Suite("hostile input: refused by what it is, nothing opened, nothing published")
struct HostileInputTests {
    static func transcode(_ input: String, extra: [String] = []) async throws -> (output: ProcessOutput, store: String, folder: TemporaryFolder) {
        let folder = try TemporaryFolder()
        let store = folder.path + "/store"
        let output = try await run(streamgateBinary, [
            "transcode", input, "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path,
            "--out", store, "--asset-id", "hostile",
        ] + extra, environment: streamgateEnvironment())
        return (output, store, folder)
    }

    @Test("playlists, manifests and lists of files are refused: nothing they name is read or connected to", .tags(.endToEnd))
    func inputCannotReadFilesOrProbeTheNetwork() async throws {
        let listener = try LoopbackListener()
        let folder = try TemporaryFolder()
        let secret = folder.path + "/secret.ts"
        try Data("not for the uploader".utf8).write(to: URL(fileURLWithPath: secret))
        let basic = packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path
        let url = "http://127.0.0.1:\(listener.port)/x.ts"
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:\(secret)\n#EXTINF:10,\n\(url)\n#EXT-X-ENDLIST\n"
        let dataURI = "data:application/vnd.apple.mpegurl;base64," + Data(media.utf8).base64EncodedString()
        let files: [(name: String, text: String, format: String)] = [
            ("media.m3u8", media, "'hls'"),
            ("master.mp4", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n\(dataURI)\n", "'hls'"),
            ("list.ffconcat", "ffconcat version 1.0\nfile \(basic)\nfile \(url)\n", "'concat'"),
            ("manifest.mpd", """
            <?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT5S">\
            <Period><AdaptationSet><Representation id="1" bandwidth="1"><BaseURL>\(url)</BaseURL></Representation>\
            </AdaptationSet></Period></MPD>
            """, "'dash'"),
            ("session.sdp", "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video \(listener.port) RTP/AVP 96\n", "sdp"),
        ]
        for file in files {
            let path = folder.path + "/" + file.name
            try Data(file.text.utf8).write(to: URL(fileURLWithPath: path))
            let (output, store, _) = try await Self.transcode(path)
            #expect(output.status == 65, "\(file.name): \(output.stderr)")
            #expect(output.stderr.split(separator: "\n").count == 1, "\(file.name): one line: \(output.stderr)")
            #expect(output.stderr.contains(path), "\(file.name) names the file: \(output.stderr)")
            #expect(output.stderr.contains("not accepted") || output.stderr.contains("not a media file"), "\(file.name): \(output.stderr)")
            try expectNothingPublished(store: store)
        }
        #expect(listener.acceptPending() == 0, "an input made the transcode connect to a local port")
    }

    @Test("a source reached through a symbolic link is refused when a worker hands it over (the link may be planted later)", .tags(.endToEnd))
    func sourceCannotEscapeByLink() async throws {
        let folder = try TemporaryFolder()
        let link = folder.path + "/clip.mp4"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path)
        // A worker's child: the keyring on standard input, the path taken as given.
        let keyring = "STREAMGATE_MASTER_KEY=\(testMasterKey)\n"
        let output = try await run(streamgateBinary, [
            "transcode", link, "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path,
            "--out", folder.path + "/store", "--keyring-stdin", "--quiet",
        ], environment: [:], stdin: Data(keyring.utf8))
        #expect(output.status == 65, "\(output.stderr)")
        #expect(output.stderr.contains("symbolic link"), "\(output.stderr)")
        try expectNothingPublished(store: folder.path + "/store")
    }

    @Test("what a file declares is capped: pictures, duration, streams, output bytes", .tags(.endToEnd), arguments: [
        (["--max-pixels", "100000"], "pixels"),
        (["--max-duration", "2"], "at most 2 s"),
        (["--max-streams", "1"], "streams; at most 1 are accepted"),
        (["--max-output-bytes", "50000"], "exceed its limit of 50000 bytes"),
    ])
    func declaredWorkIsCapped(_ limit: [String], _ reason: String) async throws {
        let input = packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path
        let (output, store, _) = try await Self.transcode(input, extra: limit)
        #expect(output.status != 0)
        #expect(output.stderr.contains(reason), "\(limit): \(output.stderr)")
        #expect(output.stderr.split(separator: "\n").count == 1, "\(output.stderr)")
        try expectNothingPublished(store: store)
    }
}
