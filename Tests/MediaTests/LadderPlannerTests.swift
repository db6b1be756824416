import Profiles
import Testing
@testable import Media

@Suite("placing a ladder on a source")
struct LadderPlannerTests {
    static let profile: Profile = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try! Profile.load(path: root.appendingPathComponent("profiles/default.yaml").path)
    }()

    func sizes(_ geometry: SourceGeometry) -> [String] {
        LadderPlanner.plan(rungs: Self.profile.rungs, for: geometry).map { "\($0.rung.name) \($0.width)x\($0.height)" }
    }

    @Test("a 1080p source gets the whole ladder")
    func fullLadder() {
        #expect(sizes(SourceGeometry(codedWidth: 1920, codedHeight: 1080)) == [
            "1080p 1920x1080", "720p 1280x720", "540p 960x540", "432p 768x432", "360p 640x360",
        ])
    }

    @Test("never upscales: a 720p source stops at 720p")
    func noUpscale() {
        #expect(sizes(SourceGeometry(codedWidth: 1280, codedHeight: 720)) == [
            "720p 1280x720", "540p 960x540", "432p 768x432", "360p 640x360",
        ])
    }

    @Test("a source smaller than every box gets one rung at its own even size")
    func tinySource() {
        #expect(sizes(SourceGeometry(codedWidth: 333, codedHeight: 241)) == ["360p 332x240"])
    }

    @Test("portrait sources use the boxes transposed")
    func portrait() {
        #expect(sizes(SourceGeometry(codedWidth: 1080, codedHeight: 1920)).prefix(2) == ["1080p 1080x1920", "720p 720x1280"])
    }

    @Test("rotation metadata turns a landscape-coded phone clip upright")
    func rotated() {
        let geometry = SourceGeometry(codedWidth: 1920, codedHeight: 1080, rotation: 90)
        let plans = LadderPlanner.plan(rungs: Self.profile.rungs, for: geometry)
        #expect(plans.first.map { "\($0.width)x\($0.height)" } == "1080x1920")
        // The scaler works on the coded orientation, then the picture is turned.
        #expect(plans.first.map { "\($0.scaledSize(for: geometry))" } == "(width: 1920, height: 1080)")
    }

    @Test("wide sources keep their aspect ratio inside the boxes")
    func cinemaScope() {
        #expect(sizes(SourceGeometry(codedWidth: 1920, codedHeight: 800)).prefix(2) == ["1080p 1920x800", "720p 1280x534"])
    }

    @Test("anamorphic pixels are made square")
    func anamorphic() {
        // 720x576 with 16:11 pixels is a 1047x576 picture.
        let plans = LadderPlanner.plan(rungs: Self.profile.rungs, for: SourceGeometry(codedWidth: 720, codedHeight: 576, sampleAspectRatio: 16.0 / 11.0))
        #expect(plans.map { "\($0.width)x\($0.height)" } == ["1046x576", "960x528", "768x422", "640x352"])
    }
}

@Suite("RFC 6381 codec strings")
struct CodecStringTests {
    @Test("avc1 string from the SPS of an Annex B access unit")
    func fromSPS() {
        // AUD, then an SPS for High profile (100), constraint flags 0, level 4.2 (42).
        let bytes: [UInt8] = [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 0x64, 0x00, 0x2A, 0xAC]
        let string = bytes.withUnsafeBytes { AVCCodecString.fromAnnexB($0) }
        #expect(string == "avc1.64002a")
    }

    @Test("no SPS, no string")
    func withoutSPS() {
        let bytes: [UInt8] = [0, 0, 1, 0x65, 0x88, 0x84, 0x00]
        #expect(bytes.withUnsafeBytes { AVCCodecString.fromAnnexB($0) } == nil)
    }
}

import Foundation
