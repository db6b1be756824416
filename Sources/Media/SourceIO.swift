import CFFmpeg
import CLinux
import Foundation
import Vault

/// `AVERROR(EINVAL)`: FFmpeg's error codes are negated `errno` values on POSIX systems.
private let invalidArgument = -EINVAL

/// A plain source file, opened once without passing through any symbolic link: what the demuxer
/// reads of a source given by path that is not sealed.
enum PlainSourceFile {
    static func open(path: String) throws(MediaError) -> RandomAccessFile {
        let fd = clinux_open_no_symlinks(path)
        guard fd >= 0 else {
            let reason = errno == ELOOP ? "its path passes through a symbolic link" : String(cString: strerror(errno)).lowercased()
            throw MediaError(operation: "open", reason: reason)
        }
        do throws(VaultError) {
            return try RandomAccessFile(descriptor: fd, name: path)
        } catch {
            // RandomAccessFile closed the descriptor; its reason is "not a regular file" or fstat's.
            throw MediaError(operation: "open", reason: error.reason)
        }
    }
}

/// The read position of a source's AVIO and the first read failure, shared with the C callbacks
/// through the opaque pointer.
final class SourceCursor {
    let reader: any RandomAccessBytes
    private(set) var position = 0
    /// The first error the reader threw. It sticks: every later read fails too, so a demuxer that
    /// resynchronises past a bad chunk can never turn a tampered file into a shorter good one.
    private(set) var failure: (any Error)?

    init(reader: any RandomAccessBytes) {
        self.reader = reader
    }

    /// `read_packet`: bytes read, `AVERROR_EOF` at the end, `AVERROR(EIO)` when a chunk fails.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int32 {
        guard failure == nil else { return AVErr.io }
        do {
            let count = try reader.read(at: position, into: buffer)
            guard count > 0 else { return AVErr.eof }
            position += count
            return Int32(count)
        } catch {
            failure = error
        }
        return AVErr.io
    }

    /// `seek`: `SEEK_SET`, `SEEK_CUR`, `SEEK_END` (with or without `AVSEEK_FORCE`) and
    /// `AVSEEK_SIZE`. Positions past the end are allowed; reading there is end of file.
    func seek(offset: Int64, whence: Int32) -> Int64 {
        if whence & AVSEEK_SIZE != 0 { return Int64(reader.size) }
        let base: Int
        switch whence & ~AVSEEK_FORCE {
        case SEEK_SET: base = 0
        case SEEK_CUR: base = position
        case SEEK_END: base = reader.size
        default: return Int64(invalidArgument)
        }
        let (target, overflow) = Int64(base).addingReportingOverflow(offset)
        guard !overflow, target >= 0 else { return Int64(invalidArgument) }
        position = Int(target)
        return target
    }
}

/// A read-only, seekable `AVIOContext` over any `RandomAccessBytes` (a file, a source channel):
/// for a sealed source the demuxer sees the upload's plaintext, which exists only in memory, one
/// chunk at a time.
///
/// Owns the context and its buffer (freed in `deinit`, `ctx->buffer` rather than the buffer
/// allocated here, because libavformat may have replaced it while probing) and the retained
/// cursor the callbacks reach through the opaque pointer. The format context using it must be
/// closed first; ``InputFile`` holds it for as long as its format context lives.
final class SourceIO {
    private let context: UnsafeMutablePointer<AVIOContext>
    private let cursor: Unmanaged<SourceCursor>

    /// 64 KiB: libavformat's reads are at most this big, and a chunk (1 MiB by default) serves
    /// many of them from the reader's cache.
    private static let bufferSize: Int32 = 64 * 1024

    init(reader: any RandomAccessBytes) throws(MediaError) {
        cursor = Unmanaged.passRetained(SourceCursor(reader: reader))
        guard let buffer = av_malloc(Int(Self.bufferSize)) else {
            cursor.release()
            throw MediaError(operation: "create input", reason: "out of memory", code: AVErr.noMemory)
        }
        guard let io = avio_alloc_context(
            buffer.assumingMemoryBound(to: UInt8.self), Self.bufferSize, 0,
            cursor.toOpaque(), Self.readPacket, nil, Self.seek
        ) else {
            av_free(buffer)
            cursor.release()
            throw MediaError(operation: "create input", reason: "out of memory", code: AVErr.noMemory)
        }
        context = io
    }

    deinit {
        av_freep(&context.pointee.buffer)
        var io: UnsafeMutablePointer<AVIOContext>? = context
        avio_context_free(&io)
        cursor.release()
    }

    /// The first read failure, if any; for a sealed source it says which chunk and why.
    var failure: (any Error)? { cursor.takeUnretainedValue().failure }

    /// Lends the context, to install it as a format context's `pb`.
    func withContext<Result>(_ body: (UnsafeMutablePointer<AVIOContext>) throws -> Result) rethrows -> Result {
        try body(context)
    }

    private static let readPacket: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int32) -> Int32 = {
        opaque, buffer, size in
        guard let opaque, let buffer, size > 0 else { return 0 }
        return Unmanaged<SourceCursor>.fromOpaque(opaque).takeUnretainedValue()
            .read(into: UnsafeMutableRawBufferPointer(start: buffer, count: Int(size)))
    }

    private static let seek: @convention(c) (UnsafeMutableRawPointer?, Int64, Int32) -> Int64 = { opaque, offset, whence in
        guard let opaque else { return Int64(invalidArgument) }
        return Unmanaged<SourceCursor>.fromOpaque(opaque).takeUnretainedValue().seek(offset: offset, whence: whence)
    }
}
