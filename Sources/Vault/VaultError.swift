import COpenSSL

/// An error from the vault: a key that cannot be loaded, a wrapped key that does not verify,
/// a sealed source that is malformed or tampered with, or an OpenSSL call that failed.
///
/// The description names the operation and the reason. It never contains key bytes: content
/// keys and master keys are only ever named by their identifiers.
public struct VaultError: Error, CustomStringConvertible, Sendable {
    /// The complete, human-readable message: `"<file>: <reason>"` when a file is involved.
    public let message: String
    /// The file the error is about (a sealed source), when there is one.
    public let file: String?
    /// The message without the file name: what a caller shows when the path is not for its
    /// audience (an HTTP client) or is already named elsewhere (a transcode error).
    public let reason: String
    /// The `errno` of the failed system call, when one caused the error (`EEXIST`, `ENOSPC`…),
    /// so callers can tell a full disk from a bad request without parsing the message.
    public let systemError: Int32?

    /// Creates an error with a plain reason, for configuration and format errors.
    public init(_ message: String) {
        self.message = message
        self.file = nil
        self.reason = message
        self.systemError = nil
    }

    /// Creates an error about one file: the message is `"<file>: <reason>"`.
    public init(file: String, reason: String, systemError: Int32? = nil) {
        self.message = "\(file): \(reason)"
        self.file = file
        self.reason = reason
        self.systemError = systemError
    }

    public var description: String { message }

    /// Builds an error for a failed OpenSSL call from the thread's OpenSSL error queue.
    ///
    /// The queue is drained completely so that a stale entry is never reported by a later,
    /// unrelated failure on the same thread.
    static func openSSL(_ operation: String) -> VaultError {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else {
            return VaultError("\(operation) failed")
        }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let reason = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return VaultError("\(operation) failed: \(reason)")
    }
}
