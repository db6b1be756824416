import CFFmpeg
import Profiles
import Store

/// One rung's share of the pipeline: conversion, encoder and output.
final class VideoRendition {
    let plan: PlannedRung
    let converter: PictureConverter
    let encoder: Encoder
    let writer: RenditionWriter
    let packet: Packet
    var level: H264Level
    /// The rung's own work (conversion, encoding, muxing, sealing), for its stage.
    var clock = StageClock()
    var framesEncoded = 0

    init(plan: PlannedRung, converter: PictureConverter, encoder: Encoder, writer: RenditionWriter, level: H264Level) throws(MediaError) {
        self.plan = plan
        self.converter = converter
        self.encoder = encoder
        self.writer = writer
        self.level = level
        packet = try Packet()
    }

    func encode(_ frame: UnsafeMutablePointer<AVFrame>?) throws {
        try clock.measure { try encodeNow(frame) }
    }

    private func encodeNow(_ frame: UnsafeMutablePointer<AVFrame>?) throws {
        if let frame {
            framesEncoded += 1
            let picture = converter.isPassthrough(frame) ? frame : try converter.convert(frame)
            picture.pointee.pict_type = frame.pointee.pict_type
            picture.pointee.pts = frame.pointee.pts
            picture.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
            try encoder.send(picture)
        } else {
            try encoder.send(nil as UnsafeMutablePointer<AVFrame>?)
        }
        while try encoder.receive(into: packet) == .produced {
            try writer.addVideo(packet)
            packet.unref()
        }
    }
}
