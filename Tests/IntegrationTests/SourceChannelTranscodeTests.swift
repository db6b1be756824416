import Foundation
import Jobs
import NIOCore
import Processes
import S3
import Store
import TestSupport
import Testing
import Vault
@testable import Farm

/// A real sandboxed `streamgate transcode --source-channel 3` (no network, no socket of its own)
/// transcoding a source it never opens: the worker side serves the bytes over the channel, from a
/// file, a sealed upload, or an object in a real S3 server (SeaweedFS) read by ranged GETs.
@Suite("source channel: a sandboxed child transcodes what the worker serves it")
struct SourceChannelTranscodeTests {
    /// One transcode started as a worker starts one (``TranscodeChildTests/Attempt``), the
    /// input's bytes from `source`.
    typealias Attempt = TranscodeChildTests.Attempt
}

extension TranscodeChildTests.Attempt {
    convenience init(source: any RandomAccessSource, name: String) throws {
        try self.init(name, source: source)
    }

    /// Waits for the child and for the channel to close; the exit status and how serving ended.
    func endedServing() async throws -> (exit: Processes.ExitStatus, channel: SourceChannelServer.Ending) {
        let exit = try #require(await child.process.exited(timeout: 120), "the transcode did not end")
        child.drainOutput()
        let server = try #require(child.sourceServer)
        return (exit, await server.finished())
    }

    /// Transcoded from the channel alone, which the child closed as it exited; published by
    /// this attempt, as a worker publishes what its child wrote.
    func expectPublished() async throws {
        let (exit, channel) = try await endedServing()
        #expect(TranscodeExit(exit) == .succeeded, "\(exit): \(child.errorOutput.suffix(1500))")
        let summary = try #require(child.finished, "\(child.errorOutput.suffix(1500))")
        #expect(summary.segments > 0 && !summary.renditions.isEmpty)
        let published = try staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: "job-1")
        #expect(try store.publishedVersion(of: staging.asset) == published)
        #expect(channel == .childClosed)
        #expect((child.sourceServer?.requestsServed ?? 0) > 1)
        #expect(log.errors.isEmpty, "\(log.errors)")
    }
}

extension SourceChannelTranscodeTests {
    static let keyring = Keyring(current: try! MasterKey(base64: testMasterKey, source: "test"))
    static let basic = packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path

    @Test("a plain file served over the channel is transcoded and published", .tags(.endToEnd))
    func plainSource() async throws {
        let attempt = try Attempt(source: try RandomAccessFile(path: Self.basic), name: "s3://uploads/basic.mp4")
        try await attempt.expectPublished()
        // Every byte was read through the channel, none past the file.
        #expect((attempt.child.sourceServer?.bytesServed ?? 0) >= 200_000)
    }

    @Test("a sealed upload served over the channel is decrypted in the child and published", .tags(.endToEnd))
    func sealedSource() async throws {
        let folder = try TemporaryFolder()
        let sealed = folder.path + "/upload.sealed"
        let writer = try SealedSourceWriter(path: sealed, keyring: Self.keyring, uploadID: "upload-1", chunkSize: 64 << 10)
        try writer.append(Array(try Data(contentsOf: URL(fileURLWithPath: Self.basic))))
        try writer.finish()
        let attempt = try Attempt(source: try RandomAccessFile(path: sealed), name: "s3://uploads/upload-1.sealed")
        try await attempt.expectPublished()
    }

    @Test("an object in S3 read by ranged GETs of 64 KiB blocks is transcoded and published", .tags(.endToEnd))
    func objectInS3() async throws {
        try await withS3 { server in
            let client = server.client()
            let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.basic))
            try await client.putObject(bucket: server.bucket, key: "uploads/basic.mp4", body: ByteBuffer(bytes: bytes))
            let reader = try await S3ObjectReader.open(
                client: client, bucket: server.bucket, key: "uploads/basic.mp4", options: .init(blockSize: 64 << 10, cachedBlocks: 4, readAhead: 1)
            )
            let attempt = try Attempt(source: reader, name: reader.url)
            try await attempt.expectPublished()
            let statistics = reader.statistics
            // Every block at least once, in GETs of one block each: never the whole object at once.
            let blocks = (bytes.count + (64 << 10) - 1) / (64 << 10)
            #expect(statistics.heads == 1 && statistics.gets >= blocks && statistics.bytesFetched <= statistics.gets * (64 << 10), "\(statistics)")
            reader.close()
        }
    }

    @Test("an object replaced after it was opened: the child fails with S3's reason, worth another attempt", .tags(.endToEnd))
    func objectReplaced() async throws {
        try await withS3 { server in
            let client = server.client()
            let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.basic))
            try await client.putObject(bucket: server.bucket, key: "uploads/basic.mp4", body: ByteBuffer(bytes: bytes))
            let reader = try await S3ObjectReader.open(client: client, bucket: server.bucket, key: "uploads/basic.mp4")
            var replaced = bytes
            replaced[100] ^= 0xff
            try await client.putObject(bucket: server.bucket, key: "uploads/basic.mp4", body: ByteBuffer(bytes: replaced))
            let attempt = try Attempt(source: reader, name: reader.url)
            let (exit, channel) = try await attempt.endedServing()
            #expect(TranscodeExit(exit) == .internalFailure, "\(exit): \(attempt.child.errorOutput.suffix(1500))")
            let failed = try #require(attempt.child.failed)
            #expect(failed.status == .internalFailure)
            #expect(failed.reason.hasPrefix(reader.url + ": "), "\(failed.reason)")
            #expect(failed.reason.contains("the object changed while it was being read"), "\(failed.reason)")
            #expect(channel == .childClosed)
            #expect(try attempt.store.publishedVersion(of: try AssetID("channel")) == nil)
        }
    }
}
