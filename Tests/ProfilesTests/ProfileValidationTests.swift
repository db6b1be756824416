import Testing
@testable import Profiles

/// A valid profile; each bad case below edits one line of it, so line numbers are easy to see.
private let baseLines = [
    "name: test",            // 1
    "segment_duration: 6",   // 2
    "keyframe_interval: 2",  // 3
    "rungs:",                // 4
    "  - name: 720p",        // 5
    "    width: 1280",       // 6
    "    height: 720",       // 7
    "    bitrate: 3000k",    // 8
    "audio:",                // 9
    "  bitrate: 128k",       // 10
]

private enum Edit {
    case replace(Int, String)
    case insert(after: Int, String)
    case truncate(after: Int)
}

private func yaml(_ edits: Edit...) -> String {
    var lines = baseLines
    for edit in edits {
        switch edit {
        case .replace(let line, let text): lines[line - 1] = text
        case .insert(let line, let text): lines.insert(text, at: line)
        case .truncate(let line): lines = Array(lines.prefix(line))
        }
    }
    return lines.joined(separator: "\n") + "\n"
}

private func failure(_ text: String) -> ProfileError? {
    do {
        _ = try Profile.parse(yaml: text, file: "profiles/x.yaml")
        return nil
    } catch {
        return error as? ProfileError
    }
}

@Test func baseProfileIsValidAndFillsDefaults() throws {
    let profile = try Profile.parse(yaml: yaml(), file: "profiles/x.yaml")
    let rung = try #require(profile.rungs.first)
    #expect(rung.codec == .h264)
    #expect(rung.maxrate == 3_300_000)
    #expect(rung.bufsize == 6_000_000)
    #expect(rung.profile == .high)
    #expect(rung.level == H264Level.named("4.2"))
    #expect(rung.preset == "veryfast")
    #expect(profile.keyRotationSegments == 0)
    #expect(profile.audio == AudioSettings(codec: .aac, bitrate: 128_000, channels: 2, sampleRate: nil))
}

struct BadProfile: Sendable, CustomTestStringConvertible {
    let yaml: String
    let line: Int
    let fragment: String
    var testDescription: String { "line \(line): \(fragment)" }
}

private let badProfiles: [BadProfile] = [
    BadProfile(yaml: yaml(.replace(3, "keyframe_intervall: 2")), line: 3,
               fragment: "unknown key 'keyframe_intervall' at the top level (expected one of: name, segment_duration, keyframe_interval, startup_segments, key_rotation_segments, chunk_duration, rungs, audio)"),
    BadProfile(yaml: yaml(.replace(8, "    bitrat: 3000k")), line: 8,
               fragment: "unknown key 'bitrat' in rung '720p' (expected one of: name, width, height, codec, bitrate, maxrate, bufsize, profile, level, preset)"),
    BadProfile(yaml: yaml(.replace(10, "  bitrat: 128k")), line: 10, fragment: "unknown key 'bitrat' in audio"),
    BadProfile(yaml: yaml(.replace(1, "# unnamed")), line: 2, fragment: "missing required key 'name' at the top level"),
    BadProfile(yaml: yaml(.replace(2, "# no duration")), line: 1, fragment: "missing required key 'segment_duration' at the top level"),
    BadProfile(yaml: yaml(.replace(6, "    # no width")), line: 5, fragment: "missing required key 'width' in rung '720p'"),
    BadProfile(yaml: yaml(.replace(5, "  - codec: h264")), line: 5, fragment: "missing required key 'name' in rung 1"),
    BadProfile(yaml: yaml(.replace(10, "  channels: 2")), line: 10, fragment: "missing required key 'bitrate' in audio"),
    BadProfile(yaml: yaml(.truncate(after: 3)), line: 1, fragment: "a profile needs at least one rung or an audio section"),
    BadProfile(yaml: yaml(.replace(6, "    width: wide")), line: 6, fragment: "'width' in rung '720p' must be an integer, got wide"),
    BadProfile(yaml: yaml(.replace(6, "    width: 8")), line: 6, fragment: "'width' in rung '720p' must be between 16 and 8192, got 8"),
    BadProfile(yaml: yaml(.replace(1, "name: [a, b]")), line: 1, fragment: "'name' at the top level must be a string, got a list"),
    BadProfile(yaml: yaml(.replace(1, "name: Test Profile")), line: 1, fragment: "'name' must be 1 to 32 characters of a-z"),
    BadProfile(yaml: yaml(.truncate(after: 3), .insert(after: 3, "rungs: 3")), line: 4, fragment: "'rungs' must be a list of rungs"),
    BadProfile(yaml: yaml(.replace(8, "    bitrate: -3000k")), line: 8, fragment: "'bitrate' in rung '720p' must be positive, got -3000k"),
    BadProfile(yaml: yaml(.replace(8, "    bitrate: 0")), line: 8, fragment: "'bitrate' in rung '720p' must be positive, got 0"),
    BadProfile(yaml: yaml(.replace(8, "    bitrate: 6000kb")), line: 8, fragment: "'bitrate' in rung '720p' is not a bitrate: '6000kb'"),
    BadProfile(yaml: yaml(.replace(8, "    bitrate: 1.5")), line: 8, fragment: "'bitrate' in rung '720p' must be a bitrate"),
    BadProfile(yaml: yaml(.insert(after: 8, "    maxrate: 0")), line: 9, fragment: "'maxrate' in rung '720p' must be positive, got 0"),
    BadProfile(yaml: yaml(.insert(after: 8, "    bufsize: -1")), line: 9, fragment: "'bufsize' in rung '720p' must be positive, got -1"),
    BadProfile(yaml: yaml(.insert(after: 8, "    maxrate: 2000k")), line: 9, fragment: "'maxrate' in rung '720p' (2000k) is below its bitrate (3000k)"),
    BadProfile(yaml: yaml(.replace(2, "segment_duration: 0")), line: 2, fragment: "'segment_duration' must be more than 0 and at most 60 seconds, got 0"),
    BadProfile(yaml: yaml(.replace(2, "segment_duration: 61")), line: 2, fragment: "'segment_duration' must be more than 0 and at most 60 seconds, got 61"),
    BadProfile(yaml: yaml(.replace(2, "segment_duration: six")), line: 2, fragment: "'segment_duration' at the top level must be a number, got six"),
    BadProfile(yaml: yaml(.replace(3, "keyframe_interval: 0")), line: 3, fragment: "'keyframe_interval' must be more than 0, got 0"),
    BadProfile(yaml: yaml(.replace(3, "keyframe_interval: 4")), line: 3, fragment: "segment_duration 6 is not a whole multiple of keyframe_interval 4"),
    BadProfile(yaml: yaml(.replace(3, "keyframe_interval: 2.5")), line: 3, fragment: "segment_duration 6 is not a whole multiple of keyframe_interval 2.5"),
    BadProfile(yaml: yaml(.insert(after: 3, "key_rotation_segments: -1")), line: 4, fragment: "'key_rotation_segments' must not be negative, got -1"),
    BadProfile(yaml: yaml(.insert(after: 8, "    codec: h265")), line: 9, fragment: "unknown codec 'h265' in rung '720p' (expected one of: h264)"),
    BadProfile(yaml: yaml(.insert(after: 8, "    profile: ultra")), line: 9, fragment: "unknown profile 'ultra' in rung '720p' (expected one of: baseline, main, high)"),
    BadProfile(yaml: yaml(.insert(after: 8, "    preset: turbo")), line: 9, fragment: "unknown preset 'turbo' in rung '720p' (expected one of: ultrafast, superfast"),
    BadProfile(yaml: yaml(.insert(after: 8, "    level: \"42\"")), line: 9, fragment: "unknown level '42' in rung '720p' (expected one of: 1, 1b, 1.1,"),
    BadProfile(yaml: yaml(.insert(after: 8, "    level: 3.0")), line: 9, fragment: "level 3.0 allows at most 1620 macroblocks per frame; 1280x720 needs 3600"),
    BadProfile(yaml: yaml(.replace(6, "    width: 4096"), .replace(7, "    height: 16"), .insert(after: 8, "    level: \"3.1\"")), line: 9,
               fragment: "level 3.1 allows at most 169 macroblocks on a side; 4096x16 is 256x1 macroblocks"),
    BadProfile(yaml: yaml(.replace(6, "    width: 640"), .replace(7, "    height: 360"), .replace(8, "    bitrate: 12M"), .insert(after: 8, "    profile: main\n    level: 3")),
               line: 10, fragment: "level 3 allows a maxrate of at most 10000k with profile main; rung '720p' has 13200k"),
    BadProfile(yaml: yaml(.replace(6, "    width: 640"), .replace(7, "    height: 360"), .insert(after: 8, "    maxrate: 13M\n    level: 3")),
               line: 9, fragment: "level 3 allows a maxrate of at most 12500k with profile high; rung '720p' has 13000k"),
    BadProfile(yaml: yaml(.insert(after: 8, "  - name: 720p\n    width: 1280\n    height: 720\n    bitrate: 2M")), line: 9,
               fragment: "duplicate rung name '720p' (first on line 5)"),
    BadProfile(yaml: yaml(.replace(5, "  - name: keys")), line: 5, fragment: "rung name 'keys' is reserved"),
    BadProfile(yaml: yaml(.replace(5, "  - name: 720P")), line: 5, fragment: "rung name must be 1 to 32 characters"),
    BadProfile(yaml: yaml(.insert(after: 6, "    width: 1920")), line: 6, fragment: "duplicate key 'width' in the same mapping"),
    BadProfile(yaml: yaml(.insert(after: 10, "  channels: 6")), line: 11, fragment: "'channels' in audio must be 1 or 2, got 6"),
    BadProfile(yaml: yaml(.insert(after: 10, "  sample_rate: 44000")), line: 11, fragment: "'sample_rate' in audio must be an AAC rate"),
    BadProfile(yaml: yaml(.insert(after: 10, "  codec: mp3")), line: 11, fragment: "unknown codec 'mp3' in audio (expected one of: aac)"),
    BadProfile(yaml: yaml(.replace(9, "audio: [1")), line: 10, fragment: "invalid YAML"),
    BadProfile(yaml: yaml(.insert(after: 3, "startup_segments: [1, 2]")), line: 4,
               fragment: "'startup_segments' add up to 3.0 s, which is not a whole multiple of keyframe_interval (2.0 s)"),
    BadProfile(yaml: yaml(.insert(after: 3, "startup_segments: [1, 7]")), line: 4, fragment: "at most segment_duration (6.0 s), got 7"),
    BadProfile(yaml: yaml(.insert(after: 3, "startup_segments: [0, 2]")), line: 4, fragment: "must be at least 0.1"),
    BadProfile(yaml: yaml(.insert(after: 3, "startup_segments: 2")), line: 4, fragment: "'startup_segments' must be a list"),
    BadProfile(yaml: yaml(.insert(after: 3, "startup_segments: [a, 2]")), line: 4, fragment: "holds durations in seconds, got 'a'"),
    BadProfile(yaml: yaml(.insert(after: 3, "chunk_duration: 61")), line: 4, fragment: "a whole multiple of segment_duration (6 s), got 61"),
    BadProfile(yaml: yaml(.insert(after: 3, "chunk_duration: 6")), line: 4, fragment: "'chunk_duration' must be at least 10 s"),
]

@Test func chunkDurationIsRead() throws {
    #expect(try Profile.parse(yaml: yaml(.insert(after: 3, "chunk_duration: 60")), file: "s.yaml").chunkDuration == 60)
    #expect(try Profile.parse(yaml: yaml(), file: "s.yaml").chunkDuration == nil)
}

@Test func startupSegmentsAreRead() throws {
    let profile = try Profile.parse(yaml: yaml(.insert(after: 3, "startup_segments: [1, 1, 2, 2]")), file: "s.yaml")
    #expect(profile.startupSegments == [1, 1, 2, 2])
    #expect(try Profile.parse(yaml: yaml(), file: "s.yaml").startupSegments.isEmpty)
}

@Test(arguments: badProfiles)
func badProfileIsRejectedAtItsLine(_ bad: BadProfile) throws {
    let error = try #require(failure(bad.yaml))
    #expect(error.file == "profiles/x.yaml")
    #expect(error.line == bad.line)
    #expect(error.message.contains(bad.fragment), "\(error.message)")
    #expect(error.description.hasPrefix("profiles/x.yaml:\(bad.line):"))
}

@Test func errorDescriptionNamesFileLineAndColumn() throws {
    let error = try #require(failure(yaml(.replace(8, "    bitrat: 3000k"))))
    #expect(error.column == 5)
    #expect(error.description.hasPrefix("profiles/x.yaml:8:5: unknown key 'bitrat' in rung '720p' (expected one of: name, width, "))
    #expect(ProfileError(file: "p.yaml", line: nil, column: nil, message: "empty").description == "p.yaml: empty")
    #expect(failure("")?.message == "the profile is empty")
}

@Test func rungsAreSortedLargestFirst() throws {
    let text = """
        name: ladder
        segment_duration: 4
        rungs:
          - {name: small, width: 640, height: 360, bitrate: 800k}
          - {name: big, width: 1920, height: 1080, bitrate: 6M}
          - {name: mid, width: 1280, height: 720, bitrate: 3M}
        """
    let profile = try Profile.parse(yaml: text, file: "ladder.yaml")
    #expect(profile.rungs.map(\.name) == ["big", "mid", "small"])
    // Without keyframe_interval every segment is one GOP.
    #expect(profile.keyframeInterval == 4)
    #expect(profile.audio == nil)
}

@Test func levelsAndBitratesInEveryAcceptedSpelling() throws {
    let text = """
        name: spellings
        segment_duration: 4
        keyframe_interval: 2
        rungs:
          - {name: a, width: 1280, height: 720, bitrate: 3000000, level: 4.2}
          - {name: b, width: 1280, height: 720, bitrate: "3M", level: 4}
          - {name: c, width: 1280, height: 720, bitrate: 2.5M, level: "4"}
          - {name: d, width: 176, height: 144, bitrate: 64k, profile: baseline, level: 1b}
        audio:
          bitrate: 64000
          channels: 1
          sample_rate: 44100
        """
    let profile = try Profile.parse(yaml: text, file: "s.yaml")
    #expect(profile.rungs.map(\.level.name) == ["4.2", "4", "4", "1b"])
    #expect(profile.rungs.map(\.level.idc) == [42, 40, 40, 9])
    #expect(profile.rungs.map(\.bitrate) == [3_000_000, 3_000_000, 2_500_000, 64_000])
    #expect(profile.audio == AudioSettings(bitrate: 64_000, channels: 1, sampleRate: 44_100))
}

@Test func audioOnlyProfile() throws {
    let profile = try Profile.parse(yaml: "name: radio\nsegment_duration: 10\naudio:\n  bitrate: 96k\n", file: "r.yaml")
    #expect(profile.rungs.isEmpty)
    #expect(profile.audio?.bitrate == 96_000)
}

@Test(arguments: [
    ("6000k", 6_000_000), ("6M", 6_000_000), ("6.5M", 6_500_000), ("128K", 128_000), ("800000", 800_000),
    ("1.5k", 1_500), ("0.1M", 100_000), ("2.345678M", 2_345_678),
])
func bitrateSuffixes(text: String, bits: Int) {
    #expect(Bitrate.parse(text) == bits)
}

@Test(arguments: ["", "k", "M", "-5k", "0", "0k", "1.0005k", "6.5e6", "abc", "6 M", "+5", "6m", "1.2.3k", "inf", ".5M", "5.M"])
func invalidBitrates(text: String) {
    #expect(Bitrate.parse(text) == nil)
}

/// Found while writing the fuzz harness's dictionary, confirmed by the harness
/// (fuzz/crashes/profile): Yams reads YAML 1.1 base-60 integers with unchecked multiplication, so a
/// long one trapped the process reading the profile. Numbers are never written that way in a
/// profile; they are refused as the wrong type.
@Test func base60NumbersAreRefusedNotTrapped() throws {
    let long = "1:0:0:0:0:0:0:0:0:0:0:0"
    for (line, text) in [(6, "    width: \(long)"), (8, "    bitrate: \(long)"), (2, "segment_duration: 1:0")] {
        let error = failure(yaml(.replace(line, text)))
        #expect(error?.line == line, "\(text)")
        #expect(error?.message.contains("must be") == true, "\(String(describing: error))")
    }
    let rotation = failure(yaml(.insert(after: 3, "key_rotation_segments: \(long)")))
    #expect(rotation?.message == "'key_rotation_segments' at the top level must be an integer, got \(long)")
}

@Test func levelTable() throws {
    #expect(H264Level.all.count == 20)
    let level42 = try #require(H264Level.named("4.2"))
    #expect(level42.idc == 42 && level42.maxFrameSizeMBs == 8704 && level42.maxMacroblocksPerSecond == 522_240 && level42.maxBitrateKbps == 50_000)
    #expect(level42.maxSideMBs == 263)
    #expect(level42.maxBitrate(for: .main) == 50_000_000)
    #expect(level42.maxBitrate(for: .high) == 62_500_000)
    #expect(H264Level.named("3.0") == H264Level.named("3"))
    #expect(H264Level.named("1B")?.idc == 9)
    #expect(H264Level.named("42") == nil)
    #expect(H264Level.named("4.25") == nil)
    #expect(H264Level.named("7") == nil)
    #expect(H264Level.named("+4") == nil)
    #expect(H264Profile.high.avcProfileIDC == 100 && H264Profile.main.avcProfileIDC == 77 && H264Profile.baseline.avcProfileIDC == 66)
    // 1080p is 120 x 68 macroblocks (1080 / 16 rounds up to 68).
    let rung = VideoRung(name: "x", width: 1920, height: 1080, bitrate: 1)
    #expect(rung.macroblocksPerFrame == 8160)
}
