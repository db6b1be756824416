import Foundation
import Testing
@testable import Profiles

/// The package root: this file is Tests/ProfilesTests/<file>, so three levels up.
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private func shipped(_ name: String) throws -> Profile {
    try Profile.load(path: packageRoot.appendingPathComponent("profiles/\(name).yaml").path)
}

@Test func defaultProfileLoads() throws {
    let profile = try shipped("default")
    #expect(profile.name == "default")
    #expect(profile.segmentDuration == 6)
    #expect(profile.keyframeInterval == 2)
    #expect(profile.keyRotationSegments == 0)
    #expect(profile.rungs.map(\.name) == ["1080p", "720p", "540p", "432p", "360p"])
    #expect(profile.rungs.map(\.width) == [1920, 1280, 960, 768, 640])
    #expect(profile.rungs.map(\.height) == [1080, 720, 540, 432, 360])
    #expect(profile.rungs.map(\.bitrate) == [6_000_000, 3_000_000, 2_000_000, 1_100_000, 365_000])
    #expect(profile.rungs.map(\.maxrate) == [6_600_000, 3_300_000, 2_200_000, 1_210_000, 400_000])
    #expect(profile.rungs.map(\.bufsize) == [12_000_000, 6_000_000, 4_000_000, 2_200_000, 730_000])
    #expect(profile.rungs.allSatisfy { $0.codec == .h264 && $0.profile == .high && $0.level.idc == 42 && $0.preset == "veryfast" })
    #expect(profile.audio == AudioSettings(codec: .aac, bitrate: 128_000, channels: 2, sampleRate: 48_000))
}

@Test func fastProfileLoads() throws {
    let profile = try shipped("fast")
    #expect(profile.name == "fast")
    #expect(profile.segmentDuration == 2)
    #expect(profile.keyframeInterval == 1)
    #expect(profile.keyRotationSegments == 2)
    #expect(profile.rungs == [
        VideoRung(name: "360p", width: 640, height: 360, bitrate: 800_000, maxrate: 880_000, bufsize: 1_600_000,
                  profile: .main, level: H264Level.named("3.1")!, preset: "ultrafast"),
        VideoRung(name: "240p", width: 426, height: 240, bitrate: 400_000, maxrate: 440_000, bufsize: 800_000,
                  profile: .baseline, level: H264Level.named("3")!, preset: "ultrafast"),
    ])
    // "3.0" in the file is level 3.
    #expect(profile.rungs[1].level.name == "3")
    #expect(profile.rungs[1].level.idc == 30)
    #expect(profile.audio == AudioSettings(codec: .aac, bitrate: 96_000, channels: 2, sampleRate: 48_000))
}

@Test func unreadableFileNamesPathAndReason() {
    let path = packageRoot.appendingPathComponent("profiles/does-not-exist.yaml").path
    do {
        _ = try Profile.load(path: path)
        Issue.record("expected an error")
    } catch let error as ProfileError {
        #expect(error.line == nil)
        #expect(error.description == "\(path): cannot read profile: No such file or directory")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}
