import CFFmpeg

/// Converts decoded pictures to one rung's 8-bit 4:2:0 size with swscale, and applies the source's
/// rotation.
///
/// Any pixel format the decoder produces (10-bit, 4:2:2, 4:4:4, RGB, full-range JPEG YUV) goes in;
/// `yuv420p` limited range comes out (for an encoder), or full-range `yuvj420p` (for a JPEG still,
/// which decoders read as full range). The scaler is rebuilt only if the input changes size or
/// format mid-stream (`sws_getCachedContext`).
final class PictureConverter {
    let outputWidth: Int32
    let outputHeight: Int32
    /// The scaler's output size (before rotation).
    private let scaledWidth: Int32
    private let scaledHeight: Int32
    private let rotation: Int
    private var scaler: OpaquePointer?
    private let scaled: Frame
    private let rotated: Frame
    private var configuredFor: (Int32, Int32, Int32, UInt32)?
    /// Full-range `yuvj420p` out, for JPEG stills.
    private let fullRange: Bool
    private var outputFormat: AVPixelFormat { fullRange ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P }

    init(width: Int, height: Int, scaledWidth: Int, scaledHeight: Int, rotation: Int, fullRange: Bool = false) throws(MediaError) {
        self.fullRange = fullRange
        outputWidth = Int32(width)
        outputHeight = Int32(height)
        self.scaledWidth = Int32(scaledWidth)
        self.scaledHeight = Int32(scaledHeight)
        self.rotation = rotation
        scaled = try Frame()
        rotated = try Frame()
    }

    deinit {
        sws_freeContext(scaler)
    }

    /// Whether `frame` can go to the encoder untouched: already the right size and format, no rotation.
    func isPassthrough(_ frame: UnsafeMutablePointer<AVFrame>) -> Bool {
        !fullRange && rotation == 0 && frame.pointee.width == outputWidth && frame.pointee.height == outputHeight
            && frame.pointee.format == AV_PIX_FMT_YUV420P.rawValue
            && frame.pointee.color_range != AVCOL_RANGE_JPEG
    }

    /// Converts `source` and returns the frame to encode. The returned frame is reused by the next
    /// call, so the encoder must have taken its own reference (avcodec_send_frame does).
    func convert(_ source: UnsafeMutablePointer<AVFrame>) throws(MediaError) -> UnsafeMutablePointer<AVFrame> {
        try prepare(scaled, width: scaledWidth, height: scaledHeight)
        try configure(for: source)
        let lines = withUnsafePointer(to: source.pointee.data) { sourceData in
            withUnsafePointer(to: source.pointee.linesize) { sourceLines in
                withUnsafeMutablePointer(to: &scaled.pointer.pointee.data) { targetData in
                    withUnsafeMutablePointer(to: &scaled.pointer.pointee.linesize) { targetLines in
                        sws_scale(
                            scaler,
                            UnsafeRawPointer(sourceData).assumingMemoryBound(to: UnsafePointer<UInt8>?.self),
                            UnsafeRawPointer(sourceLines).assumingMemoryBound(to: Int32.self),
                            0, source.pointee.height,
                            UnsafeMutableRawPointer(targetData).assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self),
                            UnsafeMutableRawPointer(targetLines).assumingMemoryBound(to: Int32.self)
                        )
                    }
                }
            }
        }
        try lines.check("scale to \(scaledWidth)x\(scaledHeight)")
        av_frame_copy_props(scaled.pointer, source)
        scaled.pointer.pointee.color_range = fullRange ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG
        guard rotation != 0 else { return scaled.pointer }

        try prepare(rotated, width: outputWidth, height: outputHeight)
        av_frame_copy_props(rotated.pointer, scaled.pointer)
        Rotation.apply(rotation, from: scaled.pointer, to: rotated.pointer)
        return rotated.pointer
    }

    /// Makes `frame` a writable yuv420p buffer of the given size, allocating only when the encoder
    /// still holds the previous buffer.
    private func prepare(_ frame: Frame, width: Int32, height: Int32) throws(MediaError) {
        let picture = frame.pointer
        if picture.pointee.data.0 == nil {
            picture.pointee.format = outputFormat.rawValue
            picture.pointee.width = width
            picture.pointee.height = height
            try av_frame_get_buffer(picture, 0).check("allocate a \(width)x\(height) picture")
        } else {
            try av_frame_make_writable(picture).check("allocate a \(width)x\(height) picture")
        }
    }

    private func configure(for source: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        let key = (source.pointee.width, source.pointee.height, source.pointee.format, source.pointee.color_range.rawValue)
        if let configuredFor, configuredFor == key { return }
        let format = AVPixelFormat(rawValue: source.pointee.format)
        scaler = sws_getCachedContext(
            scaler, source.pointee.width, source.pointee.height, format,
            scaledWidth, scaledHeight, outputFormat,
            SWS_BICUBIC, nil, nil, nil
        )
        guard let scaler else {
            let name = av_get_pix_fmt_name(format).map { String(cString: $0) } ?? "format \(source.pointee.format)"
            throw MediaError(operation: "scale", reason: "swscale cannot convert \(name) \(source.pointee.width)x\(source.pointee.height) to yuv420p \(scaledWidth)x\(scaledHeight)")
        }
        // Full-range input (JPEG YUV, some phones) is mapped to the limited range players expect.
        let sourceFullRange: Int32 = source.pointee.color_range == AVCOL_RANGE_JPEG ? 1 : 0
        let coefficients = sws_getCoefficients(SWS_CS_DEFAULT)
        sws_setColorspaceDetails(scaler, coefficients, sourceFullRange, coefficients, fullRange ? 1 : 0, 0, 1 << 16, 1 << 16)
        configuredFor = key
    }
}

/// Quarter-turn rotations of yuv420p pictures, for sources whose display matrix says rotate.
enum Rotation {
    /// Rotates `source` clockwise by `degrees` (90, 180 or 270) into `target`, whose size is
    /// already the rotated size.
    static func apply(_ degrees: Int, from source: UnsafeMutablePointer<AVFrame>, to target: UnsafeMutablePointer<AVFrame>) {
        let width = Int(source.pointee.width)
        let height = Int(source.pointee.height)
        withUnsafePointer(to: source.pointee.data) { sourcePlanes in
            withUnsafePointer(to: source.pointee.linesize) { sourceStrides in
                withUnsafePointer(to: target.pointee.data) { targetPlanes in
                    withUnsafePointer(to: target.pointee.linesize) { targetStrides in
                        let sp = UnsafeRawPointer(sourcePlanes).assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self)
                        let ss = UnsafeRawPointer(sourceStrides).assumingMemoryBound(to: Int32.self)
                        let tp = UnsafeRawPointer(targetPlanes).assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self)
                        let ts = UnsafeRawPointer(targetStrides).assumingMemoryBound(to: Int32.self)
                        for plane in 0..<3 {
                            let shift = plane == 0 ? 0 : 1
                            rotatePlane(
                                degrees,
                                source: sp[plane]!, sourceStride: Int(ss[plane]),
                                target: tp[plane]!, targetStride: Int(ts[plane]),
                                width: (width + shift) >> shift, height: (height + shift) >> shift
                            )
                        }
                    }
                }
            }
        }
    }

    /// `width`×`height` is the source plane's size; the target is written row by row.
    static func rotatePlane(
        _ degrees: Int,
        source: UnsafeMutablePointer<UInt8>, sourceStride: Int,
        target: UnsafeMutablePointer<UInt8>, targetStride: Int,
        width: Int, height: Int
    ) {
        switch degrees {
        case 90:
            // target(x', y') = source(x: y', y: height-1-x'); target is height×width.
            for ty in 0..<width {
                let row = target + ty * targetStride
                for tx in 0..<height {
                    row[tx] = source[(height - 1 - tx) * sourceStride + ty]
                }
            }
        case 270:
            // target(x', y') = source(x: width-1-y', y: x').
            for ty in 0..<width {
                let row = target + ty * targetStride
                let sx = width - 1 - ty
                for tx in 0..<height {
                    row[tx] = source[tx * sourceStride + sx]
                }
            }
        default:
            // 180: target(x, y) = source(width-1-x, height-1-y).
            for ty in 0..<height {
                let row = target + ty * targetStride
                let sourceRow = source + (height - 1 - ty) * sourceStride
                for tx in 0..<width {
                    row[tx] = sourceRow[width - 1 - tx]
                }
            }
        }
    }
}
