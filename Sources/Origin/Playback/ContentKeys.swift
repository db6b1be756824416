import Foundation
import HTTPTypes
import NIOCore
import Store

// Content keys: unwrapped once, kept in memory only, never in L1, L2 or any HTTP cache.

/// A content key as a load finds it.
enum LoadedKey: Sendable {
    case key([UInt8])
    /// No such key file in the version.
    case missing
    /// The file does not unwrap (wrong master key, tampering): logged, never sent.
    case unavailable
}

extension OriginRoutes {
    /// Key `keyID` of `version` (its file `relative`), unwrapped: from memory, else the work of
    /// reading it from the store and unwrapping it.
    func contentKey(_ version: PublishedVersion, keyID: String, relative: String) -> Lookup<LoadedKey> {
        let name = Self.keyCacheKey(version, keyID)
        if let known = keys.withLockedValue({ $0[name] }) { return .known(.key(known)) }
        return .load {
            // A wrapped key is a few hundred bytes: anything much larger is not one.
            guard let stored = try await self.store.readBuffer(relative, of: version, maximumBytes: 64 << 10) else { return .missing }
            let key: [UInt8]
            do {
                key = try self.unwrapKey(version.asset, keyID, Array(buffer: stored))
            } catch {
                // The reason names the key id and the master key id, never key bytes.
                self.logger.error("key unwrap failed", metadata: ["asset": "\(version.asset)", "key": "\(keyID)", "error": "\(error)"])
                return .unavailable
            }
            self.keys.withLockedValue { keys in
                if keys.count >= 10_000 { keys.removeAll() }
                keys[name] = key
            }
            return .key(key)
        }
    }

    static func keyResponse(_ key: [UInt8], method: HTTPRequest.Method) -> PlaybackResponse {
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.contentLength] = String(key.count)
        // Keys must never sit in a shared cache or on a player's disk.
        headers[.cacheControl] = "no-store, private"
        return PlaybackResponse(status: .ok, headers: headers, body: method == .head ? nil : ByteBuffer(bytes: key))
    }

    static func keyUnavailable(_ keyID: String) -> PlaybackResponse {
        var response = PlaybackResponse.plain(.internalServerError, "key \(keyID) is not available\n")
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// Where ``keys`` holds a version's unwrapped key.
    static func keyCacheKey(_ version: PublishedVersion, _ keyID: String) -> String {
        "\(version.version)/\(keyID)"
    }

    static func isKeyID(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
