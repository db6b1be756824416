import Foundation
import Vault

/// The child's end of a source channel (``SourceChannel``): the source's bytes, read blocking from
/// the worker that serves them, for the sealed reader and the demuxer alike.
///
/// Opening asks for the size. Reads go through a window of up to ``SourceChannel/maxRead`` bytes,
/// so libavformat's small forward reads cost one exchange per window, not one each. When the
/// worker cannot read the source it answers with why; that message is the read's failure, word for
/// word, as a `SourceUnavailableError`. A channel out of step or closed fails this read and every
/// later one. Thread-safe (one exchange at a time).
public final class SourceChannelReader: RandomAccessBytes {
    /// The source as messages name it (an `s3://` URL): only ever a name, never opened.
    public let name: String
    public private(set) var size = 0
    /// Exchanges made, the size request included.
    public var requests: Int { lock.withLock { exchanges } }

    private let descriptor: Int32
    private let maxRead: Int
    private let lock = NSLock()
    private var exchanges = 0
    private var broken: String?
    private var window: [UInt8] = []
    private var windowOffset = 0

    /// Asks the worker on `descriptor` (taken: closed with this object) for the source's size.
    public init(descriptor: Int32, name: String, maxRead: Int = SourceChannel.maxRead) throws(SourceUnavailableError) {
        self.descriptor = descriptor
        self.name = name
        self.maxRead = min(max(1, maxRead), SourceChannel.maxRead)
        let answer: (SourceChannelAnswer, [UInt8])
        do throws(SourceUnavailableError) {
            answer = try exchange(.size, size: nil)
        } catch {
            close(descriptor)
            throw error
        }
        switch answer.0 {
        case .size(let size): self.size = size
        default:
            close(descriptor)
            throw SourceUnavailableError(source: name, reason: String(decoding: answer.1, as: UTF8.self))
        }
    }

    deinit { close(descriptor) }

    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard offset >= 0 else { throw SourceUnavailableError(source: name, reason: "read at negative offset \(offset)") }
        return try lock.withLock { () throws -> Int in
            var copied = 0
            while copied < buffer.count, offset + copied < size {
                let position = offset + copied
                if !(windowOffset..<(windowOffset + window.count)).contains(position) {
                    try fill(at: position)
                }
                let within = position - windowOffset
                let count = min(window.count - within, buffer.count - copied)
                window.withUnsafeBytes { source in
                    (buffer.baseAddress! + copied).copyMemory(from: source.baseAddress! + within, byteCount: count)
                }
                copied += count
            }
            return copied
        }
    }

    /// Replaces the window with the bytes from `offset` on (under the lock).
    private func fill(at offset: Int) throws(SourceUnavailableError) {
        let length = min(maxRead, size - offset)
        let (answer, payload) = try exchange(.read(offset: offset, length: length), size: size)
        guard case .bytes = answer else {
            throw SourceUnavailableError(source: name, reason: String(decoding: payload, as: UTF8.self))
        }
        window = payload
        windowOffset = offset
    }

    /// One request and its answer: the header and what follows it.
    private func exchange(_ request: SourceChannelRequest, size: Int?) throws(SourceUnavailableError) -> (SourceChannelAnswer, [UInt8]) {
        if let broken { throw SourceUnavailableError(source: name, reason: broken) }
        do {
            exchanges += 1
            try request.frame.withUnsafeBytes { try SourceChannelIO.send(descriptor, $0) }
            var header = [UInt8](repeating: 0, count: SourceChannel.frameLength)
            try receiveAll(&header, what: "an answer's header")
            let answer = try SourceChannelAnswer.decode(header, answering: request, size: size)
            let count: Int
            switch answer {
            case .size: count = 0
            case .bytes(_, let bytes): count = bytes
            case .error(let length): count = length
            }
            var payload = [UInt8](repeating: 0, count: count)
            try receiveAll(&payload, what: "an answer's \(count) bytes")
            return (answer, payload)
        } catch {
            // Out of step or closed: nothing later on this channel can be trusted.
            let reason = "the source channel from the worker failed: \((error as? SourceChannelError)?.reason ?? "\(error)")"
            broken = reason
            throw SourceUnavailableError(source: name, reason: reason)
        }
    }

    private func receiveAll(_ bytes: inout [UInt8], what: String) throws {
        let expected = bytes.count
        let got = try bytes.withUnsafeMutableBytes { try SourceChannelIO.receive(descriptor, into: $0) }
        guard got == expected else {
            throw SourceChannelError("the worker closed the channel after \(got) of \(what)")
        }
    }
}
