import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Sealed uploads in a folder (`STORE/uploads`): parts are written at their offsets into
/// `<id>.sealed.partial` (mode 0600), flushed before they count, and the file is renamed to
/// `<id>.sealed` when complete. Origins sharing the folder continue each other's uploads.
public struct FolderUploadTarget: SealedUploadTarget {
    /// The uploads folder, absolute.
    public let folder: String
    let threadPool: NIOThreadPool

    public init(folder: String, threadPool: NIOThreadPool = .singleton) {
        self.folder = StorePath.absolute(folder)
        self.threadPool = threadPool
    }

    public func source(of id: String) -> String { folder + "/" + SealedUploadNames.sealed(id) }
    func partial(_ id: String) -> String { folder + "/" + SealedUploadNames.partial(id) }
    func tail(_ id: String, _ generation: Int) -> String { folder + "/" + SealedUploadNames.tail(id, generation) }

    public func begin(_ id: String) async throws(StoreError) -> String {
        try SealedUploadNames.check(id)
        let path = partial(id)
        try await onPool { () throws in
            try StorePath.makeDirectory(folder)
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw StoreError.system("cannot create the upload", path: path) }
            close(descriptor)
            try StorePath.syncDirectory(folder)
        }
        return ""
    }

    public func putPart(_ id: String, handle: String, number: Int, offset: Int, bytes: ByteBuffer) async throws(StoreError) -> String {
        try SealedUploadNames.check(id)
        let path = partial(id)
        try await onPool { () throws in
            // No O_CREAT: a part of an upload that was aborted meanwhile must not bring it back.
            let descriptor = open(path, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw StoreError.system("cannot open the upload", path: path) }
            defer { close(descriptor) }
            try Self.write(bytes, to: descriptor, at: offset, path: path)
            guard fdatasync(descriptor) == 0 else { throw StoreError.system("cannot flush the upload", path: path) }
        }
        return "-"
    }

    public func complete(_ id: String, handle: String, partTags: [String], size: Int) async throws(StoreError) {
        try SealedUploadNames.check(id)
        let (from, to) = (partial(id), source(of: id))
        try await onPool { () throws in
            let descriptor = open(from, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                // Completed before (the rename done, the caller's record not): the file is there whole.
                var info = stat()
                if errno == ENOENT, stat(to, &info) == 0, Int(info.st_size) == size { return }
                throw StoreError.system("cannot open the upload", path: from)
            }
            defer { close(descriptor) }
            // A part written by an attempt that lost the upload may reach past the end: cut it.
            guard ftruncate(descriptor, off_t(size)) == 0, fsync(descriptor) == 0 else {
                throw StoreError.system("cannot finish the upload", path: from)
            }
            guard rename(from, to) == 0 else { throw StoreError.system("cannot rename the upload to \(to)", path: from) }
            try StorePath.syncDirectory(folder)
        }
    }

    public func storedSize(_ id: String) async throws(StoreError) -> Int? {
        try SealedUploadNames.check(id)
        let path = source(of: id)
        return try await onPool { () throws -> Int? in
            var info = stat()
            guard stat(path, &info) == 0 else {
                if errno == ENOENT { return nil }
                throw StoreError.system("cannot inspect the upload", path: path)
            }
            return Int(info.st_size)
        }
    }

    public func abort(_ id: String, handle: String) async throws(StoreError) {
        try SealedUploadNames.check(id)
        let path = partial(id)
        try await onPool { () throws in
            if unlink(path) != 0, errno != ENOENT { throw StoreError.system("cannot remove the upload", path: path) }
        }
    }

    public func writeTail(_ id: String, generation: Int, bytes: ByteBuffer) async throws(StoreError) {
        try SealedUploadNames.check(id)
        let (path, temporary) = (tail(id, generation), tail(id, generation) + ".tmp")
        try await onPool { () throws in
            let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw StoreError.system("cannot create the upload's tail", path: temporary) }
            do {
                try Self.write(bytes, to: descriptor, at: 0, path: temporary)
                guard fsync(descriptor) == 0 else { throw StoreError.system("cannot flush the upload's tail", path: temporary) }
                close(descriptor)
            } catch {
                close(descriptor)
                unlink(temporary)
                throw error
            }
            // Renamed whole into place: a reader finds the old generation's name or a complete file.
            guard rename(temporary, path) == 0 else { throw StoreError.system("cannot rename the upload's tail", path: temporary) }
            try StorePath.syncDirectory(folder)
        }
    }

    public func readTail(_ id: String, generation: Int, maximumBytes: Int) async throws(StoreError) -> [UInt8]? {
        try SealedUploadNames.check(id)
        let path = tail(id, generation)
        return try await onPool { () throws -> [UInt8]? in
            var info = stat()
            guard stat(path, &info) == 0 else {
                if errno == ENOENT { return nil }
                throw StoreError.system("cannot inspect the upload's tail", path: path)
            }
            guard Int(info.st_size) <= maximumBytes else { throw StoreError("\(path): the tail is over \(maximumBytes) bytes") }
            guard let data = FileManager.default.contents(atPath: path) else { throw StoreError("\(path): cannot read the upload's tail") }
            return [UInt8](data)
        }
    }

    public func removeTail(_ id: String, generation: Int) async throws(StoreError) {
        try SealedUploadNames.check(id)
        let path = tail(id, generation)
        try await onPool { () throws in
            if unlink(path) != 0, errno != ENOENT { throw StoreError.system("cannot remove the upload's tail", path: path) }
        }
    }

    public func removeTails(_ id: String) async throws(StoreError) {
        try SealedUploadNames.check(id)
        let (folder, start) = (self.folder, SealedUploadNames.tailPrefix(id))
        try await onPool { () throws in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            for name in names where name.hasPrefix(start) {
                if unlink(folder + "/" + name) != 0, errno != ENOENT { throw StoreError.system("cannot remove the upload's tail", path: folder + "/" + name) }
            }
        }
    }

    public func removeSource(_ source: String) async throws(StoreError) -> Bool {
        guard source.hasPrefix(folder + "/"), StorePath.isSafeComponent(source.dropFirst(folder.count + 1)) else { return false }
        try await onPool { () throws in
            if unlink(source) != 0, errno != ENOENT { throw StoreError.system("cannot remove the upload", path: source) }
        }
        return true
    }

    private func onPool<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws(StoreError) -> Value {
        try await threadPool.storeWork(at: folder, work)
    }

    private static func write(_ bytes: ByteBuffer, to descriptor: Int32, at offset: Int, path: String) throws(StoreError) {
        let failure: Int32? = bytes.withUnsafeReadableBytes { buffer -> Int32? in
            var done = 0
            while done < buffer.count {
                let written = pwrite(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                done += written
            }
            return nil
        }
        if let failure { throw StoreError.system("cannot write", path: path, errno: failure) }
    }
}

extension AssetStore: SealedUploadStorage {
    /// `ROOT/uploads`, on the store's thread pool.
    public var sealedUploads: any SealedUploadTarget { FolderUploadTarget(folder: uploads, threadPool: threadPool) }
}
