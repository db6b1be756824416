import Foundation
import Testing
@testable import Store

/// A store in a fresh temporary folder, removed on release.
final class TemporaryStore {
    let folder: URL
    let store: AssetStore

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-store-\(UUID().uuidString)")
        store = try AssetStore(root: folder.path)
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    func entries(_ sub: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path + "/" + sub)) ?? []).sorted()
    }
}

@Suite("asset ids")
struct AssetIDTests {
    @Test("accepts plain ids", arguments: ["a", "sample", "Movie_2026-11", "0abc", String(repeating: "x", count: 64)])
    func accepts(_ id: String) throws {
        #expect(try AssetID(id).rawValue == id)
    }

    @Test("refuses anything that could be a path or needs escaping", arguments: [
        "", ".", "..", "../etc", "a/b", "-lead", "_lead", "a b", "a.b", "a%2e", "a\u{0}b", "é", String(repeating: "x", count: 65),
    ])
    func refuses(_ id: String) {
        #expect(throws: StoreError.self) { try AssetID(id) }
    }

    @Test("random ids are valid and distinct")
    func random() {
        let ids = Set((0..<100).map { _ in AssetID.random().rawValue })
        #expect(ids.count == 100)
        #expect(ids.allSatisfy { AssetID.isValid($0) && $0.count == 20 })
    }
}

@Suite("relative paths")
struct StorePathTests {
    @Test("plain relative paths are safe", arguments: ["master.m3u8", "360p/index.m3u8", "360p/00001.ts", "keys/0123.key", "a/b/c/d"])
    func safe(_ path: String) {
        #expect(StorePath.isSafeRelative(path))
    }

    @Test("traversal and oddities are not", arguments: [
        "", "/etc/passwd", "../x", "a/../b", "a/./b", "./a", ".hidden", "a//b", "a/", "%2e%2e/x", "a\u{0}.ts", "a\\b",
        "a/b/c/d/e", String(repeating: "a", count: 256), "é.ts", "a b.ts",
    ])
    func unsafe(_ path: String) {
        #expect(!StorePath.isSafeRelative(path))
    }
}

@Suite("staging and publishing")
struct PublishTests {
    @Test("a published version holds exactly what was staged, and staging is gone")
    func publish() throws {
        let temporary = try TemporaryStore()
        let asset = try AssetID("clip")
        let staging = try temporary.store.stage(asset)
        try staging.write("#EXTM3U\n", to: "master.m3u8")
        try staging.write([1, 2, 3], to: "360p/00000.ts")
        #expect(try temporary.store.publishedVersion(of: asset) == nil, "nothing visible before publish")
        let version = try staging.publish(requiredFiles: ["master.m3u8"])

        #expect(temporary.entries("staging").isEmpty)
        let seen = try #require(try temporary.store.publishedVersion(of: asset))
        #expect(seen == version)
        #expect(try String(contentsOfFile: version.directory + "/master.m3u8", encoding: .utf8) == "#EXTM3U\n")
        #expect(try Data(contentsOf: URL(fileURLWithPath: version.directory + "/360p/00000.ts")) == Data([1, 2, 3]))
        #expect(try temporary.store.publishedAssets() == [asset])
    }

    @Test("a missing required file publishes nothing")
    func missingRequired() throws {
        let temporary = try TemporaryStore()
        let asset = try AssetID("clip")
        let staging = try temporary.store.stage(asset)
        try staging.write([0], to: "360p/00000.ts")
        #expect(throws: StoreError.self) { try staging.publish(requiredFiles: ["master.m3u8"]) }
        staging.discard()
        #expect(try temporary.store.publishedVersion(of: asset) == nil)
        #expect(temporary.entries("staging").isEmpty)
        #expect(temporary.entries("objects").isEmpty)
    }

    @Test("an abandoned staging area removes itself")
    func abandoned() throws {
        let temporary = try TemporaryStore()
        do {
            let staging = try temporary.store.stage(try AssetID("gone"))
            try staging.write([0], to: "a/b.ts")
            #expect(temporary.entries("staging").count == 1)
        }
        #expect(temporary.entries("staging").isEmpty)
    }

    @Test("a file is written once; unsafe names are refused")
    func writeRules() throws {
        let temporary = try TemporaryStore()
        let staging = try temporary.store.stage(try AssetID("x"))
        try staging.write([0], to: "a.ts")
        #expect(throws: StoreError.self) { try staging.write([1], to: "a.ts") }
        for name in ["../escape.ts", "/tmp/abs.ts", ".hidden"] {
            #expect(throws: StoreError.self) { try staging.write([1], to: name) }
        }
        #expect(!FileManager.default.fileExists(atPath: temporary.folder.path + "/escape.ts"))
    }

    @Test("republishing swaps the version atomically and keeps only the previous one")
    func republish() async throws {
        let temporary = try TemporaryStore()
        let asset = try AssetID("clip")
        var versions: [PublishedVersion] = []
        for round in 0..<3 {
            let staging = try temporary.store.stage(asset)
            try staging.write("round \(round)", to: "master.m3u8")
            versions.append(try staging.publish(requiredFiles: ["master.m3u8"]))
            // Version names start with the publish second; make the next one sort after this one.
            if round < 2 { try await Task.sleep(for: .milliseconds(1050)) }
        }
        let current = try #require(try temporary.store.publishedVersion(of: asset))
        #expect(current == versions[2])
        #expect(try String(contentsOfFile: current.directory + "/master.m3u8", encoding: .utf8) == "round 2")
        #expect(temporary.entries("objects/clip") == [versions[1].version, versions[2].version])
        #expect(temporary.entries("assets") == ["clip"], "no temporary link left")
    }

    @Test("a job run twice publishes one version: the same publisher's second publish returns its first")
    func publishedTwiceBySameJob() throws {
        let temporary = try TemporaryStore()
        let asset = try AssetID("clip")
        let first = try temporary.store.stage(asset)
        try first.write("attempt 1", to: "master.m3u8")
        let published = try first.publish(requiredFiles: ["master.m3u8"], publisher: "job-1")
        #expect(temporary.store.publisher(of: published) == "job-1")

        // The job's worker died before recording the result; its next attempt stages everything again.
        let again = try temporary.store.stage(asset)
        try again.write("attempt 2", to: "master.m3u8")
        let returned = try again.publish(requiredFiles: ["master.m3u8"], publisher: "job-1")
        #expect(returned == published)
        #expect(temporary.entries("objects/clip") == [published.version], "one version on disk")
        #expect(temporary.entries("staging").isEmpty, "the second attempt's files are gone")
        #expect(try String(contentsOfFile: published.directory + "/master.m3u8", encoding: .utf8) == "attempt 1")

        // Another job republishing the asset makes a new version, as always.
        let other = try temporary.store.stage(asset)
        try other.write("job 2", to: "master.m3u8")
        let republished = try other.publish(requiredFiles: ["master.m3u8"], publisher: "job-2")
        #expect(republished != published)
        #expect(try temporary.store.publishedVersion(of: asset) == republished)
    }

    @Test("concurrent publishes of one asset never leave its link on a pruned version")
    func concurrentPublishesKeepTheLinkedVersion() async throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let asset = try AssetID("busy")
        // Each publish prunes all but the new version and the one it replaced: without publishes
        // taking turns, one could prune a version another has just linked.
        for _ in 0..<5 {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        guard let staging = try? store.stage(asset) else { return }
                        try? staging.write("writer \(writer)", to: "master.m3u8")
                        _ = try? staging.publish(requiredFiles: ["master.m3u8"])
                    }
                }
            }
            let current = try #require(try store.publishedVersion(of: asset))
            #expect(FileManager.default.fileExists(atPath: current.directory + "/master.m3u8"), "the link points to a whole version")
            #expect(store.versionsOnDisk(of: asset).count <= 2)
        }
    }

    @Test("unpublish withdraws the asset")
    func unpublish() throws {
        let temporary = try TemporaryStore()
        let asset = try AssetID("clip")
        let staging = try temporary.store.stage(asset)
        try staging.write("x", to: "master.m3u8")
        _ = try staging.publish(requiredFiles: ["master.m3u8"])
        try temporary.store.unpublish(asset)
        #expect(try temporary.store.publishedVersion(of: asset) == nil)
        #expect(temporary.entries("objects").isEmpty)
    }

    @Test("a store that cannot be created names the path")
    func unwritable() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let blocker = folder.path + "/file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        let error = #expect(throws: StoreError.self) { try AssetStore(root: blocker + "/store") }
        #expect(error?.message.contains(blocker) == true)
    }

    @Test("a link that points outside the asset's versions is an error, not a path")
    func foreignLink() throws {
        let temporary = try TemporaryStore()
        symlink("/etc", temporary.folder.path + "/assets/evil")
        #expect(throws: StoreError.self) { try temporary.store.publishedVersion(of: try AssetID("evil")) }
    }

    @Test("version names sort by time and parse back")
    func versionNames() {
        let name = AssetStore.newVersionName()
        #expect(AssetStore.isVersionName(name), "\(name)")
        #expect(!AssetStore.isVersionName("v2026"))
        #expect(!AssetStore.isVersionName("../../../etc/passwd-0123456789ab"))
    }
}
