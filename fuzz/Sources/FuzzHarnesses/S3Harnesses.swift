import S3

/// What an S3 service (or whatever answers at its address) sends back: the XML answers the S3
/// client reads.
enum S3Harnesses {
    /// The limits the harness parses under: small, so the size check is reached too.
    private static let maxBytes = 16 << 10
    private static let maxElements = 256

    /// The strict XML reader and every typed answer on top of it: whatever is accepted keeps to the
    /// depth and element limits and carries no declaration; a listing is consistent.
    static let xml = Harness("s3-xml", maxLength: 20 << 10, "S3XMLDocument.parse, S3ObjectList, multipart answers, S3ErrorBody") { bytes in
        let hasDeclaration = containsDeclaration(bytes)
        do {
            let root = try S3XMLDocument.parse(bytes, maxBytes: maxBytes, maxElements: maxElements)
            require(bytes.count <= maxBytes, "accepted \(bytes.count) bytes over the limit of \(maxBytes)")
            require(!hasDeclaration, "accepted a DOCTYPE or entity declaration")
            let (depth, count) = measure(root)
            require(depth <= S3XMLDocument.defaultMaxDepth, "accepted nesting \(depth) deep")
            require(count <= maxElements, "accepted \(count) elements")
            require(!root.name.isEmpty, "a root without a name")
        } catch {
            _ = "\(error)"
        }
        if let list = try? S3ObjectList.parse(bytes, maxBytes: maxBytes) {
            require(list.objects.allSatisfy { $0.size >= 0 }, "a negative size listed")
            require(list.isTruncated == (list.nextContinuationToken != nil), "a truncated page without a token, or a last page with one")
        }
        if let id = try? S3MultipartAnswers.uploadID(bytes, maxBytes: maxBytes) {
            require(!id.isEmpty, "an empty upload id")
        }
        if case .success(let eTag)? = try? S3MultipartAnswers.completed(bytes, maxBytes: maxBytes) {
            require(!eTag.isEmpty, "a completion without an ETag")
        }
        _ = try? S3ErrorBody.parse(bytes, maxBytes: maxBytes)
    }

    /// The deepest nesting and the number of elements of a tree.
    private static func measure(_ element: S3XMLElement) -> (depth: Int, count: Int) {
        var depth = 0
        var count = 1
        for child in element.children {
            let (childDepth, childCount) = measure(child)
            depth = max(depth, childDepth)
            count += childCount
        }
        return (depth + 1, count)
    }

    /// `<!doctype` or `<!entity`, any case: what the reader must refuse.
    private static func containsDeclaration(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let lowered = bytes.map { $0 | 0x20 }
        let open = Array("<!".utf8).map { $0 | 0x20 }
        guard lowered.count >= 2 else { return false }
        for start in 0..<(lowered.count - 1) where Array(lowered[start..<(start + 2)]) == open {
            let word = lowered[(start + 2)...].prefix(7)
            if word.starts(with: Array("doctype".utf8)) || word.starts(with: Array("entity".utf8)) { return true }
        }
        return false
    }
}
