import Foundation

/// Random access to a sealed source's plaintext, one chunk decrypted at a time.
///
/// Opening reads and checks the header, unwraps the data key with whichever keyring key the
/// header names, and authenticates the final chunk, so ``size`` is known to be right. Every
/// other chunk is authenticated when it is first read; the last chunk read stays decrypted in
/// memory, because demuxers read mostly forward in small pieces. Use from one thread at a time.
public final class SealedSourceReader: RandomAccessBytes {
    /// The sealed source, as errors name it: its path, or the name it was opened with.
    public let name: String
    /// The upload id from the header, authenticated.
    public let uploadID: String
    /// The master key that wrapped the data key.
    public let masterKeyID: String
    /// Plaintext bytes per chunk.
    public let chunkSize: Int
    /// The plaintext size: from the file size and the chunk layout, authenticated by the final chunk.
    public let size: Int

    private let sealedBytes: any RandomAccessBytes
    private var dataKey: [UInt8]
    private let layout: SealedChunkLayout
    private let headerLength: Int
    private let finalIndex: Int
    private let finalLength: Int
    private var cached: Int?
    private var plaintext: [UInt8]
    private var sealed: [UInt8]

    /// Opens the sealed file at `path` and unwraps its data key.
    /// - Parameter expectedUploadID: when given, a file sealed for another upload is an error.
    public convenience init(path: String, keyring: Keyring, expectedUploadID: String? = nil) throws {
        try self.init(bytes: try RandomAccessFile(path: path), name: path, keyring: keyring, expectedUploadID: expectedUploadID)
    }

    /// Opens a sealed source read from `bytes` (a file, an object served over a channel) and
    /// unwraps its data key. `name` is what errors call it. `bytes`' own failures pass through
    /// as they are; everything wrong with the sealed bytes is a ``VaultError`` naming `name`.
    /// - Parameter expectedUploadID: when given, a source sealed for another upload is an error.
    public init(bytes: any RandomAccessBytes, name: String, keyring: Keyring, expectedUploadID: String? = nil) throws {
        let fileSize = bytes.size
        let headerBytes = try Self.readFully(bytes, count: min(fileSize, SealedSource.headerLength(uploadIDLength: SealedSource.maximumUploadIDLength)), at: 0)
        let header = try SealedSourceHeader(bytes: headerBytes, fileSize: fileSize, path: name)
        if let expectedUploadID, expectedUploadID != header.uploadID {
            throw VaultError(file: name, reason: "sealed for upload '\(header.uploadID)', not '\(expectedUploadID)'")
        }
        guard let master = keyring.masterKey(id: header.wrapped.masterKeyID) else {
            throw VaultError(file: name, reason: "the data key \(keyring.notInKeyring(header.wrapped.masterKeyID))")
        }
        guard var dataKey = try master.unwrap(header.wrapped, context: header.wrapContext) else {
            throw VaultError(
                file: name,
                reason: "the data key does not authenticate under master key \(master.id) (the header was modified, or the file was sealed for another upload)"
            )
        }

        // Chunks: k full ones, then a final one of r < C bytes plus its tag.
        let chunkSize = header.chunkSize
        let record = chunkSize + SealedSource.tagLength
        let body = fileSize - header.length
        let fullChunks = body / record
        let remainder = body % record
        guard remainder >= SealedSource.tagLength else {
            cleanse(&dataKey)
            throw VaultError(file: name, reason: "file is truncated: no final chunk (\(body) bytes of chunks with chunk size \(chunkSize))")
        }

        self.name = name
        self.uploadID = header.uploadID
        self.masterKeyID = header.wrapped.masterKeyID
        self.chunkSize = chunkSize
        self.sealedBytes = bytes
        self.dataKey = dataKey
        self.layout = SealedChunkLayout(chunkSize: chunkSize, noncePrefix: header.noncePrefix, uploadID: header.uploadID)
        self.headerLength = header.length
        self.finalIndex = fullChunks
        self.finalLength = remainder - SealedSource.tagLength
        self.size = fullChunks * chunkSize + finalLength
        plaintext = [UInt8](repeating: 0, count: chunkSize)
        sealed = [UInt8](repeating: 0, count: record)
        // The length is only a claim until the final chunk authenticates at the index it implies.
        try load(finalIndex)
    }

    deinit {
        cleanse(&dataKey)
        cleanse(&plaintext)
    }

    /// Reads up to `buffer.count` plaintext bytes starting at `offset`; returns how many were read,
    /// fewer only at the end (0 at or beyond it). Reads may span chunks. A chunk that does not
    /// authenticate is an error naming it, and none of its bytes are returned.
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard offset >= 0 else {
            throw VaultError(file: name, reason: "read at negative offset \(offset)")
        }
        var copied = 0
        var position = offset
        while copied < buffer.count, position < size {
            let index = position / chunkSize
            try load(index)
            let within = position - index * chunkSize
            let count = min(length(of: index) - within, buffer.count - copied)
            plaintext.withUnsafeBytes { chunk in
                (buffer.baseAddress! + copied).copyMemory(from: chunk.baseAddress! + within, byteCount: count)
            }
            copied += count
            position += count
        }
        return copied
    }

    private func length(of index: Int) -> Int {
        index == finalIndex ? finalLength : chunkSize
    }

    /// Decrypts chunk `index` into `plaintext`, unless it is already there.
    private func load(_ index: Int) throws {
        if cached == index { return }
        cached = nil
        let count = length(of: index)
        let final = index == finalIndex
        let offset = layout.offset(of: index, headerLength: headerLength)
        let total = count + SealedSource.tagLength
        let got = try sealed.withUnsafeMutableBytes { buffer in
            try sealedBytes.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer.prefix(total)))
        }
        if got < total {
            throw VaultError(file: name, reason: "chunk \(index) ends early: the file was cut while it was being read")
        }
        let aad = layout.aad(index, final: final)
        let verified = try sealed.withUnsafeBytes { input in
            try aad.withUnsafeBytes { aadBytes in
                try plaintext.withUnsafeMutableBytes { out in
                    try AES256GCM.open(
                        UnsafeRawBufferPointer(rebasing: input.prefix(count)),
                        tag: UnsafeRawBufferPointer(rebasing: input[count..<total]),
                        key: dataKey, nonce: layout.nonce(index), aad: aadBytes,
                        plaintext: UnsafeMutableRawBufferPointer(rebasing: out.prefix(count)),
                        operation: "open chunk \(index)"
                    )
                }
            }
        }
        guard verified else {
            let reason = final
                ? "chunk \(index) (the final chunk) does not authenticate: the file is truncated, extended or modified"
                : "chunk \(index) does not authenticate: the file is modified, or its chunks are reordered or from another file"
            throw VaultError(file: name, reason: reason)
        }
        cached = index
    }

    private static func readFully(_ bytes: any RandomAccessBytes, count: Int, at offset: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let done = try buffer.withUnsafeMutableBytes { try bytes.read(at: offset, into: $0) }
        return Array(buffer.prefix(done))
    }
}
