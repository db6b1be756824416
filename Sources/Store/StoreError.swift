import Foundation

/// A store failure: the path involved and the reason, in one line.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    /// An error for a failed system call on `path`, with the C library's reason for `errno`.
    static func system(_ operation: String, path: String, errno code: Int32 = errno) -> StoreError {
        StoreError("\(path): \(operation): \(String(cString: strerror(code)).lowercased())")
    }

    public var description: String { message }
}
