import Foundation
import Logging
import NIOCore
import Vault

/// The worker's end of a source channel (``SourceChannel``): serves any `RandomAccessSource` (an
/// object read by ranged GETs) to the transcode child on the other end, on a thread of its own,
/// for as long as the child keeps its end open.
///
/// The child parses hostile media, so it is treated as hostile too: every request is checked
/// (``SourceChannelRequest/decode(_:size:maxRead:)``) before anything is read or allocated, and one
/// that breaks a rule ends the channel, logged with the reason; the child's next read then fails.
/// At most one read of at most ``maxRead`` bytes is in flight. A source that cannot be read is
/// answered with its error's message, which the child reports as its read's failure.
public final class SourceChannelServer: @unchecked Sendable {
    /// How serving ended.
    public enum Ending: Sendable, Equatable, CustomStringConvertible {
        /// The child closed its end: it exited, or has read all it wanted.
        case childClosed
        /// ``stop()`` ended it.
        case stopped
        /// A request broke the protocol; the channel was closed at once.
        case refused(String)
        /// The socket failed.
        case failed(String)

        public var description: String {
            switch self {
            case .childClosed: "the child closed the channel"
            case .stopped: "stopped by the worker"
            case .refused(let reason): "refused the child's request: \(reason)"
            case .failed(let reason): "the channel failed: \(reason)"
            }
        }
    }

    /// The source as the log names it (an `s3://` URL).
    public let name: String
    public let source: any RandomAccessSource
    /// The largest read the child may ask for.
    public let maxRead: Int

    private let descriptor: Int32
    private let logger: Logger
    private let lock = NSLock()
    private var ending: Ending?
    private var closed = false
    private var stopRequested = false
    private var inFlight: Task<Void, Never>?
    private var waiters: [CheckedContinuation<Ending, Never>] = []
    private var served = 0
    private var servedBytes = 0

    /// Starts serving `source` on `descriptor` (the worker's end of ``SourceChannel/makePair()``,
    /// taken: closed when serving ends).
    public init(descriptor: Int32, source: any RandomAccessSource, name: String, maxRead: Int = SourceChannel.maxRead, logger: Logger) {
        self.descriptor = descriptor
        self.source = source
        self.name = name
        self.maxRead = min(max(1, maxRead), SourceChannel.maxRead)
        self.logger = logger
        let thread = Thread { [self] in finish(serve()) }
        thread.name = "streamgate.source-channel"
        thread.start()
    }

    /// Requests answered so far (the size request included).
    public var requestsServed: Int { lock.withLock { served } }
    /// Source bytes sent so far.
    public var bytesServed: Int { lock.withLock { servedBytes } }

    /// How serving ended; nil while it goes on.
    public var ended: Ending? { lock.withLock { ending } }

    /// Ends serving: a blocked receive returns, a read in flight is cancelled. The child's next
    /// read fails. Safe to call at any time, and more than once.
    public func stop() {
        lock.withLock {
            stopRequested = true
            if !closed { shutdown(descriptor, Int32(SHUT_RDWR)) }
            inFlight?.cancel()
        }
    }

    /// Waits until serving has ended, and says how.
    public func finished() async -> Ending {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let ending {
                lock.unlock()
                continuation.resume(returning: ending)
            } else {
                waiters.append(continuation)
                lock.unlock()
            }
        }
    }

    private var isStopping: Bool { lock.withLock { stopRequested } }

    /// Answers requests until the child closes its end, breaks a rule, or ``stop()``.
    private func serve() -> Ending {
        var frame = [UInt8](repeating: 0, count: SourceChannel.frameLength)
        let size = source.size
        while true {
            let got: Int
            do {
                got = try frame.withUnsafeMutableBytes { try SourceChannelIO.receive(descriptor, into: $0) }
            } catch {
                return isStopping ? .stopped : .failed("\(error)")
            }
            if got == 0 { return isStopping ? .stopped : .childClosed }
            guard got == frame.count else {
                return isStopping ? .stopped : .refused("the child closed the channel inside a request frame (\(got) of \(frame.count) bytes)")
            }
            let request: SourceChannelRequest
            do throws(SourceChannelError) {
                request = try SourceChannelRequest.decode(frame, size: size, maxRead: maxRead)
            } catch {
                return .refused(error.reason)
            }
            do {
                switch request {
                case .size:
                    try send(SourceChannelAnswer.size(size).header)
                case .read(let offset, let length):
                    let count = min(length, size - offset)
                    guard count > 0 else {
                        try send(SourceChannelAnswer.bytes(offset: offset, count: 0).header)
                        break
                    }
                    switch read(offset: offset, count: count) {
                    case .success(let bytes) where bytes.readableBytes == count:
                        try send(SourceChannelAnswer.bytes(offset: offset, count: count).header)
                        try bytes.withUnsafeReadableBytes { try SourceChannelIO.send(descriptor, $0) }
                        lock.withLock { servedBytes += count }
                    case .success(let bytes):
                        try sendError("the source gave \(bytes.readableBytes) bytes for a read of \(count) at \(offset)")
                    case .failure(let error):
                        if isStopping { return .stopped }
                        try sendError("\(error)")
                    }
                }
                lock.withLock { served += 1 }
            } catch {
                // The only peer is the child: a send that fails means it has gone.
                return isStopping ? .stopped : .childClosed
            }
        }
    }

    /// One read of the source, awaited on this thread (never one of Swift's pool), cancellable by
    /// ``stop()``.
    private func read(offset: Int, count: Int) -> Result<ByteBuffer, any Error> {
        let done = DispatchSemaphore(value: 0)
        let result = ReadResult()
        let task = Task { [source] in
            do {
                result.value = .success(try await source.read(offset: offset, length: count))
            } catch {
                result.value = .failure(error)
            }
            done.signal()
        }
        lock.withLock {
            inFlight = task
            if stopRequested { task.cancel() }
        }
        done.wait()
        lock.withLock { inFlight = nil }
        return result.value ?? .failure(CancellationError())
    }

    private func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try SourceChannelIO.send(descriptor, $0) }
    }

    /// An error answer: the message, cut to what the protocol allows.
    private func sendError(_ message: String) throws {
        var text = message.isEmpty ? "unknown error" : message
        if text.utf8.count > SourceChannel.maxErrorLength {
            // Cut on bytes, then decoded again: a character cut in two becomes U+FFFD (3 bytes).
            text = String(decoding: text.utf8.prefix(SourceChannel.maxErrorLength - 8), as: UTF8.self) + "…"
        }
        let bytes = Array(text.utf8)
        try send(SourceChannelAnswer.error(length: bytes.count).header + bytes)
    }

    private func finish(_ how: Ending) {
        let waiting = lock.withLock { () -> [CheckedContinuation<Ending, Never>] in
            closed = true
            close(descriptor)
            ending = how
            defer { waiters = [] }
            return waiters
        }
        let metadata: Logger.Metadata = ["source": "\(name)", "requests": "\(requestsServed)", "bytes": "\(bytesServed)"]
        switch how {
        case .refused(let reason):
            logger.warning("the transcode child broke the source channel's rules; channel closed", metadata: metadata.merging(["why": "\(reason)"]) { $1 })
        case .failed(let reason):
            logger.error("the source channel failed", metadata: metadata.merging(["why": "\(reason)"]) { $1 })
        case .childClosed, .stopped:
            logger.debug("source channel closed", metadata: metadata.merging(["how": "\(how)"]) { $1 })
        }
        for waiter in waiting { waiter.resume(returning: how) }
    }
}

/// What the read task hands back to the serving thread, which reads it only after the task signalled.
private final class ReadResult: @unchecked Sendable {
    var value: Result<ByteBuffer, any Error>?
}
