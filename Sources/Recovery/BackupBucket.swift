import Foundation
import NIOCore
import S3
import Vault

/// Backups kept in a bucket (another region's, another account's), laid out as a
/// ``BackupFolder``: an object per file by its SHA-256, and per backup a manifest, its signature
/// and `latest`, each one PUT (S3 replaces an object whole), the manifest after every object it
/// names and `latest` last.
public struct BackupBucket: BackupTarget {
    public let client: S3Client
    public let bucket: String
    /// Ends with `/`, or is empty.
    public let prefix: String

    public init(client: S3Client, bucket: String, prefix: String) {
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
    }

    public var location: String { "s3://\(bucket)/\(prefix)" }

    func objectKey(_ sha256: String) -> String { "\(prefix)objects/\(sha256.prefix(2))/\(sha256)" }

    public func has(_ file: BackupManifest.File) async -> Bool {
        (try? await client.headObject(bucket: bucket, key: objectKey(file.sha256)).size) == Int64(file.size)
    }

    public func put(_ bytes: [UInt8], as path: String) async throws -> (file: BackupManifest.File, written: Bool) {
        let file = BackupManifest.File(path: path, sha256: Digest.hex(Digest.sha256(bytes)), size: bytes.count)
        if await has(file) { return (file, false) }
        try await client.putObject(bucket: bucket, key: objectKey(file.sha256), body: ByteBuffer(bytes: bytes))
        return (file, true)
    }

    public func putFile(at source: String, as path: String) async throws -> (file: BackupManifest.File, written: Bool) {
        // Hashed first: the object's key is its hash, and most uploads are there from a backup before.
        var hasher = SHA256Stream()
        var size = 0
        try Self.pieces(of: source) { piece in
            hasher.update(piece)
            size += piece.count
        }
        let file = BackupManifest.File(path: path, sha256: hasher.finish(), size: size)
        if await has(file) { return (file, false) }
        let body = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            do {
                try Self.pieces(of: source) { continuation.yield(ByteBuffer(bytes: $0)) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        try await client.uploadMultipart(bucket: bucket, key: objectKey(file.sha256), body: body)
        return (file, true)
    }

    public func get(_ file: BackupManifest.File) async throws(BackupError) -> [UInt8] {
        let buffer: ByteBuffer
        do {
            buffer = try await client.getObjectBytes(bucket: bucket, key: objectKey(file.sha256), maxBytes: file.size + 1)
        } catch {
            throw BackupError("\(file.path): its object \(file.sha256) cannot be read from \(location) (\(error))")
        }
        let bytes = Array(buffer.readableBytesView)
        guard bytes.count == file.size else {
            throw BackupError("\(file.path): its object holds \(bytes.count) bytes, the manifest says \(file.size) (truncated?)")
        }
        guard Digest.hex(Digest.sha256(bytes)) == file.sha256 else {
            throw BackupError("\(file.path): its object's bytes do not hash to \(file.sha256) (altered)")
        }
        return bytes
    }

    public func verify(_ file: BackupManifest.File) async throws(BackupError) {
        var hasher = SHA256Stream()
        var size = 0
        do {
            let object = try await client.getObject(bucket: bucket, key: objectKey(file.sha256))
            for try await piece in object.body {
                hasher.update(Array(piece.readableBytesView))
                size += piece.readableBytes
            }
        } catch {
            throw BackupError("\(file.path): its object \(file.sha256) cannot be read from \(location) (\(error))")
        }
        guard size == file.size else { throw BackupError("\(file.path): its object holds \(size) bytes, the manifest says \(file.size) (truncated?)") }
        guard hasher.finish() == file.sha256 else { throw BackupError("\(file.path): its object's bytes do not hash to \(file.sha256) (altered)") }
    }

    public func copy(_ file: BackupManifest.File, to path: String) async throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let output = FileHandle(forWritingAtPath: path) else {
            throw BackupError("\(path): cannot be written")
        }
        defer { try? output.close() }
        let object = try await client.getObject(bucket: bucket, key: objectKey(file.sha256))
        for try await piece in object.body { try output.write(contentsOf: Data(piece.readableBytesView)) }
    }

    public func latest() async -> String? {
        guard let buffer = try? await client.getObjectBytes(bucket: bucket, key: prefix + "latest", maxBytes: 1024) else { return nil }
        return String(decoding: buffer.readableBytesView, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func write(_ manifest: BackupManifest, signedWith key: MasterKey) async throws {
        let bytes = try manifest.encoded()
        let folder = "\(prefix)backups/\(manifest.name)/"
        try await client.putObject(bucket: bucket, key: folder + "manifest.sig", body: ByteBuffer(bytes: Array(BackupManifest.signature(of: bytes, key: key).utf8) + [10]))
        try await client.putObject(bucket: bucket, key: folder + "manifest.json", body: ByteBuffer(bytes: bytes))
        try await client.putObject(bucket: bucket, key: prefix + "latest", body: ByteBuffer(string: manifest.name + "\n"))
    }

    public func manifest(_ name: String, keyring: Keyring) async throws(BackupError) -> BackupManifest {
        try BackupManifest.checkName(name)
        let folder = "\(prefix)backups/\(name)/"
        let bytes: ByteBuffer, signature: ByteBuffer
        do {
            bytes = try await client.getObjectBytes(bucket: bucket, key: folder + "manifest.json", maxBytes: 256 << 20)
        } catch {
            throw BackupError("s3://\(bucket)/\(folder)manifest.json: no such backup (\(error))")
        }
        do {
            signature = try await client.getObjectBytes(bucket: bucket, key: folder + "manifest.sig", maxBytes: 1024)
        } catch {
            throw BackupError("s3://\(bucket)/\(folder)manifest.sig: missing: an unsigned manifest is not trusted")
        }
        return try BackupManifest.verified(
            Array(bytes.readableBytesView), signature: String(decoding: signature.readableBytesView, as: UTF8.self), keyring: keyring,
            file: "s3://\(bucket)/\(folder)manifest.json", name: name
        )
    }

    /// Reads a local file in 8 MiB pieces.
    private static func pieces(of path: String, _ body: ([UInt8]) throws -> Void) throws {
        guard let input = FileHandle(forReadingAtPath: path) else { throw BackupError("\(path): cannot be read") }
        defer { try? input.close() }
        while let chunk = try input.read(upToCount: 8 << 20), !chunk.isEmpty { try body(Array(chunk)) }
    }
}
