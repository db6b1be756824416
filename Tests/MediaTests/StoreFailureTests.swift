import Foundation
import Profiles
import Store
import TestSupport
import Testing
import Vault
@testable import Media

/// A store that fails in the middle of a transcode (the disk filled up, the folder went away) is the
/// store's failure, not the input's: the transcode throws ``StoreError``, which `streamgate transcode`
/// exits with as 73 and a worker postpones, rather than a ``TranscodeError`` blaming the file (exit 65,
/// failed for good).
@Suite("a store failure is not bad input")
struct StoreFailureTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("a full store mid-transcode throws StoreError, not an input error, and publishes nothing")
    func fullStoreIsNotBadInput() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-storefail-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try AssetStore(root: folder.path)
        let keyring = Keyring(current: try MasterKey(bytes: (0..<32).map { UInt8($0) }))
        let profile = try Profile.load(path: Self.root.appendingPathComponent("profiles/fast.yaml").path)
        let asset = try AssetID("storefail")
        let input = Self.root.appendingPathComponent("fixtures/good/basic.mp4").path
        let staging = folder.path + "/staging"
        let sabotaged = Flag()
        // At the first progress report, the staging folder turns into a file: every write after
        // that fails, as writes do on a full disk.
        let sabotage: @Sendable (TranscodeProgress) -> Void = { _ in
            guard !sabotaged.isSet, let name = try? FileManager.default.contentsOfDirectory(atPath: staging).first else { return }
            sabotaged.set()
            try? FileManager.default.removeItem(atPath: staging + "/" + name)
            FileManager.default.createFile(atPath: staging + "/" + name, contents: Data("not a folder".utf8))
        }
        let outcome: Result<TranscodeSummary, Error> = try await offPool {
            Result { try Transcoder(store: store, keyring: keyring).transcode(
                input: .path(input), profile: profile, assetID: asset, progressInterval: 0, progress: sabotage
            ) }
        }
        #expect(sabotaged.isSet, "the staging folder was broken mid-transcode")
        switch outcome {
        case .success: Issue.record("the transcode succeeded on a broken store")
        case .failure(let error):
            #expect(error is StoreError, "a store failure, not an input error: \(type(of: error)) \(error)")
        }
        #expect(try store.publishedVersion(of: asset) == nil)
    }
}

/// A flag set once from the transcoding thread.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
