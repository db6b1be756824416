import Foundation
import NIOCore
import Vault

/// One object in a bucket read at any offset by ranged GETs, never downloaded whole: what a
/// worker serves its transcode child when the source is `s3://bucket/key`.
///
/// Opening is one HEAD (size, ETag). Reads are answered from fixed blocks (``Options/blockSize``)
/// fetched by ranged GETs and kept in a small LRU (``Options/cachedBlocks``). When reads run
/// forward (each starting where the last ended), the next ``Options/readAhead`` blocks are fetched
/// while the current one is used; at most that many read-ahead GETs are in flight, and a block is
/// never fetched twice at once. Every GET is pinned to the ETag seen at open (`If-Match`, and the
/// answer's ETag checked too): an object replaced mid-read fails with
/// ``S3Error/Reason/changed(opened:now:)`` instead of mixing bytes of two objects. Thread-safe.
public final class S3ObjectReader: RandomAccessSource, @unchecked Sendable {
    public struct Options: Sendable, Equatable {
        /// Bytes per ranged GET (the last block is shorter). 2 MiB by default.
        public var blockSize: Int
        /// Blocks kept in memory (at least ``readAhead`` + 2): bounds the reader's memory.
        public var cachedBlocks: Int
        /// Blocks fetched ahead of forward reads.
        public var readAhead: Int
        /// How long one block's GET may take, head and body.
        public var blockTimeout: Duration

        public init(blockSize: Int = 2 << 20, cachedBlocks: Int = 8, readAhead: Int = 2, blockTimeout: Duration = .seconds(60)) {
            self.blockSize = blockSize
            self.cachedBlocks = cachedBlocks
            self.readAhead = readAhead
            self.blockTimeout = blockTimeout
        }
    }

    /// The requests a reader has made, for tests and logs.
    public struct Statistics: Sendable, Equatable {
        public var heads = 0
        /// Ranged GETs, read-ahead ones included.
        public var gets = 0
        /// The GETs started by read-ahead rather than by a read.
        public var readAheadGets = 0
        /// Reads answered without waiting for a GET of their own.
        public var cacheHits = 0
        /// Bytes the GETs brought.
        public var bytesFetched = 0
    }

    public let client: S3Client
    public let bucket: String
    public let key: String
    /// The object's size at open.
    public let size: Int
    /// The object's ETag at open: every GET asks for this object and no other.
    public let eTag: String
    public let options: Options
    /// `s3://bucket/key`, as messages name the object.
    public var url: String { "s3://\(bucket)/\(key)" }

    private let lock = NSLock()
    private var blocks: [Int: ByteBuffer] = [:]
    /// Cached block indexes, least recently used first.
    private var recency: [Int] = []
    private var inFlight: [Int: Task<ByteBuffer, any Error>] = [:]
    private var readAheadInFlight: Set<Int> = []
    private var lastEnd: Int?
    private var counts = Statistics()

    private init(client: S3Client, bucket: String, key: String, size: Int, eTag: String, options: Options) {
        self.client = client
        self.bucket = bucket
        self.key = key
        self.size = size
        self.eTag = eTag
        self.options = options
    }

    /// Opens `key` with one HEAD. Throws ``S3Error`` (``S3Error/isNotFound`` when there is no such
    /// object, `invalidAnswer` when S3 gives no ETag to pin the reads to).
    public static func open(client: S3Client, bucket: String, key: String, options: Options = Options()) async throws -> S3ObjectReader {
        guard options.blockSize >= 1024, options.readAhead >= 0, options.cachedBlocks >= options.readAhead + 2 else {
            throw S3Error(operation: "HeadObject", bucket: bucket, key: key, reason: .invalidAnswer(
                "reader options refused: block size \(options.blockSize) (at least 1024), read-ahead \(options.readAhead), cached blocks \(options.cachedBlocks) (at least read-ahead + 2)"
            ))
        }
        let info = try await client.headObject(bucket: bucket, key: key)
        guard let eTag = info.eTag, !eTag.isEmpty else {
            throw S3Error(operation: "HeadObject", bucket: bucket, key: key, reason: .invalidAnswer("no ETag to pin the object's reads to"))
        }
        let reader = S3ObjectReader(client: client, bucket: bucket, key: key, size: Int(info.size), eTag: eTag, options: options)
        reader.lock.withLock { reader.counts.heads = 1 }
        return reader
    }

    /// What the reader has asked of S3 so far.
    public var statistics: Statistics { lock.withLock { counts } }

    public func read(offset: Int, length: Int) async throws -> ByteBuffer {
        let count = max(0, min(length, size - max(0, offset)))
        guard offset >= 0, count > 0 else { return ByteBuffer() }
        let first = offset / options.blockSize
        let last = (offset + count - 1) / options.blockSize
        // Every block this read needs is asked for before any is awaited, then the read-ahead.
        let pending = lock.withLock { () -> [Pending] in
            let wanted = (first...last).map { lookup($0, readAhead: false) }
            let forward = lastEnd == offset
            lastEnd = offset + count
            if forward { startReadAhead(after: last) }
            return wanted
        }
        var pieces: [ByteBuffer] = []
        for (index, block) in zip(first...last, pending) {
            let bytes: ByteBuffer
            switch block {
            case .cached(let cached): bytes = cached
            case .fetching(let task): bytes = try await task.value
            }
            let start = max(offset, index * options.blockSize) - index * options.blockSize
            let end = min(offset + count, (index + 1) * options.blockSize) - index * options.blockSize
            pieces.append(bytes.getSlice(at: bytes.readerIndex + start, length: end - start)!)
        }
        if pieces.count == 1 { return pieces[0] }
        var joined = ByteBufferAllocator().buffer(capacity: count)
        for var piece in pieces { joined.writeBuffer(&piece) }
        return joined
    }

    /// Cancels the GETs in flight and drops the cached blocks: once the child is done.
    public func close() {
        let tasks = lock.withLock { () -> [Task<ByteBuffer, any Error>] in
            defer {
                inFlight = [:]
                readAheadInFlight = []
                blocks = [:]
                recency = []
            }
            return Array(inFlight.values)
        }
        tasks.forEach { $0.cancel() }
    }

    private enum Pending {
        case cached(ByteBuffer)
        case fetching(Task<ByteBuffer, any Error>)
    }

    /// Block `index` from the cache, or the GET already fetching it, or a new GET (under the lock).
    private func lookup(_ index: Int, readAhead: Bool) -> Pending {
        if let cached = blocks[index] {
            recency.removeAll { $0 == index }
            recency.append(index)
            if !readAhead { counts.cacheHits += 1 }
            return .cached(cached)
        }
        if let task = inFlight[index] {
            if !readAhead { counts.cacheHits += 1 }
            return .fetching(task)
        }
        counts.gets += 1
        if readAhead {
            counts.readAheadGets += 1
            readAheadInFlight.insert(index)
        }
        // The task takes the lock only once this caller has released it, so it always finds
        // itself in inFlight.
        let task = Task { [self] () throws -> ByteBuffer in
            do {
                let bytes = try await fetch(index)
                lock.withLock {
                    finished(index)
                    store(index, bytes)
                }
                return bytes
            } catch {
                lock.withLock { finished(index) }
                throw error
            }
        }
        inFlight[index] = task
        return .fetching(task)
    }

    /// The blocks after `last`, as far as the read-ahead goes and the object lasts (under the lock).
    private func startReadAhead(after last: Int) {
        let blockCount = (size + options.blockSize - 1) / options.blockSize
        for index in (last + 1)..<min(blockCount, last + 1 + options.readAhead) {
            guard readAheadInFlight.count < options.readAhead else { return }
            _ = lookup(index, readAhead: true)
        }
    }

    private func finished(_ index: Int) {
        inFlight[index] = nil
        readAheadInFlight.remove(index)
    }

    private func store(_ index: Int, _ bytes: ByteBuffer) {
        blocks[index] = bytes
        recency.removeAll { $0 == index }
        recency.append(index)
        while recency.count > options.cachedBlocks {
            blocks[recency.removeFirst()] = nil
        }
    }

    /// One block by one ranged GET pinned to the ETag, within ``Options/blockTimeout``.
    private func fetch(_ index: Int) async throws -> ByteBuffer {
        let lower = index * options.blockSize
        let length = min(size, lower + options.blockSize) - lower
        let range = S3ByteRange.bytes(Int64(lower)...Int64(lower + length - 1))
        let timeout = options.blockTimeout
        let answer = try await withThrowingTaskGroup(of: (bytes: ByteBuffer, info: S3ObjectInfo)?.self) { group in
            group.addTask { [self] in
                do {
                    return try await client.getObjectBytesAndInfo(bucket: bucket, key: key, range: range, ifMatch: eTag, maxBytes: length)
                } catch let error as S3Error where error.status == 412 {
                    throw failure(.changed(opened: eTag, now: nil))
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let answer else {
            throw failure(.transport("block \(index) (bytes \(lower)…\(lower + length - 1)) not read within \(timeout)"))
        }
        // A server that ignores If-Match still names the object it answered from.
        if let now = answer.info.eTag, now != eTag {
            throw failure(.changed(opened: eTag, now: now))
        }
        guard answer.info.size == Int64(size) else {
            throw failure(.changed(opened: eTag, now: "an object of \(answer.info.size) bytes, not \(size)"))
        }
        guard answer.bytes.readableBytes == length else {
            throw failure(.invalidAnswer("\(answer.bytes.readableBytes) bytes for block \(index), which is \(length)"))
        }
        lock.withLock { counts.bytesFetched += length }
        return answer.bytes
    }

    private func failure(_ reason: S3Error.Reason) -> S3Error {
        S3Error(operation: "GetObject", bucket: bucket, key: key, reason: reason)
    }
}
