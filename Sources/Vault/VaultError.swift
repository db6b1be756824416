import COpenSSL

/// An error from the vault: a key that cannot be loaded, a wrapped key that does not verify,
/// or an OpenSSL call that failed.
///
/// The description names the operation and the reason. It never contains key bytes: content
/// keys and master keys are only ever named by their identifiers.
public struct VaultError: Error, CustomStringConvertible, Sendable {
    /// The complete, human-readable message.
    public let message: String

    /// Creates an error with a plain reason, for configuration and format errors.
    public init(_ message: String) {
        self.message = message
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
