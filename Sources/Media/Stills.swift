import CFFmpeg
import Foundation
import Store

/// Still pictures of a video, made from the frames the transcode decodes anyway (no second
/// decode): a poster (`poster.jpg`), and a storyboard — thumbnails every ``interval`` seconds
/// tiled 10 by 10 into JPEG sprite sheets (`storyboard/NNN.jpg`), indexed by `storyboard.vtt`
/// whose cues name a sheet and a `#xywh=` fragment, the form video.js, Plyr, JW Player and Mux
/// read for seek-bar previews.
final class StillsWriter {
    static let posterName = "poster.jpg"
    static let columns = 10
    static let rows = 10

    private let staging: StagingArea
    /// The poster is the first frame at or after this instant (seconds).
    private let posterAt: Double
    /// Seconds between thumbnails.
    let interval: Double
    private let poster: PictureConverter
    private let thumbnail: PictureConverter
    private let tileWidth: Int
    private let tileHeight: Int
    private var posterWritten = false
    /// The latest frame, kept (a reference) until the poster is written: a video shorter than
    /// the poster's instant gets its last frame.
    private let latest: Frame
    private var hasLatest = false
    private var nextThumbnail = 0.0
    /// Thumbnails so far: their start times; tile `i` is in sheet `i / 100`.
    private var starts: [Double] = []
    private let sheet: Frame
    private var sheetsWritten = 0
    private var lastSeconds = 0.0
    /// A part's start: its sheets are named after it.
    private let partStart: Double?
    private let makesPoster: Bool

    /// - Parameters:
    ///   - duration: the source's, when the container says: it sets the poster's instant (a
    ///     tenth in, at most 10 s) unless `posterTime` chooses one, and the thumbnails' interval
    ///     (about 100 of them, at least a second apart).
    ///   - part: a part of a split transcode from `start` seconds, which makes the poster only when
    ///     `poster` says so, and its own sheets (named after its start); its cues are the caller's
    ///     to index with the other parts'.
    init(staging: StagingArea, geometry: SourceGeometry, duration: Double?, posterTime: Double?, part: (start: Double, poster: Bool)? = nil) throws(MediaError) {
        self.staging = staging
        posterAt = max(0, posterTime ?? min((duration ?? 0) * 0.1, 10))
        interval = max(1, ((duration ?? 100) / 100).rounded(.up))
        partStart = part?.start
        // Not this part's poster: as if it were written.
        makesPoster = part?.poster ?? true
        posterWritten = !makesPoster
        // The first thumbnail the whole would take in this stretch: at or after a multiple of the interval.
        if let start = part?.start { nextThumbnail = ((start - 0.001) / interval).rounded(.up) * interval }
        let aspect = geometry.displayWidth / max(geometry.displayHeight, 1)
        (tileWidth, tileHeight) = Self.fit(aspect: aspect, box: 160, limit: (geometry.displayWidth, geometry.displayHeight))
        let posterSize = Self.fit(aspect: aspect, box: 1280, limit: (geometry.displayWidth, geometry.displayHeight))
        func converter(_ size: (Int, Int)) throws(MediaError) -> PictureConverter {
            try PictureConverter(
                width: size.0, height: size.1, scaledWidth: geometry.transposes ? size.1 : size.0,
                scaledHeight: geometry.transposes ? size.0 : size.1, rotation: geometry.rotation, fullRange: true
            )
        }
        poster = try converter(posterSize)
        thumbnail = try converter((tileWidth, tileHeight))
        latest = try Frame()
        sheet = try Frame()
        try Self.allocateBlack(sheet, width: tileWidth * Self.columns, height: tileHeight * Self.rows)
    }

    /// Even width and height within a `box`-pixel square (the long side `box`), never larger than
    /// the picture itself.
    static func fit(aspect: Double, box: Int, limit: (Double, Double)) -> (Int, Int) {
        let long = Double(min(box, Int(max(limit.0, limit.1))))
        let (width, height) = aspect >= 1 ? (long, long / aspect) : (long * aspect, long)
        return (max(2, Int(width / 2) * 2), max(2, Int(height / 2) * 2))
    }

    /// Offers a decoded frame at `seconds` (from the source's start).
    func offer(_ frame: UnsafeMutablePointer<AVFrame>, seconds: Double) throws {
        lastSeconds = max(lastSeconds, seconds)
        if !posterWritten {
            if seconds + 0.001 >= posterAt {
                try writePoster(frame)
            } else {
                av_frame_unref(latest.pointer)
                hasLatest = av_frame_ref(latest.pointer, frame) >= 0
            }
        }
        if seconds + 0.001 >= nextThumbnail {
            try addThumbnail(frame, at: seconds)
            nextThumbnail = (((seconds + 0.001) / interval).rounded(.down) + 1) * interval
        }
    }

    /// What was made: the poster's name, the index's (written only for a whole transcode), and
    /// the cues.
    struct Made {
        var poster: String?
        var storyboard: String?
        var cues: [StoryboardIndex.Cue]
    }

    /// Writes what is left: the poster if no frame reached its instant, the last sheet, and (for
    /// the whole source) the index.
    func finish() throws -> Made {
        if !posterWritten, hasLatest { try writePoster(latest.pointer) }
        av_frame_unref(latest.pointer)
        let poster = posterWritten && makesPoster ? Self.posterName : nil
        guard !starts.isEmpty else { return Made(poster: poster, storyboard: nil, cues: []) }
        if starts.count > sheetsWritten * Self.columns * Self.rows { try writeSheet() }
        let cues = starts.enumerated().map { index, start in
            let end = index + 1 < starts.count ? starts[index + 1] : max(lastSeconds, start + 0.001)
            let place = index % (Self.columns * Self.rows)
            return StoryboardIndex.Cue(
                start: start, end: end, sheet: sheetName(index / (Self.columns * Self.rows)),
                x: place % Self.columns * tileWidth, y: place / Self.columns * tileHeight, width: tileWidth, height: tileHeight
            )
        }
        guard partStart == nil else { return Made(poster: poster, storyboard: nil, cues: cues) }
        try staging.write(StoryboardIndex.render(cues), to: StoryboardIndex.fileName)
        return Made(poster: poster, storyboard: StoryboardIndex.fileName, cues: cues)
    }

    /// `storyboard/000.jpg` …; a part's `storyboard/p<start in ms>-000.jpg` ….
    func sheetName(_ index: Int) -> String {
        guard let partStart else { return String(format: "storyboard/%03d.jpg", index) }
        return String(format: "storyboard/p%.0f-%03d.jpg", partStart * 1000, index)
    }

    private func writePoster(_ frame: UnsafeMutablePointer<AVFrame>) throws {
        let picture = try poster.convert(frame)
        try staging.write(try JPEGEncoder.encode(picture), to: Self.posterName)
        posterWritten = true
        av_frame_unref(latest.pointer)
        hasLatest = false
    }

    private func addThumbnail(_ frame: UnsafeMutablePointer<AVFrame>, at seconds: Double) throws {
        let perSheet = Self.columns * Self.rows
        if starts.count > 0, starts.count % perSheet == 0 { try writeSheet() }
        let place = starts.count % perSheet
        let tile = try thumbnail.convert(frame)
        try av_frame_make_writable(sheet.pointer).check("reuse the storyboard sheet")
        let x = place % Self.columns * tileWidth, y = place / Self.columns * tileHeight
        for plane in 0..<3 {
            let shift = plane == 0 ? 0 : 1
            let (width, height) = (tileWidth >> shift, tileHeight >> shift)
            let (sourceLine, targetLine) = (Int(Self.linesize(tile, plane)), Int(Self.linesize(sheet.pointer, plane)))
            guard let source = Self.data(tile, plane), let target = Self.data(sheet.pointer, plane) else { continue }
            for row in 0..<height {
                (target + ((y >> shift) + row) * targetLine + (x >> shift)).update(from: source + row * sourceLine, count: width)
            }
        }
        starts.append(seconds)
    }

    /// Encodes the current sheet (only its rows in use) and blanks it for the next.
    private func writeSheet() throws {
        let perSheet = Self.columns * Self.rows
        let used = starts.count - sheetsWritten * perSheet
        let rows = (min(used, perSheet) + Self.columns - 1) / Self.columns
        let fullHeight = sheet.pointer.pointee.height
        sheet.pointer.pointee.height = Int32(rows * tileHeight)
        defer { sheet.pointer.pointee.height = fullHeight }
        try staging.write(try JPEGEncoder.encode(sheet.pointer), to: sheetName(sheetsWritten))
        sheetsWritten += 1
        try Self.paintBlack(sheet.pointer)
    }

    private static func allocateBlack(_ frame: Frame, width: Int, height: Int) throws(MediaError) {
        frame.pointer.pointee.format = AV_PIX_FMT_YUVJ420P.rawValue
        frame.pointer.pointee.width = Int32(width)
        frame.pointer.pointee.height = Int32(height)
        frame.pointer.pointee.color_range = AVCOL_RANGE_JPEG
        try av_frame_get_buffer(frame.pointer, 0).check("allocate a \(width)x\(height) storyboard sheet")
        try paintBlack(frame.pointer)
    }

    private static func paintBlack(_ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        try av_frame_make_writable(frame).check("reuse the storyboard sheet")
        for plane in 0..<3 {
            guard let data = data(frame, plane) else { continue }
            let lines = Int(frame.pointee.height) >> (plane == 0 ? 0 : 1)
            data.update(repeating: plane == 0 ? 0 : 128, count: Int(linesize(frame, plane)) * lines)
        }
    }

    private static func data(_ frame: UnsafeMutablePointer<AVFrame>, _ plane: Int) -> UnsafeMutablePointer<UInt8>? {
        switch plane {
        case 0: frame.pointee.data.0
        case 1: frame.pointee.data.1
        default: frame.pointee.data.2
        }
    }

    private static func linesize(_ frame: UnsafeMutablePointer<AVFrame>, _ plane: Int) -> Int32 {
        switch plane {
        case 0: frame.pointee.linesize.0
        case 1: frame.pointee.linesize.1
        default: frame.pointee.linesize.2
        }
    }
}

/// One full-range `yuvj420p` picture as a baseline JPEG (FFmpeg's mjpeg encoder, fixed quality).
enum JPEGEncoder {
    static func encode(_ picture: UnsafeMutablePointer<AVFrame>) throws -> [UInt8] {
        let encoder = try Encoder(name: "mjpeg", role: "encode a JPEG still")
        let context = encoder.pointer
        context.pointee.width = picture.pointee.width
        context.pointee.height = picture.pointee.height
        context.pointee.pix_fmt = AV_PIX_FMT_YUVJ420P
        context.pointee.color_range = AVCOL_RANGE_JPEG
        context.pointee.time_base = AVRational(num: 1, den: 1)
        context.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
        // qscale 3 of mjpeg's 2 (best) to 31: sharp previews at a few tens of kilobytes.
        context.pointee.global_quality = Int32(FF_QP2LAMBDA) * 3
        try encoder.open(options: [])
        picture.pointee.quality = context.pointee.global_quality
        picture.pointee.pts = 0
        try encoder.send(picture)
        try encoder.send(nil as UnsafeMutablePointer<AVFrame>?)
        let packet = try Packet()
        guard try encoder.receive(into: packet) == .produced else {
            throw MediaError(operation: "encode a JPEG still", reason: "the encoder produced no picture")
        }
        return packet.withBytes { Array($0) }
    }
}
