import COpenSSL
import Foundation

// MARK: - Format

/// An uploaded source stored encrypted: chunked AES-256-GCM, so a demuxer can seek anywhere in it
/// through a decrypting read callback and decrypt only the chunk it lands in. Write one with
/// ``SealedSourceWriter``, read one with ``SealedSourceReader``.
///
/// ## Format, version 1
///
/// All integers are big-endian.
///
/// ```
/// offset  size  field
/// 0       8     magic             "SGSRC" 0x01 0x00 0x00
/// 8       2     version           1
/// 10      4     chunk size        C, 256 … 64 MiB (plaintext bytes per chunk)
/// 14      4     nonce prefix      random, fixed for the file
/// 18      2     upload id length  n, 1 … 255
/// 20      n     upload id         UTF-8, no control characters
/// 20+n    16    master key id     ASCII lowercase hex: the master key that wrapped the data key
/// 36+n    12    wrap nonce        ┐
/// 48+n    32    wrapped data key  ├ AES-256-GCM of the file's random 256-bit data key
/// 80+n    16    wrap tag          ┘ under the master key (AAD below)
/// 96+n          chunks            chunk i at 96+n + i·(C+16): ciphertext ‖ 16-byte tag
/// ```
///
/// - Every chunk but the last holds exactly C plaintext bytes. The last chunk is always present and
///   holds 0 … C−1 bytes, so it is empty when the size is a multiple of C (or 0). A plaintext of P
///   bytes has ⌊P/C⌋+1 chunks and the file is 96+n + P + 16·(⌊P/C⌋+1) bytes: the size and the
///   chunk layout follow from the file length alone, with no length field to trust.
/// - Chunk i is AES-256-GCM under the data key with nonce = nonce prefix ‖ u64 i and
///   AAD = u16 n ‖ upload id ‖ u64 i ‖ u8 final (1 for the last chunk, else 0). A chunk moved to
///   another index, copied from another file or upload, edited, or a last chunk dropped or followed
///   by more bytes does not authenticate. Dropping whole chunks from the end leaves a length with
///   no room for a final chunk ("file is truncated: no final chunk").
/// - The wrap's AAD is `"streamgate/data-key/v1|" ‖ master key id ‖ "|"` followed by every header
///   byte before the wrap nonce (magic … master key id, so the upload id and chunk size too): any
///   edit to the header makes the data key fail to unwrap. The master key is found by its id in the
///   ``Keyring``, so sources sealed before a master key rotation still open.
/// - The reader authenticates the final chunk when it opens the file, so `size` is never a guess.
public enum SealedSource {
    /// The first 8 bytes of every sealed source.
    public static let magic: [UInt8] = Array("SGSRC".utf8) + [0x01, 0x00, 0x00]
    /// The only format version this code writes and reads.
    public static let formatVersion = 1
    /// 1 MiB: large enough that the 16-byte tags cost nothing, small enough that a demuxer's
    /// random reads decrypt little it does not use.
    public static let defaultChunkSize = 1 << 20
    /// Chunk sizes the writer accepts and the reader believes.
    public static let chunkSizeRange = 256...(64 << 20)
    /// The longest upload id, in UTF-8 bytes.
    public static let maximumUploadIDLength = 255

    /// Whether the file at `path` starts with the sealed-source magic. False when it cannot be
    /// read; a sealed source whose header is otherwise malformed still answers true, so the reader
    /// can say what is wrong with it.
    public static func isSealed(path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: magic.count)
        let count = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return count == magic.count && head == magic
    }

    /// The size of the sealed file for a plaintext of `plaintextSize` bytes.
    public static func sealedSize(plaintextSize: Int, chunkSize: Int = defaultChunkSize, uploadIDLength: Int) -> Int {
        headerLength(uploadIDLength: uploadIDLength) + plaintextSize + AES256GCM.tagLength * (plaintextSize / chunkSize + 1)
    }

    static let fixedHeaderLength = 96
    static let masterKeyIDLength = 16
    static let noncePrefixLength = 4
    static let tagLength = AES256GCM.tagLength

    /// The header's length, which is where chunk 0 starts: 96 bytes plus the upload id's.
    public static func headerLength(uploadIDLength: Int) -> Int { fixedHeaderLength + uploadIDLength }

    /// Upload ids end up in headers, AADs and error messages: short, valid UTF-8, printable.
    static func validate(uploadID: String) throws {
        let length = uploadID.utf8.count
        guard (1...maximumUploadIDLength).contains(length) else {
            throw VaultError("upload id must be 1 to \(maximumUploadIDLength) UTF-8 bytes, got \(length)")
        }
        guard !uploadID.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw VaultError("upload id must not contain control characters")
        }
    }
}

/// What the writer and the reader derive the same way from the header: nonces and AADs per chunk.
struct SealedChunkLayout {
    let chunkSize: Int
    let noncePrefix: [UInt8]
    /// u16 n ‖ upload id: the start of every chunk's AAD.
    let aadPrefix: [UInt8]

    init(chunkSize: Int, noncePrefix: [UInt8], uploadID: String) {
        self.chunkSize = chunkSize
        self.noncePrefix = noncePrefix
        let id = Array(uploadID.utf8)
        aadPrefix = bigEndian(UInt16(id.count)) + id
    }

    func nonce(_ index: Int) -> [UInt8] {
        noncePrefix + bigEndian(UInt64(index))
    }

    func aad(_ index: Int, final: Bool) -> [UInt8] {
        aadPrefix + bigEndian(UInt64(index)) + [final ? 1 : 0]
    }

    /// Where chunk `index` starts in a file whose header is `headerLength` bytes.
    func offset(of index: Int, headerLength: Int) -> Int {
        headerLength + index * (chunkSize + SealedSource.tagLength)
    }
}

private func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

private func systemErrorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

private func cleanse(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buffer in
        if let base = buffer.baseAddress { OPENSSL_cleanse(base, buffer.count) }
    }
}

// MARK: - Writer

/// Writes an uploaded source straight into a sealed file: plaintext is held in memory one chunk at a
/// time and never reaches the disk.
///
/// Use from one thread (or task) at a time. `append` seals every chunk as soon as it fills;
/// `finish` seals the last one and makes the file durable. A writer that is neither finished nor
/// discarded when it goes away removes its file, because a file without its final chunk is useless.
public final class SealedSourceWriter {
    private enum State { case open, finished, failed, discarded }

    /// The sealed file.
    public let path: String
    /// The upload id bound into the key wrap and every chunk.
    public let uploadID: String
    /// Plaintext bytes per chunk.
    public let chunkSize: Int
    /// Bytes appended so far.
    public private(set) var plaintextBytes = 0

    private var fd: Int32
    private var state = State.open
    private var dataKey: [UInt8]
    private let layout: SealedChunkLayout
    private var pending: [UInt8]
    private var pendingCount = 0
    private var sealed: [UInt8]
    private var nextChunk = 0

    /// Creates `path` (O_EXCL, mode 0600) and writes the header. `uploadID` is bound into the key
    /// wrap and every chunk's AAD. An existing file is an error with `systemError == EEXIST`.
    public init(path: String, keyring: Keyring, uploadID: String, chunkSize: Int = SealedSource.defaultChunkSize) throws {
        guard SealedSource.chunkSizeRange.contains(chunkSize) else {
            throw VaultError(file: path, reason: "chunk size \(chunkSize) is out of range \(SealedSource.chunkSizeRange.lowerBound)…\(SealedSource.chunkSizeRange.upperBound)")
        }
        do {
            try SealedSource.validate(uploadID: uploadID)
        } catch let error as VaultError {
            throw VaultError(file: path, reason: error.reason)
        }
        var dataKey = try SecureRandom.bytes(WrappedDataKey.keyLength)
        let noncePrefix = try SecureRandom.bytes(SealedSource.noncePrefixLength)
        let layout = SealedChunkLayout(chunkSize: chunkSize, noncePrefix: noncePrefix, uploadID: uploadID)

        var header = SealedSource.magic
        header += bigEndian(UInt16(SealedSource.formatVersion))
        header += bigEndian(UInt32(chunkSize))
        header += noncePrefix
        header += layout.aadPrefix
        header += Array(keyring.current.id.utf8)
        let wrapped: WrappedDataKey
        do {
            wrapped = try keyring.wrap(dataKey: dataKey, context: header)
        } catch {
            cleanse(&dataKey)
            throw error
        }
        header += wrapped.nonce + wrapped.ciphertext + wrapped.tag
        assert(header.count == SealedSource.headerLength(uploadIDLength: uploadID.utf8.count))

        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            cleanse(&dataKey)
            let reason = code == EEXIST ? "already exists" : "cannot create: \(systemErrorText(code))"
            throw VaultError(file: path, reason: reason, systemError: code)
        }
        self.path = path
        self.uploadID = uploadID
        self.chunkSize = chunkSize
        self.fd = fd
        self.dataKey = dataKey
        self.layout = layout
        pending = [UInt8](repeating: 0, count: chunkSize)
        sealed = [UInt8](repeating: 0, count: chunkSize + SealedSource.tagLength)
        // From here a failure runs deinit, which removes the half-made file.
        do {
            try header.withUnsafeBytes { try writeAll($0, what: "write header") }
        } catch {
            state = .failed
            throw error
        }
    }

    deinit {
        if state == .open || state == .failed { discard() }
        cleanse(&dataKey)
    }

    /// Appends plaintext. Whole chunks are sealed and written as they fill; the rest waits in
    /// memory. After a failure the writer refuses more and should be discarded.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        try checkOpen("append")
        do {
            var input = bytes
            while !input.isEmpty {
                if pendingCount == 0, input.count >= chunkSize {
                    // Whole chunks straight from the caller's buffer: no copy.
                    try seal(UnsafeRawBufferPointer(rebasing: input.prefix(chunkSize)), final: false)
                    input = UnsafeRawBufferPointer(rebasing: input.dropFirst(chunkSize))
                    continue
                }
                let count = min(chunkSize - pendingCount, input.count)
                pending.withUnsafeMutableBytes { buffer in
                    buffer.baseAddress!.advanced(by: pendingCount).copyMemory(from: input.baseAddress!, byteCount: count)
                }
                pendingCount += count
                input = UnsafeRawBufferPointer(rebasing: input.dropFirst(count))
                // A full chunk is never the last one (the last holds fewer than C bytes), so it can
                // be sealed at once.
                if pendingCount == chunkSize {
                    try pending.withUnsafeBytes { try seal($0, final: false) }
                    pendingCount = 0
                }
            }
            plaintextBytes += bytes.count
        } catch {
            state = .failed
            throw error
        }
    }

    /// Appends plaintext.
    public func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    /// Seals the last (final-flagged) chunk, fsyncs the file and its folder, and closes it.
    public func finish() throws {
        try checkOpen("finish")
        do {
            try pending.withUnsafeBytes { try seal(UnsafeRawBufferPointer(rebasing: $0.prefix(pendingCount)), final: true) }
            guard fsync(fd) == 0 else {
                let code = errno
                throw VaultError(file: path, reason: "fsync: \(systemErrorText(code))", systemError: code)
            }
            let closed = close(fd)
            let code = errno
            fd = -1
            guard closed == 0 else {
                throw VaultError(file: path, reason: "close: \(systemErrorText(code))", systemError: code)
            }
            syncFolder()
            state = .finished
            cleanse(&pending)
            pendingCount = 0
        } catch {
            state = .failed
            throw error
        }
    }

    /// Closes and removes the file, finished or not. Safe to call twice and after a failure.
    public func discard() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        if state != .discarded {
            unlink(path)
            state = .discarded
        }
        cleanse(&pending)
        pendingCount = 0
    }

    private func checkOpen(_ operation: String) throws {
        switch state {
        case .open: return
        case .finished: throw VaultError(file: path, reason: "\(operation): the sealed source is already finished")
        case .failed: throw VaultError(file: path, reason: "\(operation): an earlier write failed; discard the sealed source")
        case .discarded: throw VaultError(file: path, reason: "\(operation): the sealed source was discarded")
        }
    }

    private func seal(_ plaintext: UnsafeRawBufferPointer, final: Bool) throws {
        let index = nextChunk
        let count = plaintext.count
        let aad = layout.aad(index, final: final)
        try sealed.withUnsafeMutableBytes { out in
            try aad.withUnsafeBytes { aadBytes in
                try AES256GCM.seal(
                    plaintext, key: dataKey, nonce: layout.nonce(index), aad: aadBytes,
                    ciphertext: UnsafeMutableRawBufferPointer(rebasing: out.prefix(count)),
                    tag: UnsafeMutableRawBufferPointer(rebasing: out[count..<(count + SealedSource.tagLength)]),
                    operation: "seal chunk \(index)"
                )
            }
        }
        try sealed.withUnsafeBytes { try writeAll(UnsafeRawBufferPointer(rebasing: $0.prefix(count + SealedSource.tagLength)), what: "write chunk \(index)") }
        nextChunk += 1
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer, what: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                let code = errno
                if code == EINTR { continue }
                throw VaultError(file: path, reason: "\(what): \(systemErrorText(code))", systemError: code)
            }
            offset += written
        }
    }

    /// A new file's name is durable only once its folder is synced too. Best effort: some file
    /// systems refuse to fsync a directory, and the data itself is already on disk.
    private func syncFolder() {
        let folder = (path as NSString).deletingLastPathComponent
        let dir = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { return }
        _ = fsync(dir)
        close(dir)
    }
}

// MARK: - Reader

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

/// A parsed sealed-source header. Parsing is strict: every field is checked, and a problem is an
/// error naming the field and the file.
struct SealedSourceHeader {
    let chunkSize: Int
    let noncePrefix: [UInt8]
    let uploadID: String
    let wrapped: WrappedDataKey
    /// The header bytes the wrap authenticates: everything before the wrap nonce.
    let wrapContext: [UInt8]
    /// The whole header's length: where chunk 0 starts.
    let length: Int

    init(bytes: [UInt8], fileSize: Int, path: String) throws {
        var offset = 0
        func malformed(_ field: String, _ problem: String) -> VaultError {
            VaultError(file: path, reason: "malformed sealed source header: field '\(field)' \(problem)")
        }
        func take(_ count: Int, _ field: String) throws -> [UInt8] {
            guard bytes.count - offset >= count else {
                throw malformed(field, "is truncated: the file is \(fileSize) bytes, the field needs bytes \(offset)..<\(offset + count)")
            }
            defer { offset += count }
            return Array(bytes[offset..<(offset + count)])
        }
        func integer(_ raw: [UInt8]) -> Int {
            raw.reduce(0) { $0 << 8 | Int($1) }
        }

        guard try take(SealedSource.magic.count, "magic") == SealedSource.magic else {
            throw malformed("magic", "is wrong: not a sealed source")
        }
        let version = integer(try take(2, "version"))
        guard version == SealedSource.formatVersion else {
            throw malformed("version", "is \(version); this build reads version \(SealedSource.formatVersion)")
        }
        let chunkSize = integer(try take(4, "chunk size"))
        guard SealedSource.chunkSizeRange.contains(chunkSize) else {
            throw malformed("chunk size", "is \(chunkSize), outside \(SealedSource.chunkSizeRange.lowerBound)…\(SealedSource.chunkSizeRange.upperBound)")
        }
        let noncePrefix = try take(SealedSource.noncePrefixLength, "nonce prefix")
        let idLength = integer(try take(2, "upload id length"))
        guard (1...SealedSource.maximumUploadIDLength).contains(idLength) else {
            throw malformed("upload id length", "is \(idLength), outside 1…\(SealedSource.maximumUploadIDLength)")
        }
        let idBytes = try take(idLength, "upload id")
        guard let uploadID = String(bytes: idBytes, encoding: .utf8), (try? SealedSource.validate(uploadID: uploadID)) != nil else {
            throw malformed("upload id", "is not printable UTF-8")
        }
        let masterKeyIDBytes = try take(SealedSource.masterKeyIDLength, "master key id")
        let masterKeyID = String(decoding: masterKeyIDBytes, as: UTF8.self)
        guard Hex.isLowercase(masterKeyID, count: SealedSource.masterKeyIDLength) else {
            throw malformed("master key id", "is not \(SealedSource.masterKeyIDLength) lowercase hex characters")
        }
        let wrapContext = Array(bytes[0..<offset])
        let nonce = try take(AES256GCM.nonceLength, "wrap nonce")
        let ciphertext = try take(WrappedDataKey.keyLength, "wrapped data key")
        let tag = try take(AES256GCM.tagLength, "wrap tag")

        self.chunkSize = chunkSize
        self.noncePrefix = noncePrefix
        self.uploadID = uploadID
        self.wrapped = WrappedDataKey(masterKeyID: masterKeyID, nonce: nonce, ciphertext: ciphertext, tag: tag)
        self.wrapContext = wrapContext
        self.length = offset
    }
}
