import Foundation

/// Seals a sealed source (``SealedSource``, format version 1) one chunk at a time, in any process
/// that has the header and the keyring: what a resumable upload needs, whose chunks arrive over
/// several requests, possibly on several machines.
///
/// The header holds the data key only wrapped by the master key, so it may be kept anywhere (in
/// Redis); ``init(header:keyring:expectedUploadID:)`` unwraps it again. Chunk `i` is sealed exactly
/// as ``SealedSourceWriter`` seals it, so ``SealedSourceReader`` reads the result.
///
/// Bytes that do not yet fill a chunk can be kept between requests with ``sealTail(_:context:)``:
/// AES-256-GCM under the same data key with a fresh random nonce, so a retained tail is never
/// plaintext at rest and never reuses a chunk's nonce.
///
/// The caller must not seal one index twice with different plaintext (the chunk nonce is the
/// index): a resumable upload seals a chunk once its bytes are durable, and a retry of the same
/// bytes produces the same ciphertext.
public final class SealedChunkSealer: @unchecked Sendable {
    /// The header bytes: chunk 0 starts right after them.
    public let header: [UInt8]
    /// The upload id bound into the wrap and every chunk.
    public let uploadID: String
    /// Plaintext bytes per chunk.
    public let chunkSize: Int
    /// A sealed chunk's length: its plaintext plus the 16-byte tag.
    public static let tagLength = SealedSource.tagLength

    private var dataKey: [UInt8]
    private let layout: SealedChunkLayout

    /// A new header for `uploadID`: a fresh data key wrapped by the keyring's current master key
    /// and a fresh nonce prefix. The data key leaves only wrapped.
    public static func makeHeader(keyring: Keyring, uploadID: String, chunkSize: Int = SealedSource.defaultChunkSize) throws -> [UInt8] {
        var made = try SealedSourceHeader.make(keyring: keyring, uploadID: uploadID, chunkSize: chunkSize)
        cleanse(&made.dataKey)
        return made.header
    }

    /// Reads `header`, checks it names `expectedUploadID`, and unwraps its data key with whichever
    /// keyring key wrapped it.
    public init(header: [UInt8], keyring: Keyring, expectedUploadID: String) throws {
        let name = "upload \(expectedUploadID)"
        let parsed = try SealedSourceHeader(bytes: header, fileSize: header.count, path: name)
        guard parsed.length == header.count else {
            throw VaultError(file: name, reason: "the sealed header is \(header.count) bytes, its fields make \(parsed.length)")
        }
        guard parsed.uploadID == expectedUploadID else {
            throw VaultError(file: name, reason: "the sealed header is for upload '\(parsed.uploadID)'")
        }
        guard let master = keyring.masterKey(id: parsed.wrapped.masterKeyID) else {
            throw VaultError(file: name, reason: "the data key \(keyring.notInKeyring(parsed.wrapped.masterKeyID))")
        }
        guard let key = try master.unwrap(parsed.wrapped, context: parsed.wrapContext) else {
            throw VaultError(file: name, reason: "the data key does not authenticate under master key \(master.id)")
        }
        self.header = header
        uploadID = parsed.uploadID
        chunkSize = parsed.chunkSize
        dataKey = key
        layout = SealedChunkLayout(chunkSize: parsed.chunkSize, noncePrefix: parsed.noncePrefix, uploadID: parsed.uploadID)
    }

    deinit { cleanse(&dataKey) }

    /// Seals chunk `index` into `output` (`plaintext.count + 16` bytes): ciphertext ‖ tag. A chunk
    /// that is not `final` must hold exactly ``chunkSize`` bytes; the final one fewer.
    public func sealChunk(_ plaintext: UnsafeRawBufferPointer, index: Int, final: Bool, into output: UnsafeMutableRawBufferPointer) throws {
        guard final ? plaintext.count < chunkSize : plaintext.count == chunkSize else {
            throw VaultError(file: "upload \(uploadID)", reason: "chunk \(index) of \(plaintext.count) bytes: a \(final ? "final chunk holds fewer than" : "chunk holds exactly") \(chunkSize)")
        }
        precondition(output.count == plaintext.count + Self.tagLength, "sealChunk: the output must be the plaintext plus the tag")
        let count = plaintext.count
        try layout.aad(index, final: final).withUnsafeBytes { aad in
            try AES256GCM.seal(
                plaintext, key: dataKey, nonce: layout.nonce(index), aad: aad,
                ciphertext: UnsafeMutableRawBufferPointer(rebasing: output.prefix(count)),
                tag: UnsafeMutableRawBufferPointer(rebasing: output[count...]),
                operation: "seal chunk \(index)"
            )
        }
    }

    /// Encrypts bytes kept between requests (a tail shorter than what gets sealed as chunks):
    /// random nonce ‖ ciphertext ‖ tag. `context` (where the bytes belong: the first chunk index,
    /// a generation) is authenticated, so a tail cannot be replayed in another place.
    public func sealTail(_ plaintext: UnsafeRawBufferPointer, context: String) throws -> [UInt8] {
        let nonce = try SecureRandom.bytes(AES256GCM.nonceLength)
        var output = [UInt8](repeating: 0, count: AES256GCM.nonceLength + plaintext.count + Self.tagLength)
        let count = plaintext.count
        try tailAAD(context).withUnsafeBytes { aad in
            try output.withUnsafeMutableBytes { out in
                nonce.withUnsafeBytes { out.copyMemory(from: $0) }
                let body = UnsafeMutableRawBufferPointer(rebasing: out[AES256GCM.nonceLength...])
                try AES256GCM.seal(
                    plaintext, key: dataKey, nonce: nonce, aad: aad,
                    ciphertext: UnsafeMutableRawBufferPointer(rebasing: body.prefix(count)),
                    tag: UnsafeMutableRawBufferPointer(rebasing: body[count...]), operation: "seal the upload's tail"
                )
            }
        }
        return output
    }

    /// Decrypts what ``sealTail(_:context:)`` returned for the same `context`; throws naming the
    /// upload when the bytes were edited, cut, or belong elsewhere.
    public func openTail(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        let overhead = AES256GCM.nonceLength + Self.tagLength
        guard sealed.count >= overhead else {
            throw VaultError(file: "upload \(uploadID)", reason: "the stored tail is \(sealed.count) bytes, shorter than a nonce and a tag")
        }
        let nonce = Array(sealed.prefix(AES256GCM.nonceLength))
        let body = Array(sealed[AES256GCM.nonceLength..<(sealed.count - Self.tagLength)])
        let tag = Array(sealed.suffix(Self.tagLength))
        guard let plaintext = try AES256GCM.open(body, tag: tag, key: dataKey, nonce: nonce, aad: tailAAD(context)) else {
            throw VaultError(file: "upload \(uploadID)", reason: "the stored tail does not authenticate (\(context))")
        }
        return plaintext
    }

    private func tailAAD(_ context: String) -> [UInt8] {
        Array("streamgate/upload-tail/v1|".utf8) + layout.aadPrefix + Array("|\(context)".utf8)
    }
}

extension SealedSourceHeader {
    /// A fresh header for `uploadID` and the data key it wraps (the caller cleanses it).
    static func make(keyring: Keyring, uploadID: String, chunkSize: Int) throws -> (header: [UInt8], dataKey: [UInt8], layout: SealedChunkLayout) {
        guard SealedSource.chunkSizeRange.contains(chunkSize) else {
            throw VaultError("chunk size \(chunkSize) is out of range \(SealedSource.chunkSizeRange.lowerBound)…\(SealedSource.chunkSizeRange.upperBound)")
        }
        try SealedSource.validate(uploadID: uploadID)
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
        return (header, dataKey, layout)
    }
}
