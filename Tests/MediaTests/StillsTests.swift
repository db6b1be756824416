import Foundation
import Profiles
import Store
import TestSupport
import Testing
import Vault
@testable import Media

/// The poster and the storyboard, from the frames the transcode decodes: real JPEGs FFmpeg reads,
/// the poster being the source's picture at its instant, and a WebVTT index whose every cue
/// names a tile inside a sheet.
@Suite("stills: poster and storyboard")
struct StillsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Transcodes `fixture` with the fast profile; the published version's folder and summary.
    static func transcode(_ fixture: String, posterTime: Double? = nil) async throws -> (String, TranscodeSummary, URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-stills-\(UUID().uuidString)")
        let store = try AssetStore(root: folder.path)
        let keyring = Keyring(current: try MasterKey(bytes: (0..<32).map { UInt8($0) }))
        let profile = try Profile.load(path: root.appendingPathComponent("profiles/fast.yaml").path)
        let asset = try AssetID("stills")
        let input = root.appendingPathComponent("fixtures/\(fixture)").path
        let summary = try await offPool {
            try Transcoder(store: store, keyring: keyring).transcode(input: .path(input), profile: profile, assetID: asset, posterTime: posterTime)
        }
        return (try #require(try store.publishedVersion(of: asset)).directory, summary, folder)
    }

    /// `width,height` of a picture, as ffprobe reads it.
    static func size(_ path: String) throws -> (Int, Int) {
        let output = try runTool("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", path])
        let parts = output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Int($0) }
        return (parts.first ?? 0, parts.last ?? 0)
    }

    static func runTool(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test("the poster is the source's picture at the chosen instant, the storyboard tiles every second of it")
    func posterAndStoryboard() async throws {
        let (version, summary, folder) = try await Self.transcode("good/basic.mp4", posterTime: 2.5)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(summary.poster == "poster.jpg" && summary.storyboard == "storyboard.vtt")
        let manifest = try JSONDecoder().decode(TranscodeSummary.self, from: Data(contentsOf: URL(fileURLWithPath: version + "/asset.json")))
        #expect(manifest.poster == "poster.jpg" && manifest.storyboard == "storyboard.vtt", "asset.json lists them")

        let poster = version + "/poster.jpg"
        #expect(try Self.size(poster) == (640, 360), "never larger than the source")
        // The source's own frame at 2.5 s, decoded by ffmpeg, against the poster: the same picture.
        let reference = folder.path + "/reference.png"
        _ = try Self.runTool("/usr/bin/ffmpeg", ["-v", "error", "-y", "-ss", "2.5", "-i", Self.root.appendingPathComponent("fixtures/good/basic.mp4").path, "-frames:v", "1", reference])
        let psnr = try Self.runTool("/usr/bin/ffmpeg", ["-v", "info", "-i", poster, "-i", reference, "-lavfi", "psnr", "-f", "null", "-"])
        let average = psnr.range(of: #"average:([0-9.]+|inf)"#, options: .regularExpression).map { String(psnr[$0].dropFirst(8)) }
        #expect((average == "inf") || (Double(average ?? "0") ?? 0) > 30, "the poster is the frame at 2.5 s: \(psnr.suffix(300))")
        let early = folder.path + "/early.png"
        _ = try Self.runTool("/usr/bin/ffmpeg", ["-v", "error", "-y", "-ss", "0.5", "-i", Self.root.appendingPathComponent("fixtures/good/basic.mp4").path, "-frames:v", "1", early])
        let other = try Self.runTool("/usr/bin/ffmpeg", ["-v", "info", "-i", poster, "-i", early, "-lavfi", "psnr", "-f", "null", "-"])
        let otherAverage = other.range(of: #"average:([0-9.]+|inf)"#, options: .regularExpression).map { Double(String(other[$0].dropFirst(8))) ?? 0 } ?? 0
        #expect(otherAverage < (Double(average ?? "0") ?? 100), "and not just any frame")

        // The index: 5 s at one thumbnail a second, each cue inside its sheet.
        let vtt = try String(contentsOfFile: version + "/storyboard.vtt", encoding: .utf8)
        #expect(vtt.hasPrefix("WEBVTT\n"))
        let cues = vtt.split(separator: "\n").filter { $0.contains("#xywh=") }
        #expect(cues.count == 5, "\(vtt)")
        #expect(vtt.contains("00:00:00.000 --> 00:00:01.000\nstoryboard/000.jpg#xywh=0,0,160,90\n"), "\(vtt)")
        let (sheetWidth, sheetHeight) = try Self.size(version + "/storyboard/000.jpg")
        for cue in cues {
            let numbers = cue.split(separator: "=").last!.split(separator: ",").compactMap { Int($0) }
            #expect(numbers.count == 4 && numbers[0] + numbers[2] <= sheetWidth && numbers[1] + numbers[3] <= sheetHeight, "\(cue) in \(sheetWidth)x\(sheetHeight)")
        }
        #expect(sheetWidth == 1600 && sheetHeight == 90, "one row of 10 tiles holds 5")
    }

    @Test("a rotated source's stills are upright; a portrait source's are portrait; no video, no stills", arguments: [
        ("good/rotated.mp4", 360, 640), ("good/portrait.mp4", 360, 640), ("good/audio_only.m4a", 0, 0),
    ])
    func orientation(_ fixture: String, _ width: Int, _ height: Int) async throws {
        let (version, summary, folder) = try await Self.transcode(fixture)
        defer { try? FileManager.default.removeItem(at: folder) }
        guard width > 0 else {
            #expect(summary.poster == nil && summary.storyboard == nil)
            #expect(!FileManager.default.fileExists(atPath: version + "/poster.jpg"))
            return
        }
        #expect(try Self.size(version + "/poster.jpg") == (width, height))
        #expect(try String(contentsOfFile: version + "/storyboard.vtt", encoding: .utf8).contains("#xywh=0,0,90,160"))
    }
}
