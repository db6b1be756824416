import Foundation
import TestSupport
import Testing

/// What `fixtures/fixtures.json` says of a good clip (written by fixtures/generate.sh from ffprobe).
struct FixtureFacts: Decodable, Sendable, CustomTestStringConvertible {
    var file: String
    var video: Bool
    var audio: Bool
    var frames: Int?
    var duration: Double
    var width: Int?
    var height: Int?
    var rotation: Int?

    var testDescription: String { file }
    var path: String { packageRoot.appendingPathComponent("fixtures").appendingPathComponent(file).path }

    static let all: [FixtureFacts] = {
        let url = packageRoot.appendingPathComponent("fixtures/fixtures.json")
        guard let data = try? Data(contentsOf: url),
              let facts = try? JSONDecoder().decode([FixtureFacts].self, from: data)
        else { return [] }
        return facts
    }()
}

/// The `--json` summary printed by `streamgate transcode`.
struct Summary: Decodable {
    struct Rendition: Decodable {
        var name: String
        var width: Int?
        var height: Int?
        var codecs: [String]
        var bandwidth: Int
        var segments: Int
    }

    var asset_id: String
    var duration: Double
    var segments: Int
    var renditions: [Rendition]
}

/// What ffprobe decoded from a playlist over HTTP.
struct Probe {
    var videoFrames: Int?
    var hasAudio: Bool
    var width: Int?
    var height: Int?
    var duration: Double

    /// Decodes every frame of `url` with ffprobe, the way a player fetches it (playlist, key,
    /// segments over HTTP).
    init(url: String) async throws {
        let output = try await run("/usr/bin/ffprobe", [
            "-v", "error", "-count_frames",
            "-show_entries", "stream=codec_type,nb_read_frames,width,height:format=duration",
            "-of", "json", url,
        ])
        guard output.status == 0 else { throw TestFailure("ffprobe \(url) failed: \(output.stderr)") }
        struct Stream: Decodable { var codec_type: String; var nb_read_frames: String?; var width: Int?; var height: Int? }
        struct Format: Decodable { var duration: String? }
        struct Result: Decodable { var streams: [Stream]; var format: Format }
        let result = try JSONDecoder().decode(Result.self, from: output.stdoutData)
        let video = result.streams.first { $0.codec_type == "video" }
        videoFrames = video?.nb_read_frames.flatMap(Int.init)
        width = video?.width
        height = video?.height
        hasAudio = result.streams.contains { $0.codec_type == "audio" }
        duration = result.format.duration.flatMap(Double.init) ?? 0
    }
}

@Suite("transcode → serve → play, for every good fixture")
struct TranscodeEndToEndTests {
    @Test("fixtures are present", .tags(.endToEnd))
    func fixturesPresent() {
        #expect(FixtureFacts.all.count >= 10, "fixtures/fixtures.json lists the good clips")
    }

    @Test("plays every rendition with the source's frames, duration and audio", .tags(.endToEnd), arguments: FixtureFacts.all)
    func playsEveryRendition(fixture: FixtureFacts) async throws {
        let folder = try TemporaryFolder()
        let store = folder.url.appendingPathComponent("store").path
        let assetID = "fx-" + URL(fileURLWithPath: fixture.file).deletingPathExtension().lastPathComponent.replacingOccurrences(of: "_", with: "-")
        let transcode = try await run(streamgateBinary, [
            "transcode", fixture.path, "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path,
            "--out", store, "--asset-id", assetID, "--json",
        ], environment: streamgateEnvironment())
        try #require(transcode.status == 0, "transcode failed: \(transcode.stderr)")
        let summary = try JSONDecoder().decode(Summary.self, from: transcode.stdoutData)
        #expect(summary.asset_id == assetID)
        #expect(!summary.renditions.isEmpty)

        try await withServe(store: store) { server in
            // The multivariant playlist names every rendition with honest attributes.
            let master = try await server.get("/v/\(assetID)/master.m3u8")
            #expect(master.status == 200)
            let masterText = String(decoding: master.body, as: UTF8.self)
            for rendition in summary.renditions {
                #expect(masterText.contains("\(rendition.name)/index.m3u8"))
                #expect(masterText.contains("BANDWIDTH=\(rendition.bandwidth)"))
            }

            for rendition in summary.renditions {
                let probe = try await Probe(url: "\(server.baseURL)/v/\(assetID)/\(rendition.name)/index.m3u8")
                #expect(abs(probe.duration - fixture.duration) <= 0.1 + 0.05,
                        "\(rendition.name): duration \(probe.duration) vs source \(fixture.duration)")
                #expect(probe.hasAudio == fixture.audio, "\(rendition.name): audio present iff the source has it")
                if fixture.video {
                    let frames = try #require(probe.videoFrames, "\(rendition.name) has video")
                    let expected = try #require(fixture.frames)
                    #expect(abs(frames - expected) <= 1, "\(rendition.name): \(frames) frames, source \(expected)")
                    #expect(probe.width == rendition.width && probe.height == rendition.height)
                    if let width = fixture.width, let height = fixture.height {
                        // Orientation kept: portrait stays portrait, rotated video is shown upright.
                        #expect((width > height) == ((probe.width ?? 0) > (probe.height ?? 0)) || width == height,
                                "\(rendition.name): \(probe.width ?? 0)x\(probe.height ?? 0) from \(width)x\(height)")
                        #expect((probe.width ?? 0) <= width + 1 && (probe.height ?? 0) <= height + 1, "never upscaled")
                    }
                    #expect(rendition.codecs.first?.hasPrefix("avc1.") == true)
                } else {
                    #expect(probe.videoFrames == nil)
                    #expect(rendition.codecs == ["mp4a.40.2"])
                }
            }

            // A player reading the multivariant playlist decodes every programme without an error.
            let play = try await run("/usr/bin/ffmpeg", [
                "-v", "error", "-xerror", "-i", "\(server.baseURL)/v/\(assetID)/master.m3u8", "-map", "0", "-f", "null", "-",
            ])
            #expect(play.status == 0, "ffmpeg playing master.m3u8: \(play.stderr)")
            #expect(play.stderr.isEmpty, "ffmpeg reported: \(play.stderr)")

            try await AtRest.verify(store: store, tempFolder: folder.path, server: server, assetID: assetID)
        }
    }
}

extension Tag {
    @Tag static var endToEnd: Self
}
