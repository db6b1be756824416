import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Path rules and the few filesystem calls the store makes.
public enum StorePath {
    /// The longest relative path the store writes or serves, in bytes.
    public static let maximumRelativeLength = 255

    /// True for a plain relative path of 1 to 4 components of `[A-Za-z0-9._-]`, none empty, none
    /// starting with a dot: no absolute path, no `..`, no hidden file, no NUL, nothing percent-encoded.
    /// Inlinable: the origin checks every request's path with it.
    @inlinable
    public static func isSafeRelative(_ relative: some StringProtocol) -> Bool {
        let bytes = relative.utf8
        guard !bytes.isEmpty, bytes.count <= maximumRelativeLength else { return false }
        var components = 0
        var componentLength = 0
        for byte in bytes {
            if byte == UInt8(ascii: "/") {
                guard componentLength > 0 else { return false }
                components += 1
                componentLength = 0
                continue
            }
            if componentLength == 0, byte == UInt8(ascii: ".") { return false }
            guard isNameByte(byte) else { return false }
            componentLength += 1
        }
        guard componentLength > 0 else { return false }
        return components + 1 <= 4
    }

    /// True for one path component the store could have written (see ``isSafeRelative(_:)``).
    public static func isSafeComponent(_ component: some StringProtocol) -> Bool {
        !component.utf8.contains(UInt8(ascii: "/")) && isSafeRelative(component)
    }

    @usableFromInline
    static func isNameByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }

    /// `path` made absolute against the working directory, without a trailing slash.
    public static func absolute(_ path: String) -> String {
        var result = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        while result.count > 1, result.hasSuffix("/") { result.removeLast() }
        return result
    }

    /// `mkdir -p`, with the failing folder and the reason in the error.
    static func makeDirectory(_ path: String) throws(StoreError) {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw StoreError("\(path): exists and is not a folder")
            }
            return
        }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectory(String(path[..<slash]))
        }
        if mkdir(path, 0o755) != 0, errno != EEXIST {
            throw StoreError.system("cannot create folder", path: path)
        }
    }

    /// Opens `path` (a folder) and takes an exclusive `flock(2)` on it, waiting for it; returns the
    /// descriptor, whose `close` releases the lock. The lock dies with its process, so a publisher
    /// killed while holding it blocks nobody.
    static func lockFolder(_ path: String) throws(StoreError) -> Int32 {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StoreError.system("cannot open folder", path: path) }
        while flock(descriptor, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let error = StoreError.system("cannot lock folder", path: path)
            close(descriptor)
            throw error
        }
        return descriptor
    }

    /// Flushes a folder's entries (a rename or a new link in it) to disk.
    static func syncDirectory(_ path: String) throws(StoreError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StoreError.system("cannot open folder", path: path) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw StoreError.system("cannot flush folder", path: path) }
    }

    /// Flushes a file's data to disk before it becomes reachable from a published version.
    static func syncFile(_ path: String) throws(StoreError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StoreError.system("cannot open file", path: path) }
        defer { close(descriptor) }
        guard fdatasync(descriptor) == 0 else { throw StoreError.system("cannot flush to disk", path: path) }
    }
}
