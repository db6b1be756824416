import Foundation
import NIOCore

// The two ways StreamGate reads a source at any offset: blocking (the decrypting reader and the
// demuxer's AVIO callbacks, which run on a C call stack) and async (a worker reading an object
// store for its transcode child). Here, the lowest module that reads sources, so that the sealed
// reader, Media, S3 and the worker's source channel share one definition of each.

/// Bytes read at any offset, blocking: a file, a sealed source's plaintext, a source channel.
public protocol RandomAccessBytes: AnyObject {
    /// The number of bytes; reads at or past it return 0.
    var size: Int { get }
    /// Reads up to `buffer.count` bytes at `offset` and returns how many were read: fewer only at
    /// the end (0 at or past it). A failure throws, naming the source and the reason.
    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Bytes read at any offset, asynchronously: an object in a bucket.
public protocol RandomAccessSource: Sendable {
    /// The number of bytes.
    var size: Int { get }
    /// The `length` bytes at `offset`, or fewer only where the source ends (none at or past it).
    func read(offset: Int, length: Int) async throws -> ByteBuffer
}

/// A read that failed for the source's sake rather than its bytes' (a network, an object replaced
/// while it was read, the process serving it gone): another attempt may read it whole. Thrown by
/// readers whose bytes come from elsewhere, so a transcode tells it from damaged input.
public struct SourceUnavailableError: Error, CustomStringConvertible, Sendable {
    /// The source, as its messages name it (a path, an `s3://` URL).
    public let source: String
    /// Why, as the process that failed to read it said.
    public let reason: String

    public init(source: String, reason: String) {
        self.source = source
        self.reason = reason
    }

    public var description: String { "\(source): \(reason)" }
}

/// A regular file read with `pread`: a plain source, a sealed one's ciphertext, or what a worker
/// serves its child. Thread-safe (`pread` has no shared position), so it is also a
/// ``RandomAccessSource``, whose reads block the caller for one local read.
public final class RandomAccessFile: RandomAccessBytes, RandomAccessSource, @unchecked Sendable {
    /// The file, as messages name it.
    public let name: String
    public let size: Int
    private let descriptor: Int32

    /// Opens `path` for reading.
    public convenience init(path: String) throws(VaultError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw VaultError(file: path, reason: "cannot open: \(systemErrorText(code))", systemError: code)
        }
        try self.init(descriptor: fd, name: path)
    }

    /// Takes `descriptor` (closed with this object, or here when it is not a regular file).
    public init(descriptor: Int32, name: String) throws(VaultError) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let code = errno
            close(descriptor)
            throw VaultError(file: name, reason: "cannot stat: \(systemErrorText(code))", systemError: code)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw VaultError(file: name, reason: "not a regular file")
        }
        self.name = name
        self.descriptor = descriptor
        size = Int(info.st_size)
    }

    deinit { close(descriptor) }

    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard offset >= 0 else { throw VaultError(file: name, reason: "read at negative offset \(offset)") }
        var done = 0
        while done < buffer.count {
            let got = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if got < 0 {
                let code = errno
                if code == EINTR { continue }
                throw VaultError(file: name, reason: "read at \(offset + done): \(systemErrorText(code))", systemError: code)
            }
            if got == 0 { break }
            done += got
        }
        return done
    }

    public func read(offset: Int, length: Int) async throws -> ByteBuffer {
        let count = max(0, min(length, size - offset))
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            try read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: raw.prefix(count)))
        }
        return buffer
    }
}
