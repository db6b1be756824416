import Foundation
import Testing
@testable import Vault

/// Sealed sources on real files in a temporary folder: round trips, random access, every kind of
/// tampering the format promises to catch, and a strict header parser.
@Suite("SealedSource: chunked AES-256-GCM uploads")
struct SealedSourceTests {
    static let chunkSize = 4096
    let folder: URL
    let keyBytes = (0..<32).map { UInt8($0 * 7 % 256) }
    let keyring: Keyring

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-sealed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        keyring = Keyring(current: try MasterKey(bytes: keyBytes))
    }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    func cleanUp() { try? FileManager.default.removeItem(at: folder) }

    /// Seals `plaintext` appending it in uneven pieces, so both the buffered and the direct path
    /// of `append` run.
    @discardableResult
    func seal(_ plaintext: [UInt8], to name: String, uploadID: String = "upload-1", keyring: Keyring? = nil) throws -> String {
        let file = path(name)
        let writer = try SealedSourceWriter(path: file, keyring: keyring ?? self.keyring, uploadID: uploadID, chunkSize: Self.chunkSize)
        var generator = SeededGenerator(seed: UInt64(plaintext.count))
        var offset = 0
        while offset < plaintext.count {
            let piece = min(plaintext.count - offset, Int.random(in: 1...(3 * Self.chunkSize), using: &generator))
            try writer.append(Array(plaintext[offset..<(offset + piece)]))
            offset += piece
        }
        #expect(writer.plaintextBytes == plaintext.count)
        try writer.finish()
        return file
    }

    func readAll(_ reader: SealedSourceReader, step: Int = 1000) throws -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: step)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try reader.read(at: out.count, into: $0) }
            if count == 0 { return out }
            out += buffer.prefix(count)
        }
    }

    func bytes(of file: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: file))) }
    func write(_ bytes: [UInt8], to file: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: file)) }

    /// The VaultError `body` throws; any other outcome is recorded as a failure.
    func vaultError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> VaultError? {
        do {
            try body()
            Issue.record("expected a VaultError, nothing was thrown", sourceLocation: sourceLocation)
        } catch let error as VaultError {
            return error
        } catch {
            Issue.record("expected a VaultError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    /// Opens and reads the whole file, for tampering checks where the error may come from either.
    func openAndReadAll(_ file: String, keyring: Keyring? = nil) throws {
        let reader = try SealedSourceReader(path: file, keyring: keyring ?? self.keyring)
        _ = try readAll(reader)
    }

    static func random(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    var headerLength: Int { SealedSource.headerLength(uploadIDLength: "upload-1".utf8.count) }
    var record: Int { Self.chunkSize + 16 }

    // MARK: - Round trips and random access

    // With chunkSize 4096: 0, 1, C−1, C, C+1 and 3.5·C bytes.
    @Test("round trip", arguments: [0, 1, 4095, 4096, 4097, 14336])
    func roundTrip(size: Int) throws {
        defer { cleanUp() }
        let plaintext = Self.random(size, seed: 42)
        let file = try seal(plaintext, to: "rt.sgsrc")
        #expect(SealedSource.isSealed(path: file))
        let onDisk = try bytes(of: file)
        #expect(onDisk.count == SealedSource.sealedSize(plaintextSize: size, chunkSize: Self.chunkSize, uploadIDLength: 8))
        let reader = try SealedSourceReader(path: file, keyring: keyring)
        #expect(reader.size == size)
        #expect(reader.uploadID == "upload-1")
        #expect(reader.masterKeyID == keyring.current.id)
        #expect(reader.chunkSize == Self.chunkSize)
        #expect(try readAll(reader) == plaintext)
        #expect(try readAll(reader, step: 4096 * 3 + 5) == plaintext)
        var attributes = stat()
        #expect(stat(file, &attributes) == 0 && attributes.st_mode & 0o777 == 0o600)
    }

    @Test("over any RandomAccessBytes: the same plaintext; errors name the source as it was given")
    func overGivenBytes() throws {
        defer { cleanUp() }
        let plaintext = Self.random(3 * Self.chunkSize + 5, seed: 3)
        let file = try seal(plaintext, to: "given.sgsrc")
        let bytes = try RandomAccessFile(path: file)
        #expect(try SealedSource.isSealed(bytes))
        let reader = try SealedSourceReader(bytes: bytes, name: "s3://uploads/given", keyring: keyring)
        #expect(reader.name == "s3://uploads/given" && reader.size == plaintext.count)
        #expect(try readAll(reader) == plaintext)
        var tampered = try self.bytes(of: file)
        tampered[headerLength + record + 7] ^= 1
        try write(tampered, to: file)
        let error = vaultError { _ = try readAll(try SealedSourceReader(bytes: try RandomAccessFile(path: file), name: "s3://uploads/given", keyring: keyring)) }
        #expect(error?.message.hasPrefix("s3://uploads/given: chunk 1 does not authenticate") == true, "\(String(describing: error))")
        #expect(try !SealedSource.isSealed(try RandomAccessFile(path: "/etc/hostname")))
    }

    @Test("random access at many offsets and lengths, across chunk boundaries and past the end")
    func randomAccess() throws {
        defer { cleanUp() }
        let plaintext = Self.random(Self.chunkSize * 7 / 2 + 17, seed: 7)
        let reader = try SealedSourceReader(path: try seal(plaintext, to: "ra.sgsrc"), keyring: keyring)
        var generator = SeededGenerator(seed: 99)
        var cases: [(Int, Int)] = (0..<600).map { _ in
            (Int.random(in: 0...(plaintext.count + 100), using: &generator), Int.random(in: 0...(2 * Self.chunkSize + 10), using: &generator))
        }
        // Straddling every boundary, the exact end, and far beyond it.
        for boundary in stride(from: Self.chunkSize, to: plaintext.count, by: Self.chunkSize) {
            cases += [(boundary - 1, 2), (boundary - 10, 20), (boundary, 1), (boundary - 1, Self.chunkSize + 2)]
        }
        cases += [(plaintext.count - 1, 10), (plaintext.count, 10), (plaintext.count + 1_000_000, 10), (0, plaintext.count * 2)]
        for (offset, length) in cases {
            var buffer = [UInt8](repeating: 0xee, count: length)
            let count = try buffer.withUnsafeMutableBytes { try reader.read(at: offset, into: $0) }
            let expected = offset < plaintext.count ? Array(plaintext[offset..<min(plaintext.count, offset + length)]) : []
            #expect(count == expected.count, "read(at: \(offset), \(length))")
            #expect(Array(buffer.prefix(count)) == expected, "read(at: \(offset), \(length))")
        }
        var small = [UInt8](repeating: 0, count: 4)
        #expect(vaultError { _ = try small.withUnsafeMutableBytes { try reader.read(at: -1, into: $0) } } != nil)
    }

    @Test("the file never holds a 32-byte window of the plaintext")
    func noPlaintextOnDisk() throws {
        defer { cleanUp() }
        // Text that repeats: any plaintext leak would show up as a matching window.
        let plaintext = Array(String(repeating: "StreamGate uploads are sealed before they touch the disk. ", count: 300).utf8)
        let onDisk = try bytes(of: try seal(plaintext, to: "leak.sgsrc"))
        var windows = Set<[UInt8]>()
        for start in 0...(onDisk.count - 32) { windows.insert(Array(onDisk[start..<(start + 32)])) }
        let leaked = (0...(plaintext.count - 32)).contains { windows.contains(Array(plaintext[$0..<($0 + 32)])) }
        #expect(!leaked)
        #expect(!windows.contains(keyBytes), "the master key is not in the file")
    }

    // MARK: - Tampering

    @Test("a flipped byte in any chunk names that chunk")
    func flippedByte() throws {
        defer { cleanUp() }
        let file = try seal(Self.random(Self.chunkSize * 7 / 2, seed: 3), to: "flip.sgsrc")
        let original = try bytes(of: file)
        let chunks = 4
        for index in 0..<chunks {
            let start = headerLength + index * record
            let length = index == chunks - 1 ? Self.chunkSize / 2 + 16 : record
            for position in [start, start + length / 2, start + length - 1] {  // ciphertext … tag
                var tampered = original
                tampered[position] ^= 0x20
                let target = path("flip-\(index)-\(position).sgsrc")
                try write(tampered, to: target)
                let error = vaultError { try openAndReadAll(target) }
                #expect(error?.message.contains("chunk \(index) ") == true, "\(error?.message ?? "no error")")
                #expect(error?.message.contains("does not authenticate") == true)
                #expect(error?.file == target)
            }
        }
    }

    @Test("dropping the final chunk is reported as truncation")
    func truncated() throws {
        defer { cleanUp() }
        for size in [Self.chunkSize * 7 / 2, Self.chunkSize * 3, 10] {
            let file = try seal(Self.random(size, seed: 5), to: "trunc-\(size).sgsrc")
            let original = try bytes(of: file)
            let finalLength = size % Self.chunkSize + 16
            let target = path("trunc-\(size)-cut.sgsrc")
            try write(Array(original.dropLast(finalLength)), to: target)
            let error = vaultError { try openAndReadAll(target) }
            #expect(error?.message.contains("file is truncated: no final chunk") == true, "\(error?.message ?? "no error")")
            // Cut inside the final chunk: the chunk that now looks final does not authenticate.
            if finalLength > 20 {
                try write(Array(original.dropLast(3)), to: target)
                let error = vaultError { try openAndReadAll(target) }
                #expect(error?.message.contains("chunk \(size / Self.chunkSize) (the final chunk) does not authenticate") == true, "\(error?.message ?? "no error")")
            }
        }
    }

    @Test("swapped chunks, appended bytes and a chunk from another file are caught")
    func reorderedAndSpliced() throws {
        defer { cleanUp() }
        let plaintext = Self.random(Self.chunkSize * 7 / 2, seed: 11)
        let original = try bytes(of: try seal(plaintext, to: "a.sgsrc"))
        let chunk = { (bytes: [UInt8], index: Int) in Array(bytes[(self.headerLength + index * self.record)..<(self.headerLength + (index + 1) * self.record)]) }

        var swapped = original
        swapped.replaceSubrange((headerLength)..<(headerLength + record), with: chunk(original, 1))
        swapped.replaceSubrange((headerLength + record)..<(headerLength + 2 * record), with: chunk(original, 0))
        try write(swapped, to: path("swapped.sgsrc"))
        let swapError = vaultError { try openAndReadAll(path("swapped.sgsrc")) }
        #expect(swapError?.message.contains("chunk 0 does not authenticate") == true, "\(swapError?.message ?? "no error")")

        for extra in [[UInt8](repeating: 0, count: 1), [UInt8](repeating: 0, count: 16), chunk(original, 0)] {
            try write(original + extra, to: path("appended.sgsrc"))
            let error = vaultError { try openAndReadAll(path("appended.sgsrc")) }
            #expect(error?.message.contains("does not authenticate") == true, "\(error?.message ?? "no error")")
        }

        // Same key ring, same upload id, same plaintext: another file's chunk 0 still fails here.
        let other = try bytes(of: try seal(plaintext, to: "b.sgsrc"))
        var spliced = original
        spliced.replaceSubrange((headerLength)..<(headerLength + record), with: chunk(other, 0))
        try write(spliced, to: path("spliced.sgsrc"))
        let spliceError = vaultError { try openAndReadAll(path("spliced.sgsrc")) }
        #expect(spliceError?.message.contains("chunk 0 does not authenticate") == true)
    }

    @Test("wrong upload id or master key is an error naming the key id, never key bytes")
    func wrongKeys() throws {
        defer { cleanUp() }
        let plaintext = Self.random(5000, seed: 13)
        let file = try seal(plaintext, to: "keys.sgsrc", uploadID: "upload-A")

        let mismatch = vaultError { _ = try SealedSourceReader(path: file, keyring: keyring, expectedUploadID: "upload-B") }
        #expect(mismatch?.reason == "sealed for upload 'upload-A', not 'upload-B'")

        // The same-length upload id edited in the header: the wrap no longer authenticates.
        var edited = try bytes(of: file)
        let idStart = 20
        #expect(Array(edited[idStart..<(idStart + 8)]) == Array("upload-A".utf8))
        edited[idStart + 7] = UInt8(ascii: "B")
        try write(edited, to: path("edited-id.sgsrc"))
        let editError = vaultError { try openAndReadAll(path("edited-id.sgsrc")) }
        #expect(editError?.reason.contains("the data key does not authenticate under master key \(keyring.current.id)") == true, "\(editError?.message ?? "")")

        let otherKey = try MasterKey(bytes: [UInt8](repeating: 0x5a, count: 32))
        let wrongRing = Keyring(current: otherKey)
        let error = vaultError { try openAndReadAll(file, keyring: wrongRing) }
        let message = error?.message ?? ""
        #expect(message.contains("wrapped by master key \(keyring.current.id), which is not in the keyring (known: \(otherKey.id))"), "\(message)")
        for secret in [keyBytes, [UInt8](repeating: 0x5a, count: 32)] {
            #expect(!message.contains(Hex.encode(secret)))
            #expect(!message.contains(Data(secret).base64EncodedString()))
        }

        // Rotation: the old key as a previous key still opens the file.
        let rotated = Keyring(current: otherKey, previous: [keyring.current])
        #expect(try readAll(try SealedSourceReader(path: file, keyring: rotated)) == plaintext)
    }

    // MARK: - Header parsing

    @Test("every truncated header is an error naming a field, never a crash")
    func truncatedHeaders() throws {
        defer { cleanUp() }
        let original = try bytes(of: try seal(Self.random(100, seed: 17), to: "h.sgsrc"))
        let fields = ["magic", "version", "chunk size", "nonce prefix", "upload id length", "upload id", "master key id", "wrap nonce", "wrapped data key", "wrap tag"]
        var seen = Set<String>()
        for length in 0..<(headerLength + 16) {
            let target = path("h-\(length).sgsrc")
            try write(Array(original.prefix(length)), to: target)
            let error = vaultError { _ = try SealedSourceReader(path: target, keyring: keyring) }
            let reason = error?.reason ?? ""
            #expect(error?.file == target)
            if length < headerLength {
                let field = fields.first { reason.contains("field '\($0)' is truncated") }
                #expect(field != nil, "length \(length): \(reason)")
                if let field { seen.insert(field) }
            } else {
                #expect(reason.hasPrefix("file is truncated: no final chunk"), "length \(length): \(reason)")
            }
        }
        #expect(seen == Set(fields))
    }

    @Test("malformed header fields are named")
    func malformedFields() throws {
        defer { cleanUp() }
        let original = try bytes(of: try seal(Self.random(100, seed: 19), to: "m.sgsrc"))
        func check(_ field: String, _ edit: (inout [UInt8]) -> Void) throws {
            var bytes = original
            edit(&bytes)
            let target = path("m-\(field).sgsrc")
            try write(bytes, to: target)
            let error = vaultError { _ = try SealedSourceReader(path: target, keyring: keyring) }
            #expect(error?.reason.contains("malformed sealed source header: field '\(field)'") == true, "\(field): \(error?.message ?? "")")
        }
        try check("magic") { $0[0] = UInt8(ascii: "X") }
        try check("version") { $0[9] = 2 }
        try check("chunk size") { $0.replaceSubrange(10..<14, with: [0, 0, 0, 16]) }
        try check("chunk size") { $0.replaceSubrange(10..<14, with: [0xff, 0xff, 0xff, 0xff]) }
        try check("upload id length") { $0.replaceSubrange(18..<20, with: [0, 0]) }
        try check("upload id length") { $0.replaceSubrange(18..<20, with: [1, 0]) }
        try check("upload id") { $0[20] = 0x0a }
        try check("upload id") { $0[20] = 0xff }
        try check("master key id") { $0[28] = UInt8(ascii: "G") }

        // Any other edit to a header byte is caught by the wrap's authentication.
        for position in 0..<headerLength {
            var bytes = original
            bytes[position] ^= 0x01
            let target = path("m-flip.sgsrc")
            try write(bytes, to: target)
            _ = vaultError { try openAndReadAll(target) }
        }
        #expect(!SealedSource.isSealed(path: path("missing")))
        try write(Array("not sealed at all".utf8), to: path("plain.mp4"))
        #expect(!SealedSource.isSealed(path: path("plain.mp4")))
    }

    // MARK: - The writer's life cycle

    @Test("the writer creates exclusively, refuses misuse and cleans up")
    func writerLifeCycle() throws {
        defer { cleanUp() }
        let file = path("w.sgsrc")
        let writer = try SealedSourceWriter(path: file, keyring: keyring, uploadID: "u", chunkSize: Self.chunkSize)
        let exists = vaultError { _ = try SealedSourceWriter(path: file, keyring: keyring, uploadID: "u") }
        #expect(exists?.systemError == EEXIST && exists?.reason == "already exists")
        try writer.append([1, 2, 3])
        try writer.finish()
        #expect(vaultError { try writer.append([4]) }?.reason.contains("already finished") == true)
        #expect(vaultError { try writer.finish() } != nil)
        writer.discard()
        writer.discard()
        #expect(!FileManager.default.fileExists(atPath: file))

        // Abandoned before finish: the half-written file goes with the writer.
        do {
            let abandoned = try SealedSourceWriter(path: file, keyring: keyring, uploadID: "u", chunkSize: Self.chunkSize)
            try withExtendedLifetime(abandoned) {
                try abandoned.append(Self.random(10_000, seed: 1))
                #expect(FileManager.default.fileExists(atPath: file))
            }
        }
        #expect(!FileManager.default.fileExists(atPath: file))

        let missingFolder = vaultError { _ = try SealedSourceWriter(path: path("no/such/folder/x"), keyring: keyring, uploadID: "u") }
        #expect(missingFolder?.systemError == ENOENT)
        #expect(vaultError { _ = try SealedSourceWriter(path: file, keyring: keyring, uploadID: "") } != nil)
        #expect(vaultError { _ = try SealedSourceWriter(path: file, keyring: keyring, uploadID: "a\nb") } != nil)
        #expect(vaultError { _ = try SealedSourceWriter(path: file, keyring: keyring, uploadID: String(repeating: "x", count: 256)) } != nil)
        #expect(vaultError { _ = try SealedSourceWriter(path: file, keyring: keyring, uploadID: "u", chunkSize: 16) } != nil)
        #expect(!FileManager.default.fileExists(atPath: file))
    }
}

/// SplitMix64: reproducible "random" data and piece sizes.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
