import Foundation

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
