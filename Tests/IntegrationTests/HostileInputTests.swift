import Foundation
import TestSupport
import Testing

/// Media input is data, never a program: files that name other files or URLs are refused before
/// anything they name is opened, and what a file declares is capped. Each test is named after what
/// it prevents.
@Suite("hostile input: refused by what it is, nothing opened, nothing published")
struct HostileInputTests {
    static func transcode(
        _ input: String, profile: String = "profiles/fast.yaml", extra: [String] = []
    ) async throws -> (output: ProcessOutput, store: String, folder: TemporaryFolder) {
        let folder = try TemporaryFolder()
        let store = folder.path + "/store"
        let output = try await run(streamgateBinary, [
            "transcode", input, "--profile", packageRoot.appendingPathComponent(profile).path,
            "--out", store, "--asset-id", "hostile",
        ] + extra, environment: streamgateEnvironment())
        return (output, store, folder)
    }

    @Test("playlists, manifests and lists of files are refused: nothing they name is read or connected to", .tags(.endToEnd))
    func inputCannotReadFilesOrProbeTheNetwork() async throws {
        let listener = try LoopbackListener()
        let folder = try TemporaryFolder()
        let secret = folder.path + "/secret.ts"
        try Data("not for the uploader".utf8).write(to: URL(fileURLWithPath: secret))
        let basic = packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path
        let url = "http://127.0.0.1:\(listener.port)/x.ts"
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:\(secret)\n#EXTINF:10,\n\(url)\n#EXT-X-ENDLIST\n"
        let dataURI = "data:application/vnd.apple.mpegurl;base64," + Data(media.utf8).base64EncodedString()
        let files: [(name: String, text: String, format: String)] = [
            ("media.m3u8", media, "'hls'"),
            ("master.mp4", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n\(dataURI)\n", "'hls'"),
            ("list.ffconcat", "ffconcat version 1.0\nfile \(basic)\nfile \(url)\n", "'concat'"),
            ("manifest.mpd", """
            <?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT5S">\
            <Period><AdaptationSet><Representation id="1" bandwidth="1"><BaseURL>\(url)</BaseURL></Representation>\
            </AdaptationSet></Period></MPD>
            """, "'dash'"),
            ("session.sdp", "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video \(listener.port) RTP/AVP 96\n", "sdp"),
        ]
        for file in files {
            let path = folder.path + "/" + file.name
            try Data(file.text.utf8).write(to: URL(fileURLWithPath: path))
            let (output, store, _) = try await Self.transcode(path)
            #expect(output.status == 65, "\(file.name): \(output.stderr)")
            #expect(output.stderr.split(separator: "\n").count == 1, "\(file.name): one line: \(output.stderr)")
            #expect(output.stderr.contains(path), "\(file.name) names the file: \(output.stderr)")
            #expect(output.stderr.contains("not accepted") || output.stderr.contains("not a media file"), "\(file.name): \(output.stderr)")
            try expectNothingPublished(store: store)
        }
        #expect(listener.acceptPending() == 0, "an input made the transcode connect to a local port")
    }

    @Test("a source reached through a symbolic link is refused when a worker hands it over (the link may be planted later)", .tags(.endToEnd))
    func sourceCannotEscapeByLink() async throws {
        let folder = try TemporaryFolder()
        let link = folder.path + "/clip.mp4"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path)
        // A worker's child: the keyring on standard input, the path taken as given.
        let keyring = "STREAMGATE_MASTER_KEY=\(testMasterKey)\n"
        let output = try await run(streamgateBinary, [
            "transcode", link, "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path,
            "--out", folder.path + "/store", "--keyring-stdin", "--quiet",
        ], environment: [:], stdin: Data(keyring.utf8))
        #expect(output.status == 65, "\(output.stderr)")
        #expect(output.stderr.contains("symbolic link"), "\(output.stderr)")
        try expectNothingPublished(store: folder.path + "/store")
    }

    @Test("what a file declares is capped: pictures, duration, streams, output bytes", .tags(.endToEnd), arguments: [
        (["--max-pixels", "100000"], "pixels"),
        (["--max-duration", "2"], "at most 2 s"),
        (["--max-streams", "1"], "streams; at most 1 are accepted"),
        (["--max-output-bytes", "50000"], "exceed its limit of 50000 bytes"),
    ])
    func declaredWorkIsCapped(_ limit: [String], _ reason: String) async throws {
        let input = packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path
        let (output, store, _) = try await Self.transcode(input, extra: limit)
        #expect(output.status != 0)
        #expect(output.stderr.contains(reason), "\(limit): \(output.stderr)")
        #expect(output.stderr.split(separator: "\n").count == 1, "\(output.stderr)")
        try expectNothingPublished(store: store)
    }

    @Test("a declared frame rate of 2^31 a second cannot crash the transcode (GOP length and level are not computed from it)", .tags(.endToEnd))
    func implausibleFrameRateCannotCrashTheTranscode() async throws {
        // The video track's time scale made 2^31 - 1 and its frames one tick long: libavformat then
        // guesses 2147483647 frames a second, which times a 2 s keyframe interval overflowed Int32.
        var bytes = try HostileFixture.bytes("fixtures/good/basic.mp4")
        let boxes = HostileFixture.mp4Boxes(bytes)
        let mdhd = try #require(boxes.first { $0.path == "moov/trak/mdia/mdhd" }, "basic.mp4's first track is its video")
        let stts = try #require(boxes.first { $0.path == "moov/trak/mdia/minf/stbl/stts" })
        HostileFixture.put(UInt32(Int32.max), at: mdhd.start + 20, in: &bytes)  // timescale
        HostileFixture.put(1, at: stts.start + 20, in: &bytes)  // the one entry's sample_delta
        let folder = try TemporaryFolder()
        let input = folder.path + "/fast-frames.mp4"
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        let (output, store, _) = try await Self.transcode(input, profile: "profiles/default.yaml")
        #expect(output.status == 0 || output.status == 65, "no crash: status \(output.status): \(output.stderr.suffix(1500))")
        if output.status != 0 {
            #expect(output.stderr.split(separator: "\n").count == 1, "one line: \(output.stderr)")
            try expectNothingPublished(store: store)
        }
    }

    @Test("a stream past the cap met while reading (MPEG-TS adds streams as it meets them) fails as the streams cap, at once, not as memory", .tags(.endToEnd))
    func streamsMetWhileReadingCannotPassForMemory() async throws {
        let folder = try TemporaryFolder()
        let input = folder.path + "/three-streams.ts"
        try await HostileFixture.ffmpeg([
            "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10:duration=0.5", "-f", "lavfi", "-i", "sine=duration=0.5",
            "-f", "lavfi", "-i", "sine=frequency=300:duration=0.5", "-map", "0", "-map", "1", "-map", "2",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "32k", input,
        ])
        // As a worker runs it: with an address-space cap, under which a memory failure is retried.
        let (output, store, _) = try await Self.transcode(input, extra: ["--max-streams", "2", "--memory-limit-mib", "4096"])
        #expect(output.status == 65, "bad input, not memory (71): \(output.stderr)")
        #expect(output.stderr.contains("has more than 2 streams; at most 2 are accepted"), "\(output.stderr)")
        #expect(output.stderr.split(separator: "\n").count == 1, "\(output.stderr)")
        try expectNothingPublished(store: store)
    }

    @Test("a table declaring 2^31 entries is bad input, failed at once, not memory retried under the cap", .tags(.endToEnd))
    func absurdTableCannotPassForMemory() async throws {
        // The video track's chunk-offset table declares 2^31 - 1 entries: 16 GiB, which libavformat
        // will not allocate whatever the address-space cap.
        var bytes = try HostileFixture.bytes("fixtures/good/basic.mp4")
        let stco = try #require(HostileFixture.mp4Boxes(bytes).first { $0.path == "moov/trak/mdia/minf/stbl/stco" })
        HostileFixture.put(UInt32(Int32.max), at: stco.start + 12, in: &bytes)  // entry_count
        let folder = try TemporaryFolder()
        let input = folder.path + "/huge-table.mp4"
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        let (output, store, _) = try await Self.transcode(input, extra: ["--memory-limit-mib", "4096"])
        #expect(output.status == 65, "bad input, not memory (71): \(output.stderr)")
        #expect(output.stderr.contains("asks for more memory than libav* will allocate"), "\(output.stderr)")
        #expect(!output.stderr.contains("under the limit"), "\(output.stderr)")
        #expect(output.stderr.split(separator: "\n").count == 1, "\(output.stderr)")
        try expectNothingPublished(store: store)
    }

    @Test("a file libavformat cannot open or probe is said to be one, never by a bare error code (\"End of file\", \"patches welcome\")", .tags(.endToEnd))
    func unreadableInputIsNeverABareErrorCode() async throws {
        let folder = try TemporaryFolder()
        // vfr.mkv cut inside its header (libavformat: EIO), and an MPEG-TS cut before its streams'
        // first packets (avformat_find_stream_info: EOF, with nothing logged).
        let mkv = folder.path + "/cut-header.mkv"
        try Data(try HostileFixture.bytes("fixtures/good/vfr.mkv").prefix(188)).write(to: URL(fileURLWithPath: mkv))
        let ts = folder.path + "/whole.ts"
        try await HostileFixture.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10:duration=0.5", "-c:v", "libx264", "-preset", "ultrafast", ts])
        let cut = folder.path + "/cut-streams.ts"
        try Data(try Data(contentsOf: URL(fileURLWithPath: ts)).prefix(256)).write(to: URL(fileURLWithPath: cut))
        for (input, reason) in [(mkv, "not a media file FFmpeg can read ("), (cut, "its streams cannot be read (it ends before they begin)")] {
            let (output, store, _) = try await Self.transcode(input)
            #expect(output.status == 65, "\(input): \(output.stderr)")
            #expect(output.stderr.contains("\(input): \(reason)"), "says what it means for the file: \(output.stderr)")
            #expect(output.stderr.split(separator: "\n").count == 1, "\(output.stderr)")
            try expectNothingPublished(store: store)
        }
    }

    @Test("sound that decodes to nothing is said to be so, not as a rendition without segments", .tags(.endToEnd))
    func audioWithoutSamplesIsSaidSo() async throws {
        // A WAV whose format tag says MP3 over 800 bytes of silence in PCM: no MP3 frame to decode.
        var wav = Data("RIFF".utf8) + HostileFixture.littleEndian(UInt32(4 + 24 + 8 + 800), 4) + Data("WAVEfmt ".utf8)
        wav += HostileFixture.littleEndian(16, 4) + HostileFixture.littleEndian(0x0055, 2) + HostileFixture.littleEndian(1, 2)
        wav += HostileFixture.littleEndian(8000, 4) + HostileFixture.littleEndian(16000, 4) + HostileFixture.littleEndian(2, 2)
        wav += HostileFixture.littleEndian(16, 2) + Data("data".utf8) + HostileFixture.littleEndian(800, 4) + Data(count: 800)
        let folder = try TemporaryFolder()
        let input = folder.path + "/mp3-tag.wav"
        try wav.write(to: URL(fileURLWithPath: input))
        let (output, store, _) = try await Self.transcode(input)
        #expect(output.status == 65, "\(output.stderr)")
        #expect(output.stderr.contains("the audio stream has no decodable samples"), "\(output.stderr)")
        #expect(output.stderr.split(separator: "\n").count == 1, "\(output.stderr)")
        try expectNothingPublished(store: store)
    }

    @Test("frames nanoseconds apart (a time base of 1 ns) cannot break the muxer's 90 kHz timestamps", .tags(.endToEnd))
    func nanosecondFramesCannotBreakTheMuxer() async throws {
        // vfr.mkv's TimecodeScale (1,000,000 ns: 0x2AD7B1, 3 bytes) made 1: its frames 33 ms apart
        // become 33 ns apart, and met on the segments' 90 kHz clock.
        var bytes = try HostileFixture.bytes("fixtures/good/vfr.mkv")
        let scale: [UInt8] = [0x2A, 0xD7, 0xB1, 0x83, 0x0F, 0x42, 0x40]
        let at = try #require((0...(bytes.count - scale.count)).first { Array(bytes[$0..<$0 + scale.count]) == scale })
        bytes.replaceSubrange(at + 4..<at + 7, with: [0, 0, 1])
        let folder = try TemporaryFolder()
        let input = folder.path + "/nanoseconds.mkv"
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        let (output, _, _) = try await Self.transcode(input)
        #expect(output.status == 0, "\(output.stderr)")
        #expect(!output.stderr.contains("non monotonically increasing"), "\(output.stderr)")
    }

    @Test("a damaged audio packet is skipped like a damaged video packet, whatever code the decoder gives (AAC: EPERM, PATCHWELCOME)", .tags(.endToEnd))
    func damagedAudioPacketsAreSkippedNotFatal() async throws {
        // The audio track's sample-to-chunk table says 1001 samples a chunk: the AAC packets read
        // are cut in the wrong places, and the decoder answers "Operation not permitted" for them.
        var bytes = try HostileFixture.bytes("fixtures/good/basic.mp4")
        let tables = HostileFixture.mp4Boxes(bytes).filter { $0.path == "moov/trak/mdia/minf/stbl/stsc" }
        try #require(tables.count == 2, "basic.mp4 has a video and an audio track")
        HostileFixture.put(1001, at: tables[1].start + 20, in: &bytes)  // samples_per_chunk
        let folder = try TemporaryFolder()
        let input = folder.path + "/damaged-audio.mp4"
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        let (output, _, _) = try await Self.transcode(input, extra: ["--json"])
        #expect(output.status == 0, "published, not \(output.stderr)")
        #expect(output.stdout.contains("damaged packets were skipped"), "a warning counts them: \(output.stdout)")

        // Nothing but damaged packets (every sample's bytes zeroed) still fails, and says why.
        var zeroed = try HostileFixture.bytes("fixtures/good/basic.mp4")
        let mdat = try #require(HostileFixture.mp4Boxes(zeroed).first { $0.path == "mdat" })
        zeroed.replaceSubrange(mdat.start + 8..<mdat.start + mdat.size, with: repeatElement(0, count: mdat.size - 8))
        let blank = folder.path + "/zeroed.mp4"
        try Data(zeroed).write(to: URL(fileURLWithPath: blank))
        let (failed, store, _) = try await Self.transcode(blank)
        #expect(failed.status == 65, "\(failed.stderr)")
        #expect(failed.stderr.contains("the video stream has no decodable frames"), "\(failed.stderr)")
        #expect(failed.stderr.split(separator: "\n").count == 1, "\(failed.stderr)")
        try expectNothingPublished(store: store)
    }
}

/// Hostile variants of the checked-in clips, made in the test by changing a few bytes, so each
/// test says which field it damages and no such file is kept in the repository.
enum HostileFixture {
    static func bytes(_ fixture: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: packageRoot.appendingPathComponent(fixture)))
    }

    /// Every box of an MP4, depth first, with its path ("moov/trak/mdia/mdhd"), offset and size.
    static func mp4Boxes(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil, in parent: String = "") -> [(path: String, start: Int, size: Int)] {
        let containers: Set<String> = ["moov", "trak", "mdia", "minf", "stbl", "edts", "dinf", "udta"]
        var boxes: [(path: String, start: Int, size: Int)] = []
        var offset = start
        let end = end ?? bytes.count
        while offset + 8 <= end {
            let size = Int(bytes[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard size >= 8, offset + size <= end else { break }
            let type = String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self)
            let path = parent.isEmpty ? type : parent + "/" + type
            boxes.append((path, offset, size))
            if containers.contains(type) { boxes += mp4Boxes(bytes, from: offset + 8, to: offset + size, in: path) }
            offset += size
        }
        return boxes
    }

    /// Runs the ffmpeg CLI (for inputs no fixture has, such as MPEG-TS).
    static func ffmpeg(_ arguments: [String]) async throws {
        let output = try await run("/usr/bin/ffmpeg", ["-v", "error", "-y", "-nostdin"] + arguments)
        guard output.status == 0 else { throw TestFailure("ffmpeg \(arguments.joined(separator: " ")): \(output.stderr)") }
    }

    /// `value` in `count` little-endian bytes, as RIFF fields are.
    static func littleEndian(_ value: UInt32, _ count: Int) -> Data {
        Data((0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
    }

    /// Writes a big-endian 32-bit value, as MP4 fields are.
    static func put(_ value: UInt32, at offset: Int, in bytes: inout [UInt8]) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index)) }
    }
}
