import Foundation
import Profiles
import Store
import TestSupport
import Testing
import Vault
@testable import Media

/// Uploads sealed with `SealedSourceWriter` are transcoded through the decrypting AVIO exactly as the
/// plain file is, whichever end of the MP4 its index (moov) is at; a tampered upload fails with the
/// chunk that does not authenticate and publishes nothing.
@Suite("sealed sources: transcoded through a decrypting AVIO")
struct SealedSourceTranscodeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let basic = root.appendingPathComponent("fixtures/good/basic.mp4").path

    let folder: URL
    let keyring: Keyring
    let profile: Profile

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-sealed-media-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        keyring = Keyring(current: try MasterKey(bytes: (0..<32).map { UInt8($0) }))
        profile = try Profile.load(path: Self.root.appendingPathComponent("profiles/fast.yaml").path)
    }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// Seals `source` into `name` in pieces of an odd size, as an HTTP body would arrive.
    func seal(_ source: String, to name: String, chunkSize: Int = SealedSource.defaultChunkSize) throws -> String {
        let target = path(name)
        let plaintext = Array(try Data(contentsOf: URL(fileURLWithPath: source)))
        let writer = try SealedSourceWriter(path: target, keyring: keyring, uploadID: "upload-\(name)", chunkSize: chunkSize)
        for start in stride(from: 0, to: plaintext.count, by: 10_007) {
            try writer.append(Array(plaintext[start..<min(plaintext.count, start + 10_007)]))
        }
        try writer.finish()
        return target
    }

    /// A copy of basic.mp4 remuxed by ffmpeg with or without faststart.
    func remux(faststart: Bool) async throws -> String {
        let output = path(faststart ? "faststart.mp4" : "moov-last.mp4")
        let status = try await offPool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
            process.arguments = ["-v", "error", "-y", "-i", Self.basic, "-c", "copy", "-movflags", faststart ? "+faststart" : "-faststart", output]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(status == 0)
        return output
    }

    /// The MP4's top-level box types in file order.
    func topLevelBoxes(_ file: String) throws -> [String] {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        var boxes: [String] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            var size = bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
            boxes.append(String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self))
            if size == 1, offset + 16 <= bytes.count { size = bytes[(offset + 8)..<(offset + 16)].reduce(0) { $0 << 8 | Int($1) } }
            if size == 0 { break }
            offset += size
        }
        return boxes
    }

    /// A transcode, on a thread of its own (see `offPool`).
    func transcode(_ input: String, store: AssetStore, asset: String, keyring: Keyring? = nil) async throws -> TranscodeSummary {
        let keyring = keyring ?? self.keyring, profile = self.profile
        return try await offPool {
            try Transcoder(store: store, keyring: keyring).transcode(input: .path(input), profile: profile, assetID: try AssetID(asset))
        }
    }

    @Test("moov first or last, a sealed upload transcodes like the plain file")
    func sealedMatchesPlain() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let moovLast = try await remux(faststart: false)
        let faststart = try await remux(faststart: true)
        let moovLastBoxes = try topLevelBoxes(moovLast), faststartBoxes = try topLevelBoxes(faststart)
        #expect(moovLastBoxes.firstIndex(of: "mdat")! < moovLastBoxes.firstIndex(of: "moov")!, "\(moovLastBoxes)")
        #expect(faststartBoxes.firstIndex(of: "moov")! < faststartBoxes.firstIndex(of: "mdat")!, "\(faststartBoxes)")

        let store = try AssetStore(root: path("store"))
        let plain = try await transcode(Self.basic, store: store, asset: "plain")
        #expect(!plain.renditions.isEmpty)

        // 64 KiB chunks: the clip spans several, so probing, seeking to the index and reading
        // samples all cross chunk boundaries.
        let cases = [
            ("basic", try seal(Self.basic, to: "basic.sgsrc")),
            ("moov-last", try seal(moovLast, to: "moov-last.sgsrc", chunkSize: 64 * 1024)),
            ("faststart", try seal(faststart, to: "faststart.sgsrc", chunkSize: 64 * 1024)),
        ]
        for (name, sealed) in cases {
            #expect(SealedSource.isSealed(path: sealed))
            let summary = try await transcode(sealed, store: store, asset: "sealed-\(name)")
            #expect(summary.renditions.map(\.name) == plain.renditions.map(\.name), "\(name)")
            #expect(summary.renditions.map(\.segments) == plain.renditions.map(\.segments), "\(name)")
            #expect(summary.renditions.map(\.width) == plain.renditions.map(\.width), "\(name)")
            #expect(summary.segments == plain.segments, "\(name)")
            #expect(abs(summary.durationSeconds - plain.durationSeconds) <= 0.05, "\(name): \(summary.durationSeconds) vs \(plain.durationSeconds)")
            let published = try #require(try store.publishedVersion(of: try AssetID("sealed-\(name)")))
            #expect(FileManager.default.fileExists(atPath: "\(published.directory)/master.m3u8"))
        }
    }

    @Test("bytes given rather than a path (a source channel's): the same transcode, sealed or not decided by the bytes alone")
    func givenBytes() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try AssetStore(root: path("store"))
        let plain = try await transcode(Self.basic, store: store, asset: "plain")
        let sealed = try seal(Self.basic, to: "upload.sgsrc", chunkSize: 64 * 1024)
        let keyring = self.keyring, profile = self.profile
        // Names that say nothing true about the bytes: only messages use them.
        for (file, name) in [(Self.basic, "s3://bucket/basic.sealed"), (sealed, "s3://bucket/upload.mp4")] {
            let summary = try await offPool {
                try Transcoder(store: store, keyring: keyring).transcode(
                    input: .bytes(try RandomAccessFile(path: file), name: name), profile: profile, assetID: try AssetID("given")
                )
            }
            #expect(summary.segments == plain.segments && summary.renditions.map(\.segments) == plain.renditions.map(\.segments), "\(name)")
        }
        let empty = path("empty.mp4")
        FileManager.default.createFile(atPath: empty, contents: Data())
        do {
            _ = try await offPool {
                try Transcoder(store: store, keyring: keyring).transcode(
                    input: .bytes(try RandomAccessFile(path: empty), name: "s3://bucket/empty.mp4"), profile: profile, assetID: try AssetID("empty")
                )
            }
            Issue.record("an empty source transcoded")
        } catch let error as TranscodeError {
            #expect(error.description == "s3://bucket/empty.mp4: file is empty (0 bytes)")
        }
    }

    @Test("a tampered chunk fails the transcode naming the chunk, and nothing is published",
          arguments: [(0, "at open: probing"), (2, "while demuxing"), (4, "the final chunk, holding the moov")])
    func tampered(chunk: Int, when: String) async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let chunkSize = 64 * 1024
        let sealed = try seal(Self.basic, to: "tampered.sgsrc", chunkSize: chunkSize)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: sealed)))
        let header = SealedSource.headerLength(uploadIDLength: "upload-tampered.sgsrc".utf8.count)
        // basic.mp4 is 273 532 bytes: four full chunks and a final one.
        #expect(bytes.count == SealedSource.sealedSize(plaintextSize: 273_532, chunkSize: chunkSize, uploadIDLength: 21))
        bytes[header + chunk * (chunkSize + 16) + 1000] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: sealed))

        let store = try AssetStore(root: path("store"))
        let asset = try AssetID("tampered")
        do {
            _ = try await transcode(sealed, store: store, asset: asset.rawValue)
            Issue.record("a tampered upload transcoded (\(when))")
        } catch let error as TranscodeError {
            #expect(error.file == sealed)
            #expect(error.reason.contains("chunk \(chunk) ") && error.reason.contains("does not authenticate"), "\(when): \(error.reason)")
        }
        #expect(try store.publishedVersion(of: asset) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: path("store/staging")).isEmpty)
    }

    @Test("an empty upload, a missing master key and a missing keyring are clear errors")
    func unusableUploads() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try AssetStore(root: path("store"))
        let empty = path("empty.sgsrc")
        try SealedSourceWriter(path: empty, keyring: keyring, uploadID: "empty").finish()
        do {
            _ = try await transcode(empty, store: store, asset: "empty")
            Issue.record("an empty upload transcoded")
        } catch let error as TranscodeError {
            #expect(error.reason == "file is empty (0 bytes once decrypted)")
        }

        let sealed = try seal(Self.basic, to: "basic.sgsrc")
        let stranger = try MasterKey(bytes: [UInt8](repeating: 9, count: 32))
        do {
            _ = try await transcode(sealed, store: store, asset: "wrong-key", keyring: Keyring(current: stranger))
            Issue.record("a sealed upload transcoded without its master key")
        } catch let error as TranscodeError {
            #expect(error.reason.contains("master key \(keyring.current.id), which is not in the keyring"), "\(error.reason)")
        }
        #expect(throws: MediaError.self) { _ = try InputFile(path: sealed) }
    }
}
