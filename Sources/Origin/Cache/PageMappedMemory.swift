@_spi(CustomByteBufferAllocator) import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// An object's bytes as L1 keeps them, and whether their pages may be lent to the kernel.
///
/// The fast path (``PlaybackFastPath``) sends a large body without copying it (``PageLender``): `vmsplice` gives the
/// socket references to the body's pages, which it holds until the client has the bytes, often
/// after L1 has let the object go. That is safe only for memory nobody can write again while the
/// kernel holds it: a mapping of its own (``PageMappedMemory``), never written after it was
/// filled, and unmapped (not recycled) when its last reference goes, so its pages are freed only
/// once the kernel's references are gone too. Memory from `malloc` could be handed out again and
/// rewritten under the socket. Only ``PageMappedMemory`` makes a lendable value.
struct ObjectBytes: Sendable {
    let buffer: ByteBuffer
    /// The buffer's storage is a mapping of its own, filled once: its pages may be lent.
    let lendable: Bool

    /// Bytes whose pages are never lent (small bodies, rewritten playlists).
    init(copied buffer: ByteBuffer) {
        self.buffer = buffer
        lendable = false
    }

    fileprivate init(mapped buffer: ByteBuffer) {
        self.buffer = buffer
        lendable = true
    }
}

/// Page-mapped storage for large bodies (see ``ObjectBytes``): each buffer is an anonymous private
/// mapping of its own, populated when made and unmapped when the buffer's storage is freed.
enum PageMappedMemory {
    /// Bodies smaller than this are copied into the socket: for them, lending costs more
    /// (two more system calls, the page references) than the copy it saves.
    static let minimumBytes = 64 * 1024

    /// An object's bytes: read by `fill`, which gets `size` writable bytes and returns how many it
    /// wrote. Large ones go to a mapping of their own; small ones to ordinary memory.
    static func make(size: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows -> ObjectBytes {
        guard size >= minimumBytes else {
            var buffer = ByteBufferAllocator().buffer(capacity: size)
            _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { try fill(UnsafeMutableRawBufferPointer(rebasing: $0.prefix(size))) }
            return ObjectBytes(copied: buffer)
        }
        // Exactly `size` bytes: NIO's own allocation would round up to a power of two.
        let pointer = map(size)
        let bytes = UnsafeMutableRawBufferPointer(start: pointer, count: size)
        let written: Int
        do {
            written = try fill(bytes)
        } catch {
            unmap(pointer)
            throw error
        }
        return ObjectBytes(mapped: ByteBuffer(takingOwnershipOf: bytes, allocator: allocator, readerIndex: 0, writerIndex: written))
    }

    /// A copy of `bytes` (from L2, say) in the memory ``make(size:fill:)`` would choose.
    static func copy<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> ObjectBytes {
        make(size: bytes.count) { target in
            target.copyBytes(from: bytes)
            return bytes.count
        }
    }

    /// NIO's allocator over ``map(_:)``, which frees the buffers of ``make(size:fill:)`` (and gives
    /// any copy NIO makes of one a mapping of its own).
    static let allocator = ByteBufferAllocator(
        allocate: { size in PageMappedMemory.map(size) },
        reallocate: { pointer, oldSize, newSize in
            let moved = PageMappedMemory.map(newSize)
            if let pointer {
                moved.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
                PageMappedMemory.unmap(pointer)
            }
            return moved
        },
        deallocate: { pointer in PageMappedMemory.unmap(pointer) },
        copy: { target, source, count in target.copyMemory(from: source, byteCount: count) }
    )

    /// The mapping's length is kept in front of the bytes handed out; this many bytes keep the
    /// bytes 16-aligned, as malloc's are.
    private static let header = 16
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// A new anonymous mapping with room for `size` bytes, populated (one fault per mapping
    /// instead of one per page as it is filled). Out of address space or memory, the process
    /// stops, as it does when malloc fails under NIO.
    static func map(_ size: Int) -> UnsafeMutableRawPointer {
        let length = (size + header + pageSize - 1) / pageSize * pageSize
        guard let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0),
              base != MAP_FAILED
        else { fatalError("mmap of \(length) bytes for an L1 object failed: \(String(cString: strerror(errno)))") }
        base.storeBytes(of: length, as: Int.self)
        return base + header
    }

    static func unmap(_ pointer: UnsafeMutableRawPointer) {
        let base = pointer - header
        munmap(base, base.load(as: Int.self))
    }
}
