import Foundation
import Vault

/// Sealed uploads as an attacker with write access to the upload store would leave them: a valid
/// sealed file, edited. The fuzz input is the list of edits; the file is sealed once per process
/// with a fixed key. Every byte of a sealed file is authenticated (header by the key wrap, chunks
/// and length by GCM), so the reader must either give back exactly what was sealed, when the edits
/// changed nothing, or throw a ``VaultError``.
///
/// The input is read four bytes at a time, `op a b c`, with `n = a·256 + b`:
///
/// | op % 7 | edit |
/// |---|---|
/// | 0 | XOR byte `n % size` with `c` |
/// | 1 | cut the last `n % (size + 1)` bytes |
/// | 2 | append `c % 64 + 1` bytes of value `a` |
/// | 3 | swap chunk records `a` and `b` (ciphertext and tag: chunks moved whole) |
/// | 4 | set byte `n % size` to `c` |
/// | 5 | insert `c % 32 + 1` zero bytes at `n % (size + 1)` |
/// | 6 | delete up to `c % 32 + 1` bytes at `n % size` |
enum SealedSourceHarness {
    static let harness = Harness("sealed-source", maxLength: 256, "SealedSourceReader on a sealed file edited by the input") { bytes in
        check(edits: bytes)
    }

    /// The file every edit starts from.
    struct Fixture: Sendable {
        let folder: String
        let keyring: Keyring
        let plaintext: [UInt8]
        let sealed: [UInt8]
    }

    static let uploadID = "fuzz-upload-1"
    static let chunkSize = 256
    static let record = chunkSize + 16
    static let header = SealedSource.headerLength(uploadIDLength: uploadID.utf8.count)

    static let fixture: Fixture = {
        // RAM when there is some: every input writes a file.
        let base = FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let folder = (base as NSString).appendingPathComponent("streamgate-fuzz-sealed-\(getpid())-\(UUID().uuidString.prefix(8))")
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let keyring = Keyring(current: try MasterKey(bytes: (0..<32).map { UInt8($0 * 11 % 256) }))
            // Two full chunks and a partial final one.
            let plaintext = (0..<700).map { UInt8(truncatingIfNeeded: $0 * 31 + 7) }
            let path = (folder as NSString).appendingPathComponent("original")
            let writer = try SealedSourceWriter(path: path, keyring: keyring, uploadID: uploadID, chunkSize: chunkSize)
            try writer.append(plaintext)
            try writer.finish()
            let sealed = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            atexit { try? FileManager.default.removeItem(atPath: SealedSourceHarness.fixture.folder) }
            return Fixture(folder: folder, keyring: keyring, plaintext: plaintext, sealed: sealed)
        } catch {
            fatalError("cannot seal the fuzz fixture in \(folder): \(error)")
        }
    }()

    static func apply(_ edits: UnsafeRawBufferPointer, to original: [UInt8]) -> [UInt8] {
        var file = original
        var index = 0
        while index + 4 <= edits.count {
            let (op, a, b, c) = (Int(edits[index]), Int(edits[index + 1]), Int(edits[index + 2]), edits[index + 3])
            let n = a << 8 | b
            index += 4
            switch op % 7 {
            case 0 where !file.isEmpty: file[n % file.count] ^= c
            case 1: file.removeLast(n % (file.count + 1))
            case 2: file += [UInt8](repeating: UInt8(a), count: Int(c) % 64 + 1)
            case 3:
                let records = (file.count - min(file.count, header)) / record
                guard records > 0 else { break }
                let (x, y) = (header + a % records * record, header + b % records * record)
                for offset in 0..<record { file.swapAt(x + offset, y + offset) }
            case 4 where !file.isEmpty: file[n % file.count] = c
            case 5: file.insert(contentsOf: [UInt8](repeating: 0, count: Int(c) % 32 + 1), at: n % (file.count + 1))
            case 6 where !file.isEmpty:
                let start = n % file.count
                file.removeSubrange(start..<min(file.count, start + Int(c) % 32 + 1))
            default: break
            }
        }
        return file
    }

    static func check(edits: UnsafeRawBufferPointer) {
        let fixture = fixture
        let edited = apply(edits, to: fixture.sealed)
        // A file of its own per input: tests replay inputs on several threads at once.
        let path = (fixture.folder as NSString).appendingPathComponent("edited-\(UUID().uuidString)")
        defer { unlink(path) }
        do {
            try Data(edited).write(to: URL(fileURLWithPath: path))
        } catch {
            fatalError("cannot write \(path): \(error)")
        }
        let unchanged = edited == fixture.sealed
        do {
            let reader = try SealedSourceReader(path: path, keyring: fixture.keyring, expectedUploadID: uploadID)
            var out: [UInt8] = []
            // An odd step, so reads straddle chunk boundaries.
            var buffer = [UInt8](repeating: 0, count: 97)
            while true {
                let count = try buffer.withUnsafeMutableBytes { try reader.read(at: out.count, into: $0) }
                require(count <= buffer.count, "read \(count) bytes into \(buffer.count)")
                if count == 0 { break }
                out += buffer.prefix(count)
                require(out.count <= fixture.plaintext.count, "read past the sealed plaintext")
            }
            require(reader.size == fixture.plaintext.count, "size \(reader.size) for \(fixture.plaintext.count) sealed bytes")
            require(unchanged, "an edited sealed file opened and read without an error")
            require(out == fixture.plaintext, "the sealed file read back as other bytes")
        } catch is VaultError {
            require(!unchanged, "the untouched sealed file did not read")
        } catch {
            fatalError("invariant broken: the reader threw something other than a VaultError: \(error)")
        }
    }
}
