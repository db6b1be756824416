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

    /// The keyring as the variables ``load(environment:keyFile:)`` reads, one `NAME=value` line
    /// each: how a worker hands it to its transcode child, on a pipe (an environment or arguments
    /// can be read by other processes of the same user, and are inherited further).
    public func handoff() -> [UInt8] {
        var text = "\(MasterKey.environmentVariable)=\(current.base64EncodedKey())\n"
        if !previous.isEmpty {
            text += "\(Self.previousKeysEnvironmentVariable)=\(previous.map { $0.base64EncodedKey() }.joined(separator: ","))\n"
        }
        return Array(text.utf8)
    }

    /// The keyring ``handoff()`` wrote.
    public static func load(handoff: [UInt8]) throws -> Keyring {
        var variables: [String: String] = [:]
        for line in String(decoding: handoff, as: UTF8.self).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let name = String(line[..<equals])
            guard name == MasterKey.environmentVariable || name == previousKeysEnvironmentVariable else {
                throw VaultError("keyring handoff: unexpected line '\(name)'")
            }
            variables[name] = String(line[line.index(after: equals)...])
        }
        guard variables[MasterKey.environmentVariable] != nil else { throw VaultError("keyring handoff: no master key") }
        return try load(environment: variables)
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
