import Jobs

/// What a transcode child, which parses hostile media and may be compromised, sends its worker on
/// the source channel: request frames. The input's first byte picks the source's size (`byte % 4`:
/// 0 → 0, 1 → 1000, 2 → 5 GiB, 3 → `Int.max`); the rest is read as 16-byte frames, as the server
/// reads them, until the first it refuses (where the server ends the channel). An accepted
/// request must keep to the limits the server's allocation relies on, and be exactly the frame it
/// came from; every refusal names what is wrong. Each frame is also decoded as the answer to the
/// request before it, as the child decodes answers.
enum SourceChannelHarness {
    static let harness = Harness("source-channel", maxLength: 1 + 16 * 8, "SourceChannelRequest.decode, SourceChannelAnswer.decode") { bytes in
        guard let first = bytes.first else { return }
        let size = [0, 1000, 5 << 30, Int.max][Int(first % 4)]
        var rest = bytes.dropFirst()
        var previous = SourceChannelRequest.size
        while !rest.isEmpty {
            let frame = Array(rest.prefix(16))
            rest = rest.dropFirst(16)
            _ = try? SourceChannelAnswer.decode(frame, answering: previous, size: size)
            let request: SourceChannelRequest
            do throws(SourceChannelError) {
                request = try SourceChannelRequest.decode(frame, size: size)
            } catch {
                require(!error.reason.isEmpty, "a refusal without a reason")
                return
            }
            if case .read(let offset, let length) = request {
                require((1...SourceChannel.maxRead).contains(length), "a read of \(length) bytes accepted")
                require(offset >= 0 && offset <= size, "a read at \(offset) accepted for a source of \(size) bytes")
            }
            require(request.frame == frame, "\(frame) decodes to \(request), which encodes to \(request.frame)")
            previous = request
        }
    }
}
