/// A 20-byte Ethereum account address.
///
/// Text is read with EIP-55's mixed-case checksum in mind: a mixed-case address must match its
/// checksum exactly, since a mismatch means a typo; an all-lowercase or all-uppercase one carries no
/// checksum and is accepted unless ``ChecksumRule/required`` says otherwise. Addresses print
/// checksummed.
public struct EthereumAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The address's 20 bytes.
    public let bytes: [UInt8]

    /// How strictly ``init(hex:checksum:)`` treats letter case.
    public enum ChecksumRule: Sendable {
        /// Mixed case must match the EIP-55 checksum; a single case is accepted as unchecksummed.
        case ifMixedCase
        /// The text must be exactly the EIP-55 checksummed form (EIP-4361 messages).
        case required
    }

    /// An address of exactly 20 bytes.
    public init(bytes: [UInt8]) throws(EthereumAddressError) {
        guard bytes.count == 20 else { throw .wrongByteCount(bytes.count) }
        self.bytes = bytes
    }

    /// The address of an uncompressed secp256k1 public key: the last 20 bytes of the Keccak-256 of
    /// its 64-byte `X ‖ Y` (a 65-byte SEC1 key starting with `0x04` is accepted too).
    public init(publicKey: [UInt8]) throws(EthereumAddressError) {
        let point: ArraySlice<UInt8>
        switch publicKey.count {
        case 64: point = publicKey[...]
        case 65 where publicKey[0] == 0x04: point = publicKey.dropFirst()
        default: throw .badPublicKey(publicKey.count)
        }
        bytes = Array(Keccak256.hash(point).suffix(20))
    }

    /// Parses `0x` followed by 40 hex digits, checking the EIP-55 checksum as `checksum` says.
    public init(hex text: String, checksum: ChecksumRule = .ifMixedCase) throws(EthereumAddressError) {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == 0x30, utf8[1] == 0x78 else { throw .missingPrefix(EthereumHex.abbreviated(text)) }
        guard utf8.count == 42 else { throw .wrongLength(utf8.count - 2) }
        var bytes = [UInt8](repeating: 0, count: 20)
        var hasLower = false
        var hasUpper = false
        for index in 2..<42 {
            let character = utf8[index]
            guard let value = EthereumHex.nibble(character) else {
                throw .invalidCharacter(EthereumHex.describe(character), offset: index)
            }
            if (0x61...0x66).contains(character) { hasLower = true }
            if (0x41...0x46).contains(character) { hasUpper = true }
            bytes[(index - 2) / 2] |= (index % 2 == 0) ? value << 4 : value
        }
        self.bytes = bytes
        let mixed = hasLower && hasUpper
        if mixed || checksum == .required {
            let expected = checksummed
            guard expected == text else {
                throw mixed ? .badChecksum(expected: expected) : .notChecksummed(expected: expected)
            }
        }
    }

    /// The EIP-55 form: `0x` and 40 hex digits, a letter uppercase where the matching nibble of
    /// Keccak-256(lowercase hex digits) is 8 or more.
    public var checksummed: String {
        let lower = Array(lowercasedHex.utf8.dropFirst(2))
        let hash = Keccak256.hash(lower)
        var out: [UInt8] = [0x30, 0x78]
        out.reserveCapacity(42)
        for (index, character) in lower.enumerated() {
            let nibble = index % 2 == 0 ? hash[index / 2] >> 4 : hash[index / 2] & 0x0f
            out.append(character >= 0x61 && nibble >= 8 ? character - 0x20 : character)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `0x` and 40 lowercase hex digits: the form to use as a key (Redis, caches).
    public var lowercasedHex: String { EthereumHex.encode(bytes) }

    /// The checksummed form.
    public var description: String { checksummed }

    /// Decodes from a string, checking mixed case against the checksum.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(hex: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    /// Encodes as the checksummed string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(checksummed)
    }
}

/// Text or bytes that are not an Ethereum address, and why.
public enum EthereumAddressError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The text does not start with `0x`.
    case missingPrefix(String)
    /// Not 40 hex digits after `0x` (the count found).
    case wrongLength(Int)
    /// A character that is not a hex digit, at this offset in the text.
    case invalidCharacter(String, offset: Int)
    /// Mixed case that does not match the EIP-55 checksum; `expected` is the correct form.
    case badChecksum(expected: String)
    /// A single-case address where a checksummed one is required; `expected` is the correct form.
    case notChecksummed(expected: String)
    /// Raw bytes that are not 20 bytes long.
    case wrongByteCount(Int)
    /// A public key that is neither 64 bytes nor 65 bytes starting with 0x04.
    case badPublicKey(Int)

    public var description: String {
        switch self {
        case .missingPrefix(let text): "address '\(text)' does not start with 0x"
        case .wrongLength(let count): "address has \(count) hex digits after 0x, expected 40"
        case .invalidCharacter(let character, let offset): "address has \(character) at offset \(offset), not a hex digit"
        case .badChecksum(let expected): "bad checksum: the mixed-case address does not match its EIP-55 checksum (\(expected))"
        case .notChecksummed(let expected): "bad checksum: the address is not EIP-55 checksummed (expected \(expected))"
        case .wrongByteCount(let count): "an address is 20 bytes, got \(count)"
        case .badPublicKey(let count): "a public key is 64 bytes (X ‖ Y) or 65 starting with 0x04, got \(count)"
        }
    }
}
