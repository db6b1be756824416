import Dispatch
import Foundation
import Store

/// `streamgate transcode --out s3://…`: the transcode writes into a staging folder of a local
/// spool, each file goes up as soon as it is whole, and the version is published when the ladder
/// is done, as a worker does it. The command runs on one thread, so each store call is waited for.
final class BucketUpload {
    let spool: AssetStore
    let staging: StagingArea
    let location: String
    private let version: any VersionStaging
    private let files: StoredFiles

    init(into store: BucketStore, asset: AssetID, spool folder: String?) throws {
        let holder = "t" + AssetID.random().rawValue.prefix(15)
        version = try waitFor { try await store.stage(asset, heldBy: String(holder), spool: folder.map(StorePath.absolute) ?? NSTemporaryDirectory() + "streamgate-spool") }
        spool = try AssetStore(root: AssetStore.root(ofStaging: version.folder))
        staging = try spool.adoptStaging(version.folder, for: asset)
        location = store.location
        let files = StoredFiles(into: version)
        self.files = files
        staging.onWrite = { files.report($0) }
    }

    /// Waits for every file to be stored, then makes the version current; returns its name.
    func publish(publisher: String?) throws -> String {
        let (files, version) = (self.files, self.version)
        try waitFor { try await files.finish() }
        return try waitFor { try await version.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: publisher) }.version
    }

    /// Removes what was stored, and the local staging folder.
    func discard() {
        let (files, version) = (self.files, self.version)
        files.cancel()
        _ = try? waitFor { await version.discard() }
    }

    func playlist(of summary: TranscodeSummary) -> String {
        "\(location)objects/\(summary.assetID)/\(summary.version ?? "?")/master.m3u8"
    }
}

/// Runs `work` on the concurrency pool and blocks this thread until it is done: for a command
/// that does its work on one thread and calls async code now and then.
func waitFor<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    let result = ResultSlot<T>()
    Task.detached {
        do { result.value = .success(try await work()) } catch { result.value = .failure(error) }
        done.signal()
    }
    done.wait()
    return try result.value!.get()
}

/// Written by one task before a semaphore's signal, read after its wait.
private final class ResultSlot<T>: @unchecked Sendable {
    var value: Result<T, any Error>?
}
