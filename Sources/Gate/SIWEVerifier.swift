import Foundation
import Ethereum

/// What a sign-in must match to be accepted.
public struct SIWEVerifierConfiguration: Sendable {
    /// The authority the messages must name (`stream.example.com`, `localhost:8080`), compared
    /// without regard to case. EIP-4361 binds the message to the origin that asked for it: a message
    /// made for another site is refused even with a valid signature.
    public var domain: String
    /// The schemes a message may name before its domain; a message naming none means `https`.
    public var schemes: Set<String>
    /// What the message's `URI:` must be.
    public var uri: URIRule
    /// The chains a session may be bound to (EIP-155 ids).
    public var chainIDs: Set<UInt64>
    /// How far the verifier's clock and the signer's may disagree, applied to every time check.
    public var clockSkew: TimeInterval
    /// How long after `Issued At` a message is still accepted, expiration time or not.
    public var maxMessageAge: TimeInterval

    /// The rule for the message's `URI:`.
    ///
    /// A relying party usually knows the exact sign-in URI; a prefix serves one verifier for several
    /// paths under one site. A prefix only matches at a boundary: `https://a.example/app` matches
    /// `https://a.example/app`, `…/app/x`, `…/app?y` and `…/app#z`, never `https://a.example/apple`;
    /// a prefix ending in `/` matches anything under it.
    public enum URIRule: Sendable, Equatable {
        /// The URI must be exactly this text.
        case exact(String)
        /// The URI must start with this text at a path boundary.
        case prefix(String)

        /// Whether `uri` satisfies the rule.
        public func matches(_ uri: String) -> Bool {
            switch self {
            case .exact(let expected):
                return uri == expected
            case .prefix(let prefix):
                guard uri.hasPrefix(prefix) else { return false }
                if prefix.hasSuffix("/") { return true }
                let next = uri.utf8.dropFirst(prefix.utf8.count).first
                return next == nil || next == UInt8(ascii: "/") || next == UInt8(ascii: "?") || next == UInt8(ascii: "#")
            }
        }
    }

    public init(
        domain: String,
        schemes: Set<String> = ["https"],
        uri: URIRule,
        chainIDs: Set<UInt64>,
        clockSkew: TimeInterval = 60,
        maxMessageAge: TimeInterval = 300
    ) {
        self.domain = domain
        self.schemes = schemes
        self.uri = uri
        self.chainIDs = chainIDs
        self.clockSkew = clockSkew
        self.maxMessageAge = maxMessageAge
    }
}

/// Signature checks for contract accounts (EIP-1271, and EIP-6492 for contracts not deployed yet),
/// which need the chain. The verifier asks one only after the message's nonce is spent and only
/// when ecrecover does not yield the message's address, so signatures by ordinary accounts never
/// cost a call to a node, and no call is made for a message with an unknown or spent nonce.
public protocol ContractSignatureChecker: Sendable {
    /// Whether `address` accepts `signature` over `hash` on chain `chainID` (EIP-4361: the contract
    /// is resolved on the message's chain). `true` or `false` when the account answered; nil when it
    /// has no opinion (no code and no EIP-6492 wrapper). Throws when the chain could not be asked:
    /// the sign-in then fails as unavailable rather than as a bad signature.
    func isValidSignature(address: EthereumAddress, hash: [UInt8], signature: [UInt8], chainID: UInt64) async throws -> Bool?
}

/// A sign-in the verifier accepted.
public struct SIWEVerification: Sendable {
    /// How the signature was found valid.
    public enum Method: Sendable, Equatable {
        /// ecrecover of the EIP-191 hash gave the message's address.
        case externallyOwnedAccount
        /// The ``ContractSignatureChecker`` accepted it.
        case contract
    }

    /// The parsed message.
    public let message: SIWEMessage
    /// The account signed in: the message's address.
    public var address: EthereumAddress { message.address }
    public let method: Method
}

/// Why a sign-in was refused: a stable, machine-readable ``reason`` and a message for humans.
public enum SIWEVerificationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The text is not an EIP-4361 message, or the signature is not hex.
    case malformed(String)
    /// The message names another domain or scheme.
    case wrongDomain(String)
    /// The message's URI is not the configured one.
    case wrongURI(String)
    /// The message is bound to a chain that is not allowed.
    case wrongChain(UInt64)
    /// Past its expiration time, or older than the maximum message age.
    case expired(String)
    /// Before its not-before time, or issued in the future.
    case notYetValid(String)
    /// The signature is not the message's address's.
    case badSignature(String)
    /// The nonce was never issued, or has expired.
    case nonceUnknown
    /// The nonce was already spent: the message is a replay.
    case nonceReplayed
    /// The nonce store or the contract checker could not be reached; try again later.
    case unavailable(String)

    /// `malformed`, `wrong_domain`, `wrong_uri`, `wrong_chain`, `expired`, `not_yet_valid`,
    /// `bad_signature`, `nonce_unknown`, `nonce_replayed` or `unavailable`.
    public var reason: String {
        switch self {
        case .malformed: "malformed"
        case .wrongDomain: "wrong_domain"
        case .wrongURI: "wrong_uri"
        case .wrongChain: "wrong_chain"
        case .expired: "expired"
        case .notYetValid: "not_yet_valid"
        case .badSignature: "bad_signature"
        case .nonceUnknown: "nonce_unknown"
        case .nonceReplayed: "nonce_replayed"
        case .unavailable: "unavailable"
        }
    }

    /// What went wrong, for a person.
    public var message: String {
        switch self {
        case .malformed(let detail): "not a valid sign-in message: \(detail)"
        case .wrongDomain(let detail): "the message is for another site: \(detail)"
        case .wrongURI(let uri): "the message's URI \(uri) is not this service's"
        case .wrongChain(let chain): "chain \(chain) is not accepted here"
        case .expired(let detail): "the message has expired: \(detail)"
        case .notYetValid(let detail): "the message is not valid yet: \(detail)"
        case .badSignature(let detail): "the signature does not match the message's address: \(detail)"
        case .nonceUnknown: "the nonce was not issued here or has expired; ask for a new one"
        case .nonceReplayed: "the nonce was already used: a sign-in message is accepted once"
        case .unavailable(let detail): "sign-in is unavailable: \(detail)"
        }
    }

    public var description: String { "\(reason): \(message)" }
}

/// Checks Sign-In with Ethereum messages (EIP-4361) and their signatures.
///
/// ``verify(message:signature:)`` accepts a message when, in this order: it parses; its scheme,
/// domain, URI and chain are the configured ones; the clock is within its validity (expiration time,
/// not-before, and a maximum age since `Issued At`, each with the allowed clock skew); its nonce was
/// issued here and is unspent — and is spent now, atomically; and only then the EIP-191 signature
/// recovers to its address — or, failing that, the configured contract checker accepts it.
///
/// Everything cheap and local comes first, the nonce before any signature check: a contract
/// account's check runs attacker-chosen calldata on a node, so it must cost the sender a fresh
/// nonce (which are rate-limited and bounded) rather than nothing. A nonce thus buys exactly one
/// signature check: a message refused for its signature has spent it, and the wallet asks for a
/// new one. Messages refused before that (domain, times) leave it unspent.
public struct SIWEVerifier: Sendable {
    public let configuration: SIWEVerifierConfiguration
    private let nonces: any NonceStore
    private let contractChecker: (any ContractSignatureChecker)?
    private let clock: @Sendable () -> Date

    /// - Parameters:
    ///   - contractChecker: consulted when ecrecover does not give the message's address; nil accepts
    ///     ordinary accounts only.
    ///   - clock: the current time; tests pass a fixed one.
    public init(
        configuration: SIWEVerifierConfiguration,
        nonces: any NonceStore,
        contractChecker: (any ContractSignatureChecker)? = nil,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.configuration = configuration
        self.nonces = nonces
        self.contractChecker = contractChecker
        self.clock = clock
    }

    /// Verifies `message` (the exact text that was signed) and its `0x`-prefixed hex signature.
    public func verify(message: String, signature: String) async throws(SIWEVerificationError) -> SIWEVerification {
        let bytes: [UInt8]
        do {
            bytes = try EthereumHex.decode(signature)
        } catch {
            throw .malformed("signature: \(error.reason)")
        }
        return try await verify(message: message, signature: bytes)
    }

    /// Verifies `message` (the exact text that was signed) and its signature bytes.
    public func verify(message text: String, signature: [UInt8]) async throws(SIWEVerificationError) -> SIWEVerification {
        let message: SIWEMessage
        do {
            message = try SIWEMessage(parsing: text)
        } catch {
            throw .malformed(error.description)
        }
        try checkFields(message)
        try checkTimes(message, now: clock())
        try await spendNonce(message.nonce)
        let method = try await checkSignature(message, text: text, signature: signature)
        return SIWEVerification(message: message, method: method)
    }

    private func spendNonce(_ nonce: String) async throws(SIWEVerificationError) {
        let consumption: NonceConsumption
        do {
            consumption = try await nonces.consume(nonce)
        } catch {
            throw .unavailable("nonce store: \(error)")
        }
        switch consumption {
        case .consumed: return
        case .unknown: throw .nonceUnknown
        case .alreadyUsed: throw .nonceReplayed
        }
    }

    private func checkFields(_ message: SIWEMessage) throws(SIWEVerificationError) {
        let scheme = message.scheme ?? "https"
        guard configuration.schemes.contains(where: { $0.caseInsensitiveCompare(scheme) == .orderedSame }) else {
            throw .wrongDomain("scheme '\(scheme)' is not one of \(configuration.schemes.sorted())")
        }
        guard message.domain.caseInsensitiveCompare(configuration.domain) == .orderedSame else {
            throw .wrongDomain("'\(message.domain)', expected '\(configuration.domain)'")
        }
        guard configuration.uri.matches(message.uri) else { throw .wrongURI(message.uri) }
        guard configuration.chainIDs.contains(message.chainID) else { throw .wrongChain(message.chainID) }
    }

    private func checkTimes(_ message: SIWEMessage, now: Date) throws(SIWEVerificationError) {
        let skew = configuration.clockSkew
        if let expiration = message.expirationTime, now.timeIntervalSince(expiration.date) >= skew {
            throw .expired("expiration time \(expiration.text)")
        }
        if let notBefore = message.notBefore, notBefore.date.timeIntervalSince(now) > skew {
            throw .notYetValid("not before \(notBefore.text)")
        }
        let age = now.timeIntervalSince(message.issuedAt.date)
        if age < -skew {
            throw .notYetValid("issued at \(message.issuedAt.text), in the future")
        }
        if age > configuration.maxMessageAge + skew {
            throw .expired("issued at \(message.issuedAt.text), more than \(Int(configuration.maxMessageAge)) s ago")
        }
    }

    private func checkSignature(_ message: SIWEMessage, text: String, signature: [UInt8]) async throws(SIWEVerificationError) -> SIWEVerification.Method {
        let hash = EIP191.personalMessageHash(text)
        let problem: String
        do {
            let signer = try Secp256k1Recovery.recoverAddress(hash: hash, signature: signature)
            if signer == message.address { return .externallyOwnedAccount }
            problem = "signed by \(signer), not by \(message.address)"
        } catch {
            problem = error.description
        }
        if let contractChecker {
            let verdict: Bool?
            do {
                verdict = try await contractChecker.isValidSignature(address: message.address, hash: hash, signature: signature, chainID: message.chainID)
            } catch {
                throw .unavailable("contract signature check: \(error)")
            }
            switch verdict {
            case true?: return .contract
            case false?: throw .badSignature("the contract account \(message.address) refused the signature")
            case nil: break
            }
        }
        throw .badSignature(problem)
    }
}
