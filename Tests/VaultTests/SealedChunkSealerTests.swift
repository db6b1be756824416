import Foundation
import Testing
@testable import Vault

/// The chunk sealer resumable uploads use: what it seals across "requests" (a sealer rebuilt from
/// the header each time) is a sealed source the reader opens, and a kept tail never opens elsewhere.
@Suite("SealedChunkSealer: a sealed source sealed piece by piece")
struct SealedChunkSealerTests {
    let keyring = Keyring(current: try! MasterKey(bytes: (0..<32).map { UInt8($0 &* 3 &+ 1) }))

    /// Seals `plaintext` chunk by chunk, a new sealer for every chunk (as if each came in its own
    /// request on another machine), into a file; its path.
    func sealPiecewise(_ plaintext: [UInt8], chunkSize: Int, uploadID: String) throws -> String {
        let header = try SealedChunkSealer.makeHeader(keyring: keyring, uploadID: uploadID, chunkSize: chunkSize)
        var file = header
        let whole = plaintext.count / chunkSize
        for index in 0...whole {
            let sealer = try SealedChunkSealer(header: header, keyring: keyring, expectedUploadID: uploadID)
            let start = index * chunkSize
            let piece = Array(plaintext[start..<min(plaintext.count, start + chunkSize)])
            var out = [UInt8](repeating: 0, count: piece.count + SealedChunkSealer.tagLength)
            try piece.withUnsafeBytes { input in
                try out.withUnsafeMutableBytes { try sealer.sealChunk(input, index: index, final: index == whole, into: $0) }
            }
            file += out
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sg-chunks-\(UUID().uuidString)").path
        try Data(file).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("chunks sealed one at a time by sealers rebuilt from the header read back exactly", arguments: [0, 1, 4095, 4096, 4097, 3 * 4096 + 17])
    func piecewiseRoundTrip(_ size: Int) throws {
        let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) }
        let path = try sealPiecewise(plaintext, chunkSize: 4096, uploadID: "u-piecewise")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.fileSize(path) == SealedSource.sealedSize(plaintextSize: size, chunkSize: 4096, uploadIDLength: "u-piecewise".utf8.count))
        let reader = try SealedSourceReader(path: path, keyring: keyring, expectedUploadID: "u-piecewise")
        var back = [UInt8](repeating: 0, count: size)
        let read = try back.withUnsafeMutableBytes { try reader.read(at: 0, into: $0) }
        #expect(read == size && back == plaintext)
    }

    @Test("a header is refused for another upload, after an edit, or without its master key")
    func headerChecks() throws {
        let header = try SealedChunkSealer.makeHeader(keyring: keyring, uploadID: "u-one", chunkSize: 4096)
        #expect(throws: VaultError.self) { try SealedChunkSealer(header: header, keyring: keyring, expectedUploadID: "u-two") }
        var edited = header
        edited[12] ^= 1
        #expect(throws: VaultError.self) { try SealedChunkSealer(header: edited, keyring: keyring, expectedUploadID: "u-one") }
        let other = Keyring(current: try MasterKey(bytes: [UInt8](repeating: 9, count: 32)))
        #expect(throws: VaultError.self) { try SealedChunkSealer(header: header, keyring: other, expectedUploadID: "u-one") }
        #expect(throws: VaultError.self) { try SealedChunkSealer(header: header + [0], keyring: keyring, expectedUploadID: "u-one") }
    }

    @Test("a chunk of the wrong size is refused: whole chunks are exactly the chunk size, the final one shorter")
    func chunkSizes() throws {
        let header = try SealedChunkSealer.makeHeader(keyring: keyring, uploadID: "u-sizes", chunkSize: 256)
        let sealer = try SealedChunkSealer(header: header, keyring: keyring, expectedUploadID: "u-sizes")
        for (count, final) in [(255, false), (257, false), (256, true)] {
            let piece = [UInt8](repeating: 1, count: count)
            var out = [UInt8](repeating: 0, count: count + 16)
            #expect(throws: VaultError.self) {
                try piece.withUnsafeBytes { input in try out.withUnsafeMutableBytes { try sealer.sealChunk(input, index: 0, final: final, into: $0) } }
            }
        }
    }

    @Test("a kept tail opens only with its context and unedited; it is never the plaintext")
    func tails() throws {
        let header = try SealedChunkSealer.makeHeader(keyring: keyring, uploadID: "u-tail", chunkSize: 4096)
        let sealer = try SealedChunkSealer(header: header, keyring: keyring, expectedUploadID: "u-tail")
        let plaintext = Array("a tail of an upload, kept between requests".utf8)
        let sealed = try plaintext.withUnsafeBytes { try sealer.sealTail($0, context: "chunk 5 generation 2") }
        #expect(sealed.count == plaintext.count + 28)
        #expect(Data(sealed).range(of: Data(plaintext.prefix(12))) == nil, "no plaintext in the stored tail")
        let again = try SealedChunkSealer(header: header, keyring: keyring, expectedUploadID: "u-tail")
        #expect(try again.openTail(sealed, context: "chunk 5 generation 2") == plaintext)
        #expect(throws: VaultError.self) { try again.openTail(sealed, context: "chunk 5 generation 3") }
        var edited = sealed
        edited[20] ^= 0x80
        #expect(throws: VaultError.self) { try again.openTail(edited, context: "chunk 5 generation 2") }
        #expect(throws: VaultError.self) { try again.openTail(Array(sealed.prefix(10)), context: "chunk 5 generation 2") }
        // A fresh nonce each time: the same tail sealed twice differs.
        let twice = try plaintext.withUnsafeBytes { try sealer.sealTail($0, context: "chunk 5 generation 2") }
        #expect(twice != sealed)
    }
}

private extension FileManager {
    func fileSize(_ path: String) -> Int { (try? attributesOfItem(atPath: path)[.size] as? Int) ?? -1 }
}
