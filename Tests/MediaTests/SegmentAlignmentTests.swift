import Foundation
import HLS
import Profiles
import Store
import TestSupport
import Testing
import Vault
@testable import Media

/// Decrypts each published segment in memory and hands it to ffprobe on a pipe: every segment of
/// every rung starts with a key frame, at the same timestamp on every rung, and decodes on its own.
@Suite("segments: IDR-aligned across rungs, independently decodable")
struct SegmentAlignmentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct FirstFrame: Equatable, Sendable { var pts: String; var keyFrame: Bool }

    @Test("aligned IDR boundaries", arguments: ["good/basic.mp4", "good/vfr.mkv", "good/long_gop.mp4", "good/rotated.mp4"])
    func aligned(fixture: String) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-align-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try AssetStore(root: folder.path)
        let keyring = Keyring(current: try MasterKey(bytes: (0..<32).map { UInt8($0) }))
        let profile = try Profile.load(path: Self.root.appendingPathComponent("profiles/fast.yaml").path)
        let asset = try AssetID("align")
        let input = Self.root.appendingPathComponent("fixtures").appendingPathComponent(fixture).path
        let summary = try await offPool {
            try Transcoder(store: store, keyring: keyring).transcode(input: .path(input), profile: profile, assetID: asset)
        }
        let published = try #require(try store.publishedVersion(of: asset))
        #expect(!summary.renditions.isEmpty)

        var firstFrames: [String: [FirstFrame]] = [:]
        for rendition in summary.renditions {
            let playlist = try MediaPlaylist.parse(
                String(contentsOfFile: "\(published.directory)/\(rendition.name)/index.m3u8", encoding: .utf8)
            )
            #expect(playlist.segments.count == rendition.segments)
            #expect(playlist.segments.count >= 2, "a clip longer than one segment is cut")
            for (index, segment) in playlist.segments.enumerated() {
                let key = try #require(segment.key)
                let keyID = try #require(key.uri?.split(separator: "/").last.map(String.init))
                let wrapped = try WrappedKey(serialized: Array(try Data(contentsOf: URL(fileURLWithPath: "\(published.directory)/keys/\(keyID).key"))))
                let contentKey = try keyring.unwrap(wrapped, context: asset.rawValue)
                let ciphertext = Array(try Data(contentsOf: URL(fileURLWithPath: "\(published.directory)/\(rendition.name)/\(segment.uri)")))
                let plaintext = try AES128CBC.decrypt(ciphertext, key: contentKey.bytes, iv: try #require(key.iv))
                #expect(plaintext.count % 188 == 0 && plaintext.first == 0x47, "segment \(index) is whole TS packets")
                let frame = try await offPool { try Self.firstVideoFrame(of: plaintext) }
                #expect(frame.keyFrame, "\(rendition.name) segment \(index) starts with a key frame")
                firstFrames[rendition.name, default: []].append(frame)
            }
        }
        let rungs = Array(firstFrames.values)
        #expect(rungs.allSatisfy { $0 == rungs[0] }, "every rung cuts at the same instants: \(firstFrames)")
    }

    /// The first decoded video frame of a TS segment, decoded alone from stdin.
    static func firstVideoFrame(of segment: [UInt8]) throws -> FirstFrame {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
        process.arguments = [
            "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts,key_frame",
            "-read_intervals", "%+#1", "-of", "csv=p=0", "-i", "pipe:0",
        ]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let writer = Thread {
            try? input.fileHandleForWriting.write(contentsOf: Data(segment))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
        let fields = line.split(separator: ",").map(String.init)
        guard fields.count >= 2 else { throw SegmentProbeError(output: line) }
        // csv order follows ffprobe's field order: key_frame, pts.
        return FirstFrame(pts: fields[1], keyFrame: fields[0] == "1")
    }

    struct SegmentProbeError: Error { var output: String }
}
