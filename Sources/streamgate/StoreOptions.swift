import ArgumentParser
import Foundation
import S3
import Store

/// Where assets live: a folder, or a bucket of any S3-compatible service. Taken by `serve`,
/// `worker` and `farm` (which passes it on to its workers).
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The store: a folder, or s3://bucket/prefix.", valueName: "folder|s3-url"))
    var store: String

    @OptionGroup(title: "S3") var s3: S3Options

    /// The store, opened: for a folder, `creating` makes its subfolders (a worker: should that
    /// fail, the worker still starts and postpones its jobs until the store is back), else it
    /// must exist (a server). A bucket is only described here; its first request tells if it answers.
    func storage(creating: Bool, warn: (String) -> Void = { _ in }) throws -> any AssetStorage {
        do {
            switch try StoreLocation(store) {
            case .folder(let path) where creating:
                do {
                    return try AssetStore(root: path)
                } catch {
                    warn("\(error)")
                    return AssetStore(lazilyAt: path)
                }
            case .folder(let path):
                return try AssetStore(readingFrom: path)
            case .bucket(let name, let prefix):
                return try s3.bucketStore(name: name, prefix: prefix)
            }
        } catch let error as StoreError {
            throw CommandFailure(message: "--store: \(error)", code: 73)
        } catch let error as S3ConfigurationError {
            throw CommandFailure(message: "--store \(store): \(error)", code: 78)
        }
    }

    /// The options as given, for a child process (a farm's workers).
    var arguments: [String] { ["--store", store] + s3.arguments }
}
