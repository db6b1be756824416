import Foundation
import NIOCore
import S3
import TestSupport
import Testing
@testable import Store

/// A version shown before it is whole (progressive publish), on both backends: what readers see
/// while it grows, when it becomes whole, and when its attempt fails.
@Suite("growing versions: folder and bucket", .serialized)
struct GrowingVersionTests {
    @Test("folder store: shown while it grows, whole at the end, withdrawn on failure, never over a published version")
    func folder() async throws {
        let root = NSTemporaryDirectory() + "sg-growing-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await Self.lifecycle(try AssetStore(root: root), spool: root + "/spool")
    }

    @Test("bucket store: the same, with the pointer saying the version grows")
    func bucket() async throws {
        try await withS3 { server in
            let spool = NSTemporaryDirectory() + "sg-growing-spool-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: spool) }
            try await Self.lifecycle(BucketStore(client: server.client(), bucket: server.bucket, prefix: "grow"), spool: spool)
        }
    }

    /// One version written as a transcode child would: files into the staging's folder (in a
    /// folder store, into the version's folder once it moved there), each reported stored.
    final class Writer {
        let staging: any VersionStaging
        var folder: String

        init(_ staging: any VersionStaging) {
            self.staging = staging
            folder = staging.folder
        }

        func put(_ relative: String, _ text: String) async throws {
            let path = folder + "/" + relative
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            try await staging.stored(relative)
        }

        /// Shows the version; in a folder store its files move to the version's folder.
        func show(_ storage: any AssetStorage, publisher: String) async throws -> PublishedVersion? {
            let shown = try await staging.show(requiredFiles: PublishedVersion.requiredFilesToShow, publisher: publisher)
            if let shown, storage is AssetStore { folder = shown.directory }
            return shown
        }
    }

    static func text(_ storage: any AssetStorage, _ relative: String, of version: PublishedVersion) async throws -> String? {
        try await storage.readBuffer(relative, of: version, maximumBytes: 1 << 20).map { String(buffer: $0) }
    }

    static func lifecycle(_ storage: any AssetStorage, spool: String) async throws {
        let asset = try AssetID("film")
        let writer = Writer(try await storage.stage(asset, heldBy: "job-1", spool: spool))
        try await writer.put("360p/00000.ts", "segment-0")
        try await writer.put("360p/index.m3u8", "#EXTM3U\n00000.ts\n")
        await #expect(throws: StoreError.self, "no multivariant playlist yet: not shown") {
            try await writer.staging.show(requiredFiles: PublishedVersion.requiredFilesToShow, publisher: "job-1")
        }
        try await writer.put("master.m3u8", "#EXTM3U\n360p/index.m3u8\n")
        let shown = try #require(try await writer.show(storage, publisher: "job-1"))
        #expect(shown.isGrowing)
        var versions = try await storage.versions(of: asset)
        #expect(versions.current == shown && versions.current?.isGrowing == true && versions.publisher == "job-1")
        #expect(try await text(storage, "360p/00000.ts", of: shown) == "segment-0")

        // It grows: a new segment, the playlist written again; readers see both at once.
        try await writer.put("360p/00001.ts", "segment-1")
        try await writer.put("360p/index.m3u8", "#EXTM3U\n00000.ts\n00001.ts\n")
        #expect(try await text(storage, "360p/index.m3u8", of: shown) == "#EXTM3U\n00000.ts\n00001.ts\n")
        #expect(try await text(storage, "360p/00001.ts", of: shown) == "segment-1")

        // Another job cannot show over it, nor over a whole version later.
        let rival = Writer(try await storage.stage(asset, heldBy: "job-2", spool: spool))
        try await rival.put("master.m3u8", "#EXTM3U\n")
        #expect(try await rival.show(storage, publisher: "job-2") == nil)
        await rival.staging.discard()

        try await writer.put("360p/index.m3u8", "#EXTM3U\n00000.ts\n00001.ts\n#EXT-X-ENDLIST\n")
        try await writer.put("asset.json", "{}")
        let whole = try await writer.staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: "job-1")
        #expect(whole.version == shown.version && !whole.isGrowing)
        versions = try await storage.versions(of: asset)
        #expect(versions.current == whole && versions.current?.isGrowing == false)
        #expect(try await text(storage, "360p/index.m3u8", of: whole)?.hasSuffix("#EXT-X-ENDLIST\n") == true)
        let late = Writer(try await storage.stage(asset, heldBy: "job-3", spool: spool))
        try await late.put("master.m3u8", "#EXTM3U\n")
        #expect(try await late.show(storage, publisher: "job-3") == nil, "a published asset is replaced only whole")
        await late.staging.discard()

        // A growth whose attempt fails is withdrawn: nothing of it is readable.
        let doomedAsset = try AssetID("doomed")
        let doomed = Writer(try await storage.stage(doomedAsset, heldBy: "job-4", spool: spool))
        try await doomed.put("master.m3u8", "#EXTM3U\n")
        let doomedVersion = try #require(try await doomed.show(storage, publisher: "job-4"))
        #expect(try await storage.versions(of: doomedAsset).current == doomedVersion)
        await doomed.staging.discard()
        #expect(try await storage.versions(of: doomedAsset) == .none)
        #expect(try await text(storage, "master.m3u8", of: doomedVersion) == nil)

        // A later attempt of the same job takes over its dead predecessor's growth.
        let retried = try AssetID("retried")
        let first = Writer(try await storage.stage(retried, heldBy: "job-5", spool: spool))
        try await first.put("master.m3u8", "#EXTM3U\nfirst\n")
        let firstShown = try #require(try await first.show(storage, publisher: "job-5"))
        let second = Writer(try await storage.stage(retried, heldBy: "job-5", spool: spool + "-second"))
        try await second.put("master.m3u8", "#EXTM3U\nsecond\n")
        let secondShown = try #require(try await second.show(storage, publisher: "job-5"))
        versions = try await storage.versions(of: retried)
        #expect(versions.current == secondShown && versions.readable[firstShown.version] == nil, "the dead attempt's growth is not kept: \(versions)")
    }
}

/// A playlist the child wrote, as the worker resolves it before storing it (the child is hostile).
@Test("a staged playlist's URIs resolve inside the version; junk lines neither trap nor escape")
func stagedPlaylistReferences() {
    let playlist = "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/ab\",IV=0x0\n00000.ts\n?\n?x\n../../../etc/passwd\n./00001.ts?x=1\n"
    #expect(StagedPlaylist.files(namedBy: playlist, at: "720p/index.m3u8") == ["keys/ab.key", "720p/00000.ts", "720p", "720p", "720p/00001.ts"])
    #expect(StagedPlaylist.files(namedBy: "360p/index.m3u8\n", at: "master.m3u8") == ["360p/index.m3u8"])
}
