import Foundation

/// The current master key plus earlier ones, so the master key can rotate: new content keys are
/// wrapped with the current key, and keys wrapped under an earlier one still unwrap.
public struct Keyring: Sendable {
    /// The environment variable listing earlier master keys, comma-separated base64.
    public static let previousKeysEnvironmentVariable = "STREAMGATE_PREVIOUS_MASTER_KEYS"

    /// The key new content keys are wrapped with.
    public let current: MasterKey
    /// Earlier master keys, only used to unwrap.
    public let previous: [MasterKey]

    /// Creates a keyring from the current master key and earlier ones.
    public init(current: MasterKey, previous: [MasterKey] = []) {
        self.current = current
        self.previous = previous
    }

    /// Loads the current key as ``MasterKey/load(environment:keyFile:)`` does, and earlier keys
    /// from `STREAMGATE_PREVIOUS_MASTER_KEYS` (comma-separated base64; blanks ignored).
    public static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        keyFile: String? = nil
    ) throws -> Keyring {
        let current = try MasterKey.load(environment: environment, keyFile: keyFile)
        let list = (environment[previousKeysEnvironmentVariable] ?? "")
            .split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
        let previous = try list.enumerated().map { index, text in
            try MasterKey(base64: text, source: "\(previousKeysEnvironmentVariable) entry \(index + 1)")
        }
        return Keyring(current: current, previous: previous)
    }

    /// Wraps with the current master key.
    public func wrap(_ key: ContentKey, context: String) throws -> WrappedKey {
        try current.wrap(key, context: context)
    }

    /// Unwraps with whichever key in the ring has the wrapped key's master key id.
    public func unwrap(_ wrapped: WrappedKey, context: String) throws -> ContentKey {
        guard let key = masterKey(id: wrapped.masterKeyID) else {
            throw VaultError("content key \(wrapped.keyID) \(notInKeyring(wrapped.masterKeyID))")
        }
        return try key.unwrap(wrapped, context: context)
    }

    /// The key in the ring with this id, current or earlier.
    func masterKey(id: String) -> MasterKey? {
        ([current] + previous).first { $0.id == id }
    }

    /// The end of a "not in the keyring" message: which ids are known and how to add one.
    func notInKeyring(_ masterKeyID: String) -> String {
        let known = ([current] + previous).map(\.id).joined(separator: ", ")
        return "is wrapped by master key \(masterKeyID), which is not in the keyring (known: \(known)); add it to \(Self.previousKeysEnvironmentVariable)"
    }
}
