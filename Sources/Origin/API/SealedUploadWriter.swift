import NIOCore
import Store
import Vault

/// What of an upload is sealed and stored, as recorded after each step: whole chunks in stored
/// parts, and the sealed tail (the bytes after them) by generation.
struct SealedProgress: Sendable, Equatable {
    /// Whole chunks in the stored parts: always `partTags.count × chunksPerPart`.
    var sealedChunks = 0
    /// What completion needs of each stored part, in order.
    var partTags: [String] = []
    /// The stored tail's generation; 0 when there is none.
    var tailGeneration = 0
    /// The plaintext bytes in the stored tail.
    var tailLength = 0
}

/// Turns plaintext into a sealed upload in a ``SealedUploadTarget``, holding at most one part's
/// plaintext in memory: every `chunksPerPart` whole chunks are sealed and stored as a part; at the
/// end the rest and the final chunk make the last part. Part 1 starts with the header.
///
/// A resumable upload keeps the bytes that do not yet make a part as a sealed tail
/// (``keepTail()``), and reports each stored step to `commit` before it counts; a one-request
/// upload commits nothing. Used by one task at a time.
final class SealedUploadWriter: @unchecked Sendable {
    let id: String
    let target: any SealedUploadTarget
    let sealer: SealedChunkSealer
    /// The target's handle (a multipart upload id).
    let handle: String
    let chunksPerPart: Int
    private(set) var progress: SealedProgress
    /// Records a stored step (fenced: throws when this writer no longer holds the upload).
    private let commit: @Sendable (SealedProgress) async throws -> Void
    /// Called before each write to the store: throws when the writer no longer holds the upload.
    private let fence: @Sendable () async throws -> Void
    /// Plaintext after the sealed chunks: the stored tail's bytes, then what arrived since.
    private var buffer: [UInt8]

    var chunkSize: Int { sealer.chunkSize }
    private var partPlaintext: Int { chunksPerPart * chunkSize }
    /// Bytes received, stored or not.
    var received: Int { progress.sealedChunks * chunkSize + buffer.count }
    /// Bytes stored and recorded: what `Upload-Offset` may say.
    var durable: Int { progress.sealedChunks * chunkSize + progress.tailLength }

    /// The most whole chunks a part holds for an upload of `length` bytes, so it fits S3's 10,000
    /// parts; at least 5, so parts of 1 MiB chunks are over S3's 5 MiB minimum.
    static func chunksPerPart(length: Int, chunkSize: Int) -> Int {
        max(5, (length / chunkSize + 1 + 9_998) / 9_999)
    }

    /// - Parameter tail: the stored tail's plaintext (``SealedProgress/tailLength`` bytes).
    init(
        id: String, target: any SealedUploadTarget, sealer: SealedChunkSealer, handle: String, chunksPerPart: Int,
        progress: SealedProgress = SealedProgress(), tail: [UInt8] = [],
        fence: @escaping @Sendable () async throws -> Void = {},
        commit: @escaping @Sendable (SealedProgress) async throws -> Void = { _ in }
    ) {
        precondition(tail.count == progress.tailLength, "the tail given is not the recorded one")
        self.id = id
        self.target = target
        self.sealer = sealer
        self.handle = handle
        self.chunksPerPart = chunksPerPart
        self.progress = progress
        self.commit = commit
        self.fence = fence
        buffer = tail
        buffer.reserveCapacity(chunksPerPart * sealer.chunkSize)
    }

    // Plaintext does not outlive the writer in freed memory.
    deinit { buffer.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }

    /// Takes more plaintext, storing a part whenever one fills.
    func append(_ bytes: ByteBuffer) async throws {
        var bytes = bytes
        while bytes.readableBytes > 0 {
            let take = min(bytes.readableBytes, partPlaintext - buffer.count)
            bytes.withUnsafeReadableBytes { buffer.append(contentsOf: $0.prefix(take)) }
            bytes.moveReaderIndex(forwardBy: take)
            if buffer.count == partPlaintext { try await storePart(final: false) }
        }
    }

    /// Stores what arrived since the last step as a new tail generation, then records it: from
    /// then on those bytes are durable. Nothing to do when nothing arrived.
    func keepTail() async throws {
        guard buffer.count != progress.tailLength else { return }
        let generation = progress.tailGeneration + 1
        let sealed = try buffer.withUnsafeBytes { try sealer.sealTail($0, context: Self.tailContext(progress.sealedChunks, generation)) }
        try await fence()
        try await target.writeTail(id, generation: generation, bytes: ByteBuffer(bytes: sealed))
        let previous = progress.tailGeneration
        var next = progress
        next.tailGeneration = generation
        next.tailLength = buffer.count
        try await commit(next)
        progress = next
        if previous > 0 { try? await target.removeTail(id, generation: previous) }
    }

    /// Seals the rest and the final chunk as the last part and completes the sealed file; returns
    /// its size. The caller records the completion.
    func finish() async throws -> Int {
        try await storePart(final: true)
        let size = SealedSource.sealedSize(plaintextSize: received, chunkSize: chunkSize, uploadIDLength: id.utf8.count)
        try await target.complete(id, handle: handle, partTags: progress.partTags, size: size)
        return size
    }

    /// What authenticates a tail: the chunk it starts at and its generation.
    static func tailContext(_ firstChunk: Int, _ generation: Int) -> String { "chunk \(firstChunk) generation \(generation)" }

    /// Seals the buffer's whole chunks (and with `final`, the final chunk) into one part, stores
    /// it and records it; the buffer then holds what is left.
    private func storePart(final: Bool) async throws {
        let whole = buffer.count / chunkSize
        let finalLength = final ? buffer.count - whole * chunkSize : 0
        let number = progress.partTags.count + 1
        let header = number == 1 ? sealer.header : []
        let record = chunkSize + SealedChunkSealer.tagLength
        let size = header.count + whole * record + (final ? finalLength + SealedChunkSealer.tagLength : 0)
        var part = ByteBufferAllocator().buffer(capacity: size)
        part.writeBytes(header)
        let first = progress.sealedChunks
        try part.writeWithUnsafeMutableBytes(minimumWritableBytes: size - header.count) { out in
            try buffer.withUnsafeBytes { plain in
                for index in 0..<whole {
                    try sealer.sealChunk(
                        UnsafeRawBufferPointer(rebasing: plain[(index * chunkSize)..<((index + 1) * chunkSize)]), index: first + index, final: false,
                        into: UnsafeMutableRawBufferPointer(rebasing: out[(index * record)..<((index + 1) * record)])
                    )
                }
                if final {
                    let start = whole * record
                    try sealer.sealChunk(
                        UnsafeRawBufferPointer(rebasing: plain[(whole * chunkSize)...]), index: first + whole, final: true,
                        into: UnsafeMutableRawBufferPointer(rebasing: out[start..<(start + finalLength + SealedChunkSealer.tagLength)])
                    )
                }
            }
            return size - header.count
        }
        let offset = number == 1 ? 0 : sealer.header.count + first * record
        try await fence()
        let tag = try await target.putPart(id, handle: handle, number: number, offset: offset, bytes: part)
        var next = progress
        next.partTags.append(tag)
        if !final {
            next.sealedChunks += whole
            next.tailGeneration = 0
            next.tailLength = 0
            try await commit(next)
            let previous = progress.tailGeneration
            progress = next
            buffer.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
            buffer.removeAll(keepingCapacity: true)
            // The tail's bytes are in the part now.
            if previous > 0 { try? await target.removeTail(id, generation: previous) }
        } else {
            progress = next
        }
    }
}
