import Foundation
import HTTPTypes
import NIOCore
import Store

// A range of a segment L1 does not hold is read as that range from the store (a ranged GET on a
// bucket), not as the whole segment: a player seeking into a large segment costs the bytes it
// asked for. What L1 holds is still served from memory, ranges included.

/// Bytes of one file read for one range request; never kept in L1.
struct PartialObject: Sendable {
    let body: ObjectBytes
    /// The offset of the first byte in the file.
    let lower: Int
    /// The file's whole size.
    let totalSize: Int
}

extension OriginRoutes {
    /// The ranged read of a segment for `request`, when it asks for one plain byte range (no
    /// validators) of a segment L1 does not hold; nil when the request is answered the usual way.
    func partialRead(_ known: KnownTarget, _ type: MediaType, in version: PublishedVersion, request: HTTPRequest) -> Lookup<PartialObject?>? {
        guard type == .transportStream, request.method == .get, let range = Self.plainRange(request.headerFields) else { return nil }
        if cache.get(known.cacheKey(in: version), countingMiss: false) != nil { return nil }
        let relative = known.target.relative
        return .load {
            guard let read = try await self.read(relative, of: version, range: range) else { return nil }
            return PartialObject(body: read.bytes, lower: range.lowerBound, totalSize: read.totalSize)
        }
    }

    /// The answer for a ranged read: 206 with the same validators as the whole file's answers
    /// (the ETag names the version and the file, so it is known without the bytes), or 416.
    func partialResponse(_ partial: PartialObject, known: KnownTarget, type: MediaType, version: PublishedVersion) -> PlaybackResponse {
        let publishTime = HTTPSemantics.publishTime(ofVersion: version.version) ?? 0
        var headers = Self.validatorHeaders(
            type: type, cacheControl: cacheControl(versioned: known.target.version != nil),
            lastModified: HTTPSemantics.httpDate(publishTime), eTag: CachedObject.eTag(version: version.version, relative: known.target.relative)
        )
        headers[.acceptRanges] = "bytes"
        let count = partial.body.buffer.readableBytes
        guard count > 0, partial.lower < partial.totalSize else {
            var refusal = PlaybackResponse.plain(.rangeNotSatisfiable, "the range is outside the \(partial.totalSize) bytes of this object\n")
            refusal.headers[.contentRange] = "bytes */\(partial.totalSize)"
            return refusal
        }
        headers[.contentRange] = "bytes \(partial.lower)-\(partial.lower + count - 1)/\(partial.totalSize)"
        headers[.contentLength] = String(count)
        return PlaybackResponse(status: .partialContent, headers: headers, body: partial.body.buffer, lendsBody: partial.body.lendable)
    }

    /// `bytes=a-b` or `bytes=a-`, with no `If-Range` or other validator; nil for anything else
    /// (a suffix range needs the size first, several ranges are answered whole).
    static func plainRange(_ fields: HTTPFields) -> ClosedRange<Int>? {
        guard let header = fields[.range], fields[.ifRange] == nil, fields[.ifNoneMatch] == nil, fields[.ifModifiedSince] == nil else { return nil }
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else { return nil }
        let spec = text.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-"), !spec.contains(",") else { return nil }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        guard !first.isEmpty, first.allSatisfy(\.isASCIIDigit), last.allSatisfy(\.isASCIIDigit), let lower = Int(first) else { return nil }
        if last.isEmpty { return lower...(lower + maximumObjectBytes - 1) }
        guard let upper = Int(last), upper >= lower, upper - lower < maximumObjectBytes else { return nil }
        return lower...upper
    }
}
