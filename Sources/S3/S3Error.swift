/// A failed S3 operation: what was asked (operation, bucket, key) and what went wrong, so one line
/// in a log says which object and why.
public struct S3Error: Error, Sendable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// S3 answered with an error status; `code` and `message` come from its `<Error>` body
        /// (HEAD has none: `code` is then nil).
        case status(Int, code: String?, message: String?, requestID: String?)
        /// No answer: the connection failed or timed out (after the retries allowed).
        case transport(String)
        /// An answer StreamGate cannot read: XML refused, a header missing.
        case invalidAnswer(String)
        /// A body larger than the caller allowed.
        case tooLarge(limit: Int)
        /// The object is no longer the one a reader opened (its ETag then), so its bytes would be
        /// mixed from two objects: `now` is the ETag it has, when S3 said.
        case changed(opened: String, now: String?)
    }

    public var operation: String
    public var bucket: String
    public var key: String?
    public var reason: Reason
    /// How many requests were made.
    public var attempts: Int

    public init(operation: String, bucket: String, key: String?, reason: Reason, attempts: Int = 1) {
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.reason = reason
        self.attempts = attempts
    }

    /// The HTTP status S3 answered, if it did.
    public var status: Int? {
        if case .status(let status, _, _, _) = reason { return status }
        return nil
    }

    /// S3's error code (`NoSuchKey`, `SlowDown`, `PreconditionFailed`…), if it gave one.
    public var code: String? {
        if case .status(_, let code, _, _) = reason { return code }
        return nil
    }

    /// No such object, bucket or upload (404).
    public var isNotFound: Bool { status == 404 }

    public var description: String {
        let target = "s3://\(bucket)" + (key.map { "/" + $0 } ?? "")
        let tries = attempts > 1 ? " (after \(attempts) attempts)" : ""
        switch reason {
        case .status(let status, let code, let message, let requestID):
            let detail = [code, message].compactMap { $0 }.joined(separator: ": ")
            let request = requestID.map { " [request \($0)]" } ?? ""
            return "S3 \(operation) \(target): HTTP \(status)" + (detail.isEmpty ? "" : " \(detail)") + request + tries
        case .transport(let detail):
            return "S3 \(operation) \(target): no answer: \(detail)" + tries
        case .invalidAnswer(let detail):
            return "S3 \(operation) \(target): unreadable answer: \(detail)"
        case .tooLarge(let limit):
            return "S3 \(operation) \(target): body larger than \(limit) bytes"
        case .changed(let opened, let now):
            let found = now.map { "it is now \($0)" } ?? "If-Match failed"
            return "S3 \(operation) \(target): the object changed while it was being read (ETag \(opened) when opened; \(found)): "
                + "it was replaced, and its bytes must not be mixed with the old ones"
        }
    }
}
