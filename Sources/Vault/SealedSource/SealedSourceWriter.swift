import Foundation

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
        let made: (header: [UInt8], dataKey: [UInt8], layout: SealedChunkLayout)
        do {
            made = try SealedSourceHeader.make(keyring: keyring, uploadID: uploadID, chunkSize: chunkSize)
        } catch let error as VaultError {
            throw VaultError(file: path, reason: error.reason)
        }
        var dataKey = made.dataKey
        let header = made.header
        let layout = made.layout

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
