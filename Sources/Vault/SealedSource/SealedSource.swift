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
        guard let file = try? RandomAccessFile(path: path) else { return false }
        return (try? isSealed(file)) ?? false
    }

    /// Whether `bytes` start with the sealed-source magic: the one rule for what is sealed, whatever
    /// the source is called or wherever it is read from. Throws what reading the first bytes throws.
    public static func isSealed(_ bytes: any RandomAccessBytes) throws -> Bool {
        var head = [UInt8](repeating: 0, count: magic.count)
        let count = try head.withUnsafeMutableBytes { try bytes.read(at: 0, into: $0) }
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

func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

func systemErrorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

func cleanse(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buffer in
        if let base = buffer.baseAddress { OPENSSL_cleanse(base, buffer.count) }
    }
}
