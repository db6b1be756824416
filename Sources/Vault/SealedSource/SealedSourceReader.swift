import Foundation

/// Random access to a sealed source's plaintext, one chunk decrypted at a time.
///
/// Opening reads and checks the header, unwraps the data key with whichever keyring key the
/// header names, and authenticates the final chunk, so ``size`` is known to be right. Every
/// other chunk is authenticated when it is first read; the last chunk read stays decrypted in
/// memory, because demuxers read mostly forward in small pieces. Use from one thread at a time.
public final class SealedSourceReader {
    /// The sealed file.
    public let path: String
    /// The upload id from the header, authenticated.
    public let uploadID: String
    /// The master key that wrapped the data key.
    public let masterKeyID: String
    /// Plaintext bytes per chunk.
    public let chunkSize: Int
    /// The plaintext size: from the file size and the chunk layout, authenticated by the final chunk.
    public let size: Int

    private let fd: Int32
    private var dataKey: [UInt8]
    private let layout: SealedChunkLayout
    private let headerLength: Int
    private let finalIndex: Int
    private let finalLength: Int
    private var cached: Int?
    private var plaintext: [UInt8]
    private var sealed: [UInt8]

    /// Opens a sealed source and unwraps its data key.
    /// - Parameter expectedUploadID: when given, a file sealed for another upload is an error.
    public init(path: String, keyring: Keyring, expectedUploadID: String? = nil) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw VaultError(file: path, reason: "cannot open: \(systemErrorText(code))", systemError: code)
        }
        var opened = false
        defer { if !opened { close(fd) } }

        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            throw VaultError(file: path, reason: "cannot stat: \(systemErrorText(code))", systemError: code)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw VaultError(file: path, reason: "not a regular file")
        }
        let fileSize = Int(info.st_size)
        let headerBytes = try Self.readFully(fd: fd, count: min(fileSize, SealedSource.headerLength(uploadIDLength: SealedSource.maximumUploadIDLength)), at: 0, path: path, what: "header")
        let header = try SealedSourceHeader(bytes: headerBytes, fileSize: fileSize, path: path)
        if let expectedUploadID, expectedUploadID != header.uploadID {
            throw VaultError(file: path, reason: "sealed for upload '\(header.uploadID)', not '\(expectedUploadID)'")
        }
        guard let master = keyring.masterKey(id: header.wrapped.masterKeyID) else {
            throw VaultError(file: path, reason: "the data key \(keyring.notInKeyring(header.wrapped.masterKeyID))")
        }
        guard var dataKey = try master.unwrap(header.wrapped, context: header.wrapContext) else {
            throw VaultError(
                file: path,
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
            throw VaultError(file: path, reason: "file is truncated: no final chunk (\(body) bytes of chunks with chunk size \(chunkSize))")
        }

        self.path = path
        self.uploadID = header.uploadID
        self.masterKeyID = header.wrapped.masterKeyID
        self.chunkSize = chunkSize
        self.fd = fd
        self.dataKey = dataKey
        self.layout = SealedChunkLayout(chunkSize: chunkSize, noncePrefix: header.noncePrefix, uploadID: header.uploadID)
        self.headerLength = header.length
        self.finalIndex = fullChunks
        self.finalLength = remainder - SealedSource.tagLength
        self.size = fullChunks * chunkSize + finalLength
        plaintext = [UInt8](repeating: 0, count: chunkSize)
        sealed = [UInt8](repeating: 0, count: record)
        opened = true
        // The length is only a claim until the final chunk authenticates at the index it implies.
        try load(finalIndex)
    }

    deinit {
        close(fd)
        cleanse(&dataKey)
        cleanse(&plaintext)
    }

    /// Reads up to `buffer.count` plaintext bytes starting at `offset`; returns how many were read,
    /// fewer only at the end (0 at or beyond it). Reads may span chunks. A chunk that does not
    /// authenticate is an error naming it, and none of its bytes are returned.
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard offset >= 0 else {
            throw VaultError(file: path, reason: "read at negative offset \(offset)")
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
            try Self.read(fd: fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer.prefix(total)), at: offset, path: path, what: "chunk \(index)")
        }
        if got < total {
            throw VaultError(file: path, reason: "chunk \(index) ends early: the file was cut while it was being read")
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
            throw VaultError(file: path, reason: reason)
        }
        cached = index
    }

    private static func readFully(fd: Int32, count: Int, at offset: Int, path: String, what: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let done = try bytes.withUnsafeMutableBytes { try read(fd: fd, into: $0, at: offset, path: path, what: what) }
        return Array(bytes.prefix(done))
    }

    /// Fills `buffer` from `offset`, retrying short reads and EINTR; fewer bytes only at end of file.
    private static func read(fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String, what: String) throws -> Int {
        var done = 0
        while done < buffer.count {
            let got = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if got < 0 {
                let code = errno
                if code == EINTR { continue }
                throw VaultError(file: path, reason: "read \(what): \(systemErrorText(code))", systemError: code)
            }
            if got == 0 { break }
            done += got
        }
        return done
    }
}
