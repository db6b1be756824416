import CFFmpeg

/// An owned `AVFrame`: allocated in `init`, freed in `deinit`.
final class Frame {
    let pointer: UnsafeMutablePointer<AVFrame>

    init() throws(MediaError) {
        guard let frame = av_frame_alloc() else {
            throw MediaError(operation: "allocate frame", reason: "out of memory", code: AVErr.noMemory)
        }
        pointer = frame
    }

    deinit {
        var frame: UnsafeMutablePointer<AVFrame>? = pointer
        av_frame_free(&frame)
    }

    /// Drops the frame's buffers, keeping the struct for reuse.
    func unref() { av_frame_unref(pointer) }

    var pts: Int64 {
        get { pointer.pointee.pts }
        set { pointer.pointee.pts = newValue }
    }

    var width: Int32 { pointer.pointee.width }
    var height: Int32 { pointer.pointee.height }
    var format: Int32 { pointer.pointee.format }
    var sampleCount: Int32 { pointer.pointee.nb_samples }
}

/// An owned `AVPacket`.
final class Packet {
    let pointer: UnsafeMutablePointer<AVPacket>

    init() throws(MediaError) {
        guard let packet = av_packet_alloc() else {
            throw MediaError(operation: "allocate packet", reason: "out of memory", code: AVErr.noMemory)
        }
        pointer = packet
    }

    /// A new reference to `other`'s data (no copy of the payload).
    convenience init(referencing other: Packet) throws(MediaError) {
        try self.init()
        try av_packet_ref(pointer, other.pointer).check("reference packet")
    }

    deinit {
        var packet: UnsafeMutablePointer<AVPacket>? = pointer
        av_packet_free(&packet)
    }

    func unref() { av_packet_unref(pointer) }

    var streamIndex: Int32 { pointer.pointee.stream_index }
    var pts: Int64 { pointer.pointee.pts }
    var dts: Int64 { pointer.pointee.dts }
    var duration: Int64 { pointer.pointee.duration }
    var size: Int { Int(pointer.pointee.size) }
    var isKey: Bool { pointer.pointee.flags & AV_PKT_FLAG_KEY != 0 }

    /// The payload, lent for the duration of `body`.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        guard let data = pointer.pointee.data else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: data, count: Int(pointer.pointee.size)))
    }
}
