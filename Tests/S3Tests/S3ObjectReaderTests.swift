import Foundation
import NIOCore
import S3
import TestSupport
import Testing

/// The ranged reader against a real SeaweedFS: one HEAD, then ranged GETs of whole blocks, each
/// fetched once, ahead of forward reads only; and an object replaced under it fails loudly.
@Suite("S3 object reader: ranged GETs against SeaweedFS")
struct S3ObjectReaderTests {
    static let blockSize = 64 << 10
    static let options = S3ObjectReader.Options(blockSize: blockSize, cachedBlocks: 4, readAhead: 2)
    /// 16 blocks of bytes that differ from block to block.
    static let object: [UInt8] = (0..<(16 * blockSize)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }

    static func put(_ bytes: [UInt8], _ server: S3ServerProcess, key: String = "sources/clip.bin") async throws {
        try await server.client().putObject(bucket: server.bucket, key: key, body: ByteBuffer(bytes: bytes))
    }

    static func open(_ server: S3ServerProcess, key: String = "sources/clip.bin") async throws -> S3ObjectReader {
        try await S3ObjectReader.open(client: server.client(), bucket: server.bucket, key: key, options: options)
    }

    @Test("forward reads: every block fetched once, the next ones ahead, the bytes exactly the object's")
    func sequentialReads() async throws {
        try await withS3 { server in
            try await Self.put(Self.object, server)
            let reader = try await Self.open(server)
            #expect(reader.size == Self.object.count && reader.statistics.heads == 1 && reader.statistics.gets == 0)
            var copy: [UInt8] = []
            // As the child's window would, but smaller: 16 KiB at a time, each where the last ended.
            while copy.count < reader.size {
                let piece = try await reader.read(offset: copy.count, length: 16 << 10)
                copy += Array(piece.readableBytesView)
                if copy.count == 32 << 10 {
                    // The first read is not yet forward; the second is: block 0, then blocks 1 and 2 ahead.
                    #expect(reader.statistics.gets == 3 && reader.statistics.readAheadGets == 2, "\(reader.statistics)")
                }
            }
            #expect(copy == Self.object)
            #expect(try await reader.read(offset: reader.size, length: 100).readableBytes == 0)
            let statistics = reader.statistics
            #expect(statistics.gets == 16, "\(statistics)")
            #expect(statistics.readAheadGets >= 14, "\(statistics)")
            #expect(statistics.bytesFetched == Self.object.count, "\(statistics)")
            #expect(statistics.heads == 1)
        }
    }

    @Test("random reads: one GET per block touched, no read-ahead; a cached block costs nothing; a read across blocks joins them")
    func randomReads() async throws {
        try await withS3 { server in
            try await Self.put(Self.object, server)
            let reader = try await Self.open(server)
            for block in [7, 2, 12, 5, 9] {
                let offset = block * Self.blockSize + 100
                let bytes = try await reader.read(offset: offset, length: 1000)
                #expect(Array(bytes.readableBytesView) == Array(Self.object[offset..<(offset + 1000)]))
            }
            #expect(reader.statistics.gets == 5 && reader.statistics.readAheadGets == 0, "\(reader.statistics)")
            _ = try await reader.read(offset: 9 * Self.blockSize, length: 10)
            #expect(reader.statistics.gets == 5, "\(reader.statistics)")
            let across = 4 * Self.blockSize - 10
            let joined = try await reader.read(offset: across, length: 20)
            #expect(Array(joined.readableBytesView) == Array(Self.object[across..<(across + 20)]))
            #expect(reader.statistics.gets == 7, "\(reader.statistics)")
            // The last block is short; a read past the end is cut there.
            let tail = try await reader.read(offset: Self.object.count - 5, length: 1 << 20)
            #expect(Array(tail.readableBytesView) == Array(Self.object.suffix(5)))
        }
    }

    @Test("reads of one block at once share its one GET")
    func concurrentReadsShareAGet() async throws {
        try await withS3 { server in
            try await Self.put(Self.object, server)
            let reader = try await Self.open(server)
            let total = try await withThrowingTaskGroup(of: ByteBuffer.self) { group in
                for start in stride(from: 0, to: Self.blockSize, by: Self.blockSize / 8) {
                    group.addTask { try await reader.read(offset: 3 * Self.blockSize + start, length: 100) }
                }
                return try await group.reduce(into: 0) { $0 += $1.readableBytes }
            }
            #expect(total == 800)
            #expect(reader.statistics.gets == 1, "\(reader.statistics)")
        }
    }

    @Test("the object replaced mid-read: the next GET fails naming the change; bytes of two objects are never mixed")
    func replacedMidRead() async throws {
        try await withS3 { server in
            try await Self.put(Self.object, server)
            let reader = try await Self.open(server)
            let first = try await reader.read(offset: 0, length: 1000)
            #expect(Array(first.readableBytesView) == Array(Self.object.prefix(1000)))
            try await Self.put(Array(Self.object.reversed()), server)
            let error = await #expect(throws: S3Error.self) { try await reader.read(offset: 8 * Self.blockSize, length: 1000) }
            guard case .changed(let opened, _)? = error?.reason else {
                Issue.record("not a change: \(String(describing: error))")
                return
            }
            #expect(opened == reader.eTag)
            #expect(error?.description.contains("s3://\(server.bucket)/sources/clip.bin") == true)
            #expect(error?.description.contains("the object changed while it was being read") == true, "\(error?.description ?? "")")
            // A block read before the change is still the opened object's.
            let again = try await reader.read(offset: 0, length: 1000)
            #expect(Array(again.readableBytesView) == Array(Self.object.prefix(1000)))
        }
    }

    @Test("GET with If-Match: the ETag given reads, any other is 412 PreconditionFailed")
    func ifMatch() async throws {
        try await withS3 { server in
            try await Self.put(Array(Self.object.prefix(1000)), server)
            let client = server.client()
            let eTag = try #require(try await client.headObject(bucket: server.bucket, key: "sources/clip.bin").eTag)
            let range = S3ByteRange.bytes(10...19)
            let bytes = try await client.getObjectBytes(bucket: server.bucket, key: "sources/clip.bin", range: range, ifMatch: eTag, maxBytes: 10)
            #expect(Array(bytes.readableBytesView) == Array(Self.object[10..<20]))
            let error = await #expect(throws: S3Error.self) {
                _ = try await client.getObjectBytes(bucket: server.bucket, key: "sources/clip.bin", range: range, ifMatch: "\"0123456789abcdef\"", maxBytes: 10)
            }
            #expect(error?.status == 412, "\(String(describing: error))")
        }
    }

    @Test("no such object: open fails with S3's not-found, after one HEAD")
    func missingObject() async throws {
        try await withS3 { server in
            let error = await #expect(throws: S3Error.self) { _ = try await Self.open(server, key: "sources/none.bin") }
            #expect(error?.isNotFound == true, "\(String(describing: error))")
        }
    }
}
