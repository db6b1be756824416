import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// What HEAD (and GET) say of an object.
public struct S3ObjectInfo: Sendable, Equatable {
    /// The object's whole size (not the range's).
    public var size: Int64
    public var eTag: String?
    public var lastModified: String?
    public var contentType: String?
    /// `x-amz-meta-*` headers, names without the prefix.
    public var metadata: [String: String]

    init(_ headers: HTTPHeaders, size: Int64) {
        self.size = size
        eTag = headers.first(name: "etag")
        lastModified = headers.first(name: "last-modified")
        contentType = headers.first(name: "content-type")
        var metadata: [String: String] = [:]
        for header in headers where header.name.lowercased().hasPrefix("x-amz-meta-") {
            metadata[String(header.name.lowercased().dropFirst("x-amz-meta-".count))] = header.value
        }
        self.metadata = metadata
    }
}

/// Which bytes of an object to read.
public enum S3ByteRange: Sendable, Equatable {
    /// From `lower` through `upper`, both included.
    case bytes(ClosedRange<Int64>)
    /// From an offset to the end.
    case from(Int64)
    /// The last `count` bytes.
    case suffix(Int64)

    var header: String {
        switch self {
        case .bytes(let range): "bytes=\(range.lowerBound)-\(range.upperBound)"
        case .from(let offset): "bytes=\(offset)-"
        case .suffix(let count): "bytes=-\(count)"
        }
    }
}

/// An object being read: what S3 said of it and its bytes, streamed as they arrive. Read `body`
/// to its end (or drop it) to let the connection go.
public struct S3ObjectStream: Sendable {
    public var info: S3ObjectInfo
    /// The bytes of the range asked for (or of the whole object).
    public var body: HTTPClientResponse.Body
    /// How many bytes `body` holds, when the answer said.
    public var contentLength: Int64?
}

extension S3Client {
    /// PUT of a body in memory. Conditional writes (412 `PreconditionFailed` when the condition
    /// fails): with `ifNoneMatch` the object is written only if `key` does not exist yet
    /// (`If-None-Match: *`); with `ifMatch` only if its current ETag is that one (`If-Match`: a
    /// compare-and-swap, as a version pointer needs). A conditional PUT is sent once, never
    /// retried. Returns the ETag.
    @discardableResult
    public func putObject(
        bucket: String, key: String, body: ByteBuffer, contentType: String? = nil, metadata: [String: String] = [:],
        ifNoneMatch: Bool = false, ifMatch: String? = nil
    ) async throws -> String? {
        let conditional = ifNoneMatch || ifMatch != nil
        var operation = Operation(name: "PutObject", method: .PUT, bucket: bucket, key: key, body: .bytes(body), idempotent: !conditional)
        operation.headers = Self.objectHeaders(contentType: contentType, metadata: metadata)
        if ifNoneMatch { operation.headers.append(("if-none-match", "*")) }
        if let ifMatch { operation.headers.append(("if-match", ifMatch)) }
        return try await send(operation).headers.first(name: "etag")
    }

    /// PUT of a body streamed from `body`, exactly `length` bytes (S3 needs the length up front).
    /// Sent unsigned (`UNSIGNED-PAYLOAD`) and once: a stream cannot be replayed. For bodies over
    /// 5 GiB, or to retry piece by piece, use ``uploadMultipart(bucket:key:body:partSize:contentType:)``.
    @discardableResult
    public func putObject<Body: AsyncSequence & Sendable>(
        bucket: String, key: String, length: Int64, body: Body, contentType: String? = nil, metadata: [String: String] = [:]
    ) async throws -> String? where Body.Element == ByteBuffer {
        var operation = Operation(name: "PutObject", method: .PUT, bucket: bucket, key: key, body: .stream(.stream(body, length: .known(length)), length: length), idempotent: false)
        operation.headers = Self.objectHeaders(contentType: contentType, metadata: metadata)
        return try await send(operation).headers.first(name: "etag")
    }

    /// GET, whole or a range, streamed: nothing is held in memory beyond what the caller has not
    /// read yet. The request is retried as the policy allows until the answer's head arrives; the
    /// body is then the caller's to read, at its pace, with no deadline of the client's (the
    /// request timeout ends at the head), so a caller that must not wait on a stalled body bounds
    /// its reading itself (or gives the client an `HTTPClient` with a read timeout). With
    /// `ifMatch`, only the object whose ETag is that one is read (`If-Match`): any other is
    /// 412 `PreconditionFailed`.
    public func getObject(bucket: String, key: String, range: S3ByteRange? = nil, ifMatch: String? = nil) async throws -> S3ObjectStream {
        var operation = Operation(name: "GetObject", method: .GET, bucket: bucket, key: key, idempotent: true)
        if let ifMatch { operation.headers.append(("if-match", ifMatch)) }
        if let range {
            operation.headers.append(("range", range.header))
            // A 200 would be the whole object where a range was asked for: not an answer.
            operation.accepted = { $0 == 206 }
        } else {
            operation.accepted = { $0 == 200 }
        }
        let response = try await send(operation)
        let length = response.headers.first(name: "content-length").flatMap { Int64($0) }
        var size = length ?? -1
        if range != nil {
            // Content-Range: bytes first-last/size
            guard let total = response.headers.first(name: "content-range")?.split(separator: "/").last.flatMap({ Int64($0) }) else {
                throw failure(operation, .invalidAnswer("a 206 without a Content-Range giving the size"))
            }
            size = total
        }
        return S3ObjectStream(info: S3ObjectInfo(response.headers, size: size), body: response.body, contentLength: length)
    }

    /// GET into memory, whole or a range: refused with ``S3Error/Reason/tooLarge(limit:)`` past
    /// `maxBytes` (a segment, a playlist, a key, one block of a source; never a whole source).
    /// `ifMatch` as for ``getObject(bucket:key:range:ifMatch:)``.
    public func getObjectBytes(bucket: String, key: String, range: S3ByteRange? = nil, ifMatch: String? = nil, maxBytes: Int) async throws -> ByteBuffer {
        try await getObjectBytesAndInfo(bucket: bucket, key: key, range: range, ifMatch: ifMatch, maxBytes: maxBytes).bytes
    }

    /// ``getObjectBytes(bucket:key:range:ifMatch:maxBytes:)`` with what the answer said of the
    /// object (its ETag and whole size), for a reader that checks it is still reading one object.
    public func getObjectBytesAndInfo(
        bucket: String, key: String, range: S3ByteRange? = nil, ifMatch: String? = nil, maxBytes: Int
    ) async throws -> (bytes: ByteBuffer, info: S3ObjectInfo) {
        let object = try await getObject(bucket: bucket, key: key, range: range, ifMatch: ifMatch)
        do {
            return (try await object.body.collect(upTo: maxBytes), object.info)
        } catch is NIOTooManyBytesError {
            throw S3Error(operation: "GetObject", bucket: bucket, key: key, reason: .tooLarge(limit: maxBytes))
        } catch {
            throw S3Error(operation: "GetObject", bucket: bucket, key: key, reason: .transport("reading the body: \(error)"))
        }
    }

    /// HEAD: the object's size, ETag and metadata; an ``S3Error`` with ``S3Error/isNotFound`` when
    /// there is no such object.
    public func headObject(bucket: String, key: String) async throws -> S3ObjectInfo {
        let operation = Operation(name: "HeadObject", method: .HEAD, bucket: bucket, key: key, idempotent: true)
        let response = try await send(operation)
        guard let size = response.headers.first(name: "content-length").flatMap({ Int64($0) }) else {
            throw failure(operation, .invalidAnswer("no Content-Length"))
        }
        return S3ObjectInfo(response.headers, size: size)
    }

    /// DELETE. S3 answers 204 whether or not the object existed.
    public func deleteObject(bucket: String, key: String) async throws {
        _ = try await send(Operation(name: "DeleteObject", method: .DELETE, bucket: bucket, key: key, idempotent: true))
    }

    /// One page of ListObjectsV2: at most `maxKeys` (S3 caps it at 1,000) objects under `prefix`,
    /// from `continuationToken` on; with a `delimiter`, what lies below it is folded into
    /// ``S3ObjectList/commonPrefixes``.
    public func listObjects(
        bucket: String, prefix: String? = nil, delimiter: String? = nil, continuationToken: String? = nil, maxKeys: Int? = nil
    ) async throws -> S3ObjectList {
        var operation = Operation(name: "ListObjectsV2", method: .GET, bucket: bucket, key: nil, idempotent: true)
        operation.query = [("list-type", "2"), ("encoding-type", "url")]
        if let prefix { operation.query.append(("prefix", prefix)) }
        if let delimiter { operation.query.append(("delimiter", delimiter)) }
        if let continuationToken { operation.query.append(("continuation-token", continuationToken)) }
        if let maxKeys { operation.query.append(("max-keys", String(maxKeys))) }
        let (_, body) = try await sendForBody(operation)
        do {
            return try S3ObjectList.parse(body.readableBytesView, maxBytes: configuration.maxXMLBytes)
        } catch {
            throw failure(operation, .invalidAnswer(error.description))
        }
    }

    /// Every object under `prefix`, page after page (each page one request).
    public func listAllObjects(bucket: String, prefix: String? = nil, pageSize: Int? = nil) -> S3ListingPages {
        S3ListingPages(client: self, bucket: bucket, prefix: prefix, pageSize: pageSize)
    }

    static func objectHeaders(contentType: String?, metadata: [String: String]) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        if let contentType { headers.append(("content-type", contentType)) }
        for (name, value) in metadata.sorted(by: { $0.key < $1.key }) { headers.append(("x-amz-meta-" + name.lowercased(), value)) }
        return headers
    }
}

/// The pages of a listing, fetched one at a time as they are iterated.
public struct S3ListingPages: AsyncSequence, Sendable {
    public typealias Element = S3ObjectList
    let client: S3Client
    let bucket: String
    let prefix: String?
    let pageSize: Int?

    public struct AsyncIterator: AsyncIteratorProtocol {
        let pages: S3ListingPages
        var token: String?
        var done = false

        public mutating func next() async throws -> S3ObjectList? {
            guard !done else { return nil }
            let page = try await pages.client.listObjects(bucket: pages.bucket, prefix: pages.prefix, continuationToken: token, maxKeys: pages.pageSize)
            token = page.nextContinuationToken
            done = !page.isTruncated
            return page
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(pages: self) }

    /// Every object of every page, in order.
    public func objects() async throws -> [S3ObjectSummary] {
        var objects: [S3ObjectSummary] = []
        for try await page in self { objects += page.objects }
        return objects
    }
}
