import CLinux
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Sends an L1 body to a socket without copying it: `vmsplice` puts references to the body's pages
/// in a pipe, and `splice` moves them on to the socket, where they stay until the client has the
/// bytes. `write` would copy every byte into the socket's buffers instead, the largest cost of a hit
/// (BENCHMARKS.md). Only page-mapped bodies may be lent (``ObjectBytes`` says why).
///
/// One lender per event-loop thread, used only on that thread. Its pipe is empty between two
/// sends: whatever the socket does not take at once is drained to `/dev/null` and given back to
/// the caller to write through NIO, which copies it when the socket has room.
final class PageLender {
    private let readEnd: CInt
    private let writeEnd: CInt
    private let sink: CInt
    /// A drain failed: the pipe may hold bytes, so it is never used again.
    private var spoiled = false

    /// The pipe holds this many bytes of references (a segment at once); the kernel may give less
    /// (`/proc/sys/fs/pipe-max-size`, per-user limits), and then a body goes in several rounds.
    static let pipeBytes = 1 << 20

    /// Each thread only ever sees the lender it made.
    private nonisolated(unsafe) static let perThread = ThreadSpecificVariable<PageLender>()

    /// This thread's lender, made on first use; nil when none can be made (out of descriptors).
    static var current: PageLender? {
        if let lender = perThread.currentValue, !lender.spoiled { return lender }
        let lender = PageLender()
        perThread.currentValue = lender
        return lender
    }

    private init?() {
        var ends: [CInt] = [-1, -1]
        guard clinux_pipe(&ends) == 0 else { return nil }
        let sink = open("/dev/null", O_WRONLY | O_CLOEXEC)
        guard sink >= 0 else {
            close(ends[0])
            close(ends[1])
            return nil
        }
        (readEnd, writeEnd, self.sink) = (ends[0], ends[1], sink)
        _ = clinux_set_pipe_size(writeEnd, CInt(Self.pipeBytes))
    }

    deinit {
        close(readEnd)
        close(writeEnd)
        close(sink)
    }

    /// Sends `head` (copied: a few hundred bytes) and then `body` (lent) to the non-blocking
    /// `socket`, as far as the socket takes them now. Returns how many bytes of the two, head
    /// first, went out; the rest are the caller's to write. An error (the client went away) sends
    /// nothing more, and the caller's write then meets it.
    func send(head: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer, to socket: CInt) -> Int {
        // MSG_MORE: the head waits for the body's first bytes, and they leave in one segment.
        let headSent = Glibc.send(socket, head.baseAddress, head.count, CInt(MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE))
        guard headSent == head.count else { return max(headSent, 0) }
        guard let base = body.baseAddress else { return head.count }
        var sent = 0
        while sent < body.count {
            let lent = clinux_vmsplice(writeEnd, base + sent, body.count - sent)
            guard lent > 0 else { break }
            let moved = max(clinux_splice(readEnd, socket, lent, sent + lent < body.count ? 1 : 0), 0)
            sent += moved
            if moved < lent {
                drain()
                break
            }
        }
        return head.count + sent
    }

    /// Empties the pipe of what the socket did not take.
    private func drain() {
        while true {
            let left = clinux_pipe_bytes(readEnd)
            if left == 0 { return }
            guard left > 0, clinux_splice(readEnd, sink, Int(left), 0) > 0 else {
                spoiled = true
                return
            }
        }
    }
}
