import Foundation
import Testing
@testable import Store

/// A staging folder has one owner, whoever created it: only the owner removes it; a process handed
/// the folder writes and publishes it. Each test is named after what it prevents.
@Suite("staging folders: one owner")
struct StagingOwnershipTests {
    @Test("an adopted staging area never removes its folder, released or discarded: its creator does")
    func adoptedAreaLeavesTheFolderToItsOwner() throws {
        let temporary = try TemporaryStore()
        let asset = try AssetID("clip")
        let owner = try temporary.store.stage(asset, heldBy: "job-1")
        do {
            let adopted = try temporary.store.adoptStaging(owner.directory, for: asset)
            #expect(!adopted.ownsDirectory)
            try adopted.write([1], to: "360p/00000.ts")
            adopted.discard()
        }
        #expect(FileManager.default.fileExists(atPath: owner.directory + "/360p/00000.ts"), "the writer removed what it does not own")
        owner.discard()
        #expect(temporary.entries("staging").isEmpty)
    }

    @Test("an adopted staging area publishes; its owner's discard afterwards finds nothing to remove")
    func adoptedAreaPublishes() throws {
        let temporary = try TemporaryStore()
        let asset = try AssetID("clip")
        let owner = try temporary.store.stage(asset, heldBy: "job-1")
        let adopted = try temporary.store.adoptStaging(owner.directory, for: asset)
        try adopted.write("#EXTM3U\n", to: "master.m3u8")
        let version = try adopted.publish(requiredFiles: ["master.m3u8"], publisher: "job-1")
        owner.discard()
        #expect(try temporary.store.publishedVersion(of: asset) == version)
        #expect(FileManager.default.fileExists(atPath: version.directory + "/master.m3u8"))
        #expect(temporary.entries("staging").isEmpty)
    }

    @Test("only a folder of the asset directly in the store's staging can be adopted, never a link")
    func adoptionRefusesOtherFolders() throws {
        let temporary = try TemporaryStore()
        let asset = try AssetID("clip")
        let other = try temporary.store.stage(try AssetID("other"))
        let link = temporary.folder.path + "/staging/clip.link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: other.directory)
        for directory in [other.directory, link, temporary.folder.path + "/objects", "/tmp", temporary.folder.path + "/staging/clip.gone"] {
            #expect(throws: StoreError.self, "\(directory)") { try temporary.store.adoptStaging(directory, for: asset) }
        }
    }

    @Test("what a dead holder left is removed for the next holder of the same job, and nothing else")
    func discardRemovesOnlyThatHoldersFolders() throws {
        let temporary = try TemporaryStore()
        let asset = try AssetID("clip")
        let left = try temporary.store.stage(asset, heldBy: "job-1")
        let otherJob = try temporary.store.stage(asset, heldBy: "job-2")
        let otherAsset = try temporary.store.stage(try AssetID("film"), heldBy: "job-1")
        let byHand = try temporary.store.stage(asset)
        try temporary.store.adoptStaging(left.directory, for: asset).write([0], to: "a/b.ts")
        temporary.store.discardStaging(of: asset, heldBy: "job-1")
        #expect(!FileManager.default.fileExists(atPath: left.directory))
        for kept in [otherJob, otherAsset, byHand] {
            #expect(FileManager.default.fileExists(atPath: kept.directory), "\(kept.directory)")
        }
        #expect(throws: StoreError.self) { try temporary.store.stage(asset, heldBy: "../job") }
    }

    @Test("a writer that outlived its attempt cannot bring back, nor publish, a folder its owner removed")
    func removedFolderStaysRemoved() throws {
        let temporary = try TemporaryStore()
        let asset = try AssetID("clip")
        let owner = try temporary.store.stage(asset, heldBy: "job-1")
        let adopted = try temporary.store.adoptStaging(owner.directory, for: asset)
        try adopted.write("#EXTM3U\n", to: "master.m3u8")
        owner.discard()
        #expect(throws: StoreError.self) { try adopted.write([0], to: "720p/00000.ts") }
        #expect(throws: StoreError.self) { try adopted.publish(requiredFiles: ["master.m3u8"]) }
        #expect(temporary.entries("staging").isEmpty, "\(temporary.entries("staging"))")
        #expect(try temporary.store.publishedVersion(of: asset) == nil)
    }
}
