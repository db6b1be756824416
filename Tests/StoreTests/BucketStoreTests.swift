import Foundation
import NIOCore
import S3
import TestSupport
import Testing
@testable import Store

/// The bucket backend against a real S3 server (SeaweedFS, checking signatures): staging through
/// a local spool, segments stored before the publish, the pointer swap, and what readers see.
@Suite("bucket store: SeaweedFS", .serialized)
struct BucketStoreTests {
    /// A bucket store under a prefix of the server's bucket, and a spool of its own.
    struct Bucket {
        let server: S3ServerProcess
        let store: BucketStore
        let spool: String

        /// `abandonedVersionAge` 0 prunes at once what no pointer names: only for publishes one after another.
        init(_ server: S3ServerProcess, prefix: String = "media/sg", credentials: S3Credentials? = nil, abandonedVersionAge: TimeInterval = 0) {
            self.server = server
            store = BucketStore(
                client: server.client(credentials: credentials), bucket: server.bucket, prefix: prefix, abandonedVersionAge: abandonedVersionAge
            )
            spool = NSTemporaryDirectory() + "sg-spool-\(UUID().uuidString)"
        }

        /// Every key under the store's prefix, sorted.
        func keys(under sub: String = "") async throws -> [String] {
            try await server.client().listAllObjects(bucket: server.bucket, prefix: store.prefix + sub).objects().map(\.key).sorted()
        }

        /// A version staged with `files` written into its local folder (not yet stored).
        func staged(_ asset: AssetID, holder: String = "job-1", files: [String: String]) async throws -> any VersionStaging {
            let staging = try await store.stage(asset, heldBy: holder, spool: spool)
            for (relative, text) in files {
                let path = staging.folder + "/" + relative
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            }
            return staging
        }

        func text(_ relative: String, of version: PublishedVersion, range: ClosedRange<Int>? = nil) async throws -> String? {
            let read = try await store.read(relative, of: version, range: range, maximumBytes: 1 << 20) { size, fill in
                var bytes = [UInt8](repeating: 0, count: size)
                let count = try bytes.withUnsafeMutableBytes { try fill($0) }
                return String(decoding: bytes.prefix(count), as: UTF8.self)
            }
            return read?.bytes
        }
    }

    static let ladder = ["master.m3u8": "#EXTM3U\n", "asset.json": "{}", "720p/index.m3u8": "#EXTM3U\n", "720p/seg_00001.ts": "segment-one"]

    @Test("a segment stored before the publish is in the bucket at once and gone from the spool; the publish makes the version current")
    func storeThenPublish() async throws {
        try await withS3 { server in
            let bucket = Bucket(server)
            let asset = try AssetID("film")
            let staging = try await bucket.staged(asset, files: Self.ladder)
            try await staging.stored("720p/seg_00001.ts")
            #expect(!FileManager.default.fileExists(atPath: staging.folder + "/720p/seg_00001.ts"), "the spool keeps what the bucket has")
            let early = try await bucket.keys(under: "objects/film/")
            #expect(early.count == 1 && early[0].hasSuffix("/720p/seg_00001.ts"), "\(early)")
            #expect(try await bucket.store.versions(of: asset) == .none, "nothing is visible before the publish")

            let version = try await staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: "job-1")
            let versions = try await bucket.store.versions(of: asset)
            #expect(versions.current == version && versions.publisher == "job-1" && versions.readable.count == 1)
            #expect(try await bucket.text("720p/seg_00001.ts", of: version) == "segment-one")
            #expect(try await bucket.text("720p/seg_00001.ts", of: version, range: 8...10) == "one")
            #expect(try await bucket.text("missing.ts", of: version) == nil)
            #expect(try await bucket.text("../../assets/film", of: version) == nil, "a path out of the version names nothing")
            #expect(try await bucket.store.publishedAssets() == [asset])
            #expect(try await bucket.keys(under: "objects/film/").count == Self.ladder.count)
            #expect((try? FileManager.default.contentsOfDirectory(atPath: bucket.spool + "/staging")) == [], "the spool is empty after a publish")
            try await bucket.store.checkReadable()
        }
    }

    @Test("republishing keeps the replaced version readable and removes the ones before it; a job run twice publishes once")
    func republish() async throws {
        try await withS3 { server in
            let bucket = Bucket(server)
            let asset = try AssetID("film")
            var published: [PublishedVersion] = []
            for index in 0..<3 {
                let staging = try await bucket.staged(asset, holder: "job-\(index)", files: Self.ladder.merging(["asset.json": "{\"n\":\(index)}"]) { $1 })
                published.append(try await staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: "job-\(index)"))
            }
            let versions = try await bucket.store.versions(of: asset)
            #expect(versions.current == published[2] && Set(versions.readable.keys) == [published[1].version, published[2].version])
            #expect(try await bucket.text("asset.json", of: published[1]) == "{\"n\":1}", "the replaced version is still readable")
            #expect(try await bucket.text("asset.json", of: published[0]) == nil, "the one before it was removed")

            // An earlier attempt of job-2 published; this attempt finds it and publishes nothing.
            let again = try await bucket.staged(asset, holder: "job-2", files: Self.ladder)
            try await again.stored("720p/seg_00001.ts")
            let result = try await again.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: "job-2")
            #expect(result == published[2])
            #expect(try await bucket.store.versions(of: asset).current == published[2])
            let folders = Set(try await bucket.keys(under: "objects/film/").map { $0.split(separator: "/")[4] })
            #expect(folders == [Substring(published[1].version), Substring(published[2].version)], "the second attempt's objects are removed")
        }
    }

    @Test("publishers racing on one asset: each swap applies to the pointer it read, none is lost")
    func racingPublishers() async throws {
        try await withS3 { server in
            // The default age: a racer's version is being uploaded while another publishes.
            let bucket = Bucket(server, abandonedVersionAge: 24 * 3600)
            let asset = try AssetID("raced")
            let stagings = try await (0..<4).asyncMap { try await bucket.staged(asset, holder: "job-\($0)", files: Self.ladder) }
            let published = try await withThrowingTaskGroup(of: PublishedVersion.self) { group in
                for (index, staging) in stagings.enumerated() {
                    group.addTask { try await staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: "job-\(index)") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(published.map(\.version)).count == 4)
            let versions = try await bucket.store.versions(of: asset)
            let current = try #require(versions.current)
            #expect(published.contains(current))
            // The pointer names the one it replaced, which is one of the four and still whole.
            let previous = try #require(versions.readable.keys.first { $0 != current.version })
            #expect(published.map(\.version).contains(previous))
            #expect(try await bucket.text("master.m3u8", of: versions.readable[previous]!) == "#EXTM3U\n")
        }
    }

    @Test("a missing required file publishes nothing; a discard removes what was stored")
    func missingRequiredFile() async throws {
        try await withS3 { server in
            let bucket = Bucket(server)
            let asset = try AssetID("half")
            let staging = try await bucket.staged(asset, files: ["720p/seg_00001.ts": "x", "asset.json": "{}"])
            try await staging.stored("720p/seg_00001.ts")
            await #expect(throws: StoreError.self) {
                try await staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: "job-1")
            }
            #expect(try await bucket.store.versions(of: asset) == .none)
            await staging.discard()
            #expect(try await bucket.keys(under: "objects/half/") == [], "a half asset leaves nothing behind")
            await #expect(throws: StoreError.self) { try await staging.stored("../x") }
        }
    }

    @Test("withdrawing removes the pointer first, then the objects")
    func unpublish() async throws {
        try await withS3 { server in
            let bucket = Bucket(server)
            let asset = try AssetID("gone")
            _ = try await bucket.staged(asset, files: Self.ladder).publish(requiredFiles: PublishedVersion.requiredFiles, publisher: nil)
            try await bucket.store.unpublish(asset)
            #expect(try await bucket.store.versions(of: asset) == .none)
            #expect(try await bucket.keys() == [])
            #expect(try await bucket.store.publishedAssets() == [])
        }
    }

    @Test("a pointer StreamGate did not write is an error naming its key, never a path to follow")
    func hostilePointer() async throws {
        try await withS3 { server in
            let bucket = Bucket(server)
            let client = server.client()
            for (asset, body) in [("junk", "not json"), ("escape", #"{"version":"../../secrets"}"#), ("prev", #"{"version":"v20261123T171900Z-0123456789ab","previous":"x/.."}"#)] {
                try await client.putObject(bucket: server.bucket, key: "media/sg/assets/\(asset)", body: ByteBuffer(string: body))
                await #expect {
                    try await bucket.store.versions(of: try AssetID(asset))
                } throws: { error in
                    "\(error)".contains("media/sg/assets/\(asset)")
                }
            }
        }
    }

    @Test("a wrong secret key: every call fails with a StoreError naming the bucket")
    func refusedCredentials() async throws {
        try await withS3 { server in
            let bucket = Bucket(server, credentials: S3Credentials(accessKeyID: S3ServerProcess.accessKeyID, secretAccessKey: "wrong-secret-wrong-secret"))
            await #expect { try await bucket.store.checkReadable() } throws: { "\($0)".contains("s3://\(server.bucket)/media/sg/") }
            await #expect { try await bucket.store.versions(of: try AssetID("x")) } throws: { "\($0)".contains(server.bucket) }
        }
    }
}

@Suite("store locations")
struct StoreLocationTests {
    @Test("a folder, or s3://bucket with an optional prefix", arguments: [
        ("/srv/store", StoreLocation.folder("/srv/store")),
        ("store", .folder("store")),
        ("s3://media", .bucket(name: "media", prefix: "")),
        ("s3://media/", .bucket(name: "media", prefix: "")),
        ("s3://media/streamgate", .bucket(name: "media", prefix: "streamgate/")),
        ("s3://my.bucket-1/a/b/", .bucket(name: "my.bucket-1", prefix: "a/b/")),
    ])
    func parses(_ text: String, _ expected: StoreLocation) throws {
        #expect(try StoreLocation(text) == expected)
    }

    @Test("refused, naming what is wrong", arguments: ["", "s3://", "s3://ab", "s3://Media", "s3://-media", "s3://media/../x", "s3://media/a//b", "s3://media/.hidden"])
    func refuses(_ text: String) {
        #expect(throws: StoreError.self) { try StoreLocation(text) }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
