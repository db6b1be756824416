import Foundation
import Jobs
import TestSupport
import Testing

/// One upload across many workers: a long source cut into chunks that are jobs of their own,
/// assembled into one seamless ladder.
@Suite("split transcode: real farm, real origin, real players", .serialized)
struct SplitTranscodeTests {
    /// fast.yaml (2 s segments) cut into 12 s chunks: the 40 s clip becomes 0–12, 12–24, 24–end.
    static func splitProfile(in farm: FarmHarness) throws -> String {
        let path = farm.folder.path + "/split.yaml"
        let fast = try String(contentsOfFile: packageRoot.appendingPathComponent("profiles/fast.yaml").path, encoding: .utf8)
        try fast.replacingOccurrences(of: "name: fast", with: "name: split\nchunk_duration: 12")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func chunkIDs(of parent: String) -> [String] { (0..<3).map { JobQueue.chunkID(parent: parent, index: $0) } }

    /// 40 s of 360p with B-frames and open GOPs every 3.3 s (what cameras and encoders make):
    /// chunk starts fall between keyframes, and frames come out of the decoder out of file order.
    static var bframeClip: String {
        get async throws {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("sg-bframes-\(getpid()).mp4").path
            if !FileManager.default.fileExists(atPath: path) {
                let made = try await run("/usr/bin/ffmpeg", [
                    "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=40",
                    "-f", "lavfi", "-i", "sine=frequency=330:duration=40", "-c:v", "libx264", "-preset", "veryfast", "-bf", "3",
                    "-g", "100", "-x264-params", "open-gop=1", "-c:a", "aac", "-shortest", path,
                ])
                guard made.status == 0 else { throw TestFailure("cannot make the B-frame clip: \(made.stderr)") }
            }
            return path
        }
    }

    /// ffmpeg's framemd5 lines of one stream: (pts, duration) in the stream's time base.
    static func timings(_ framemd5: String) -> [(pts: Int, duration: Int)] {
        framemd5.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count >= 5, let pts = Int(fields[2]), let duration = Int(fields[3]) else { return nil }
            return (pts, duration)
        }
    }

    /// Indexes where a stream's next frame does not start where the last ended (a gap or a double).
    static func breaks(_ timings: [(pts: Int, duration: Int)]) -> [Int] {
        timings.indices.dropFirst().filter { timings[$0].pts != timings[$0 - 1].pts + timings[$0 - 1].duration }
    }

    @Test("a long upload split across workers decodes to the same frames and sound as one worker's, seamless at the chunk edges", .tags(.endToEnd))
    func splitMatchesWhole() async throws {
        try await withFarm { farm in
            try FileManager.default.createDirectory(atPath: farm.store, withIntermediateDirectories: true)
            try await withServe(store: farm.store, environment: farm.environment) { origin in
                try farm.startWorker("left")
                try farm.startWorker("right")
                let clip = try await Self.bframeClip
                let split = try await farm.queue.enqueue(JobSpec(source: clip, profile: try Self.splitProfile(in: farm), assetID: "split")).jobID
                let whole = try await farm.queue.enqueue(JobSpec(source: clip, profile: "fast", assetID: "whole")).jobID
                let record = try await farm.wait(for: split, timeout: 180) { $0.state.isTerminal }
                #expect(record.state == .succeeded && record.version != nil, "\(record)")
                #expect(try await farm.wait(for: whole, timeout: 180) { $0.state.isTerminal }.state == .succeeded)
                for id in Self.chunkIDs(of: split) {
                    let chunk = try #require(try await farm.queue.job(id))
                    #expect(chunk.state == .succeeded && chunk.attempts == 1 && chunk.spec?.kind == .chunk, "\(chunk)")
                }
                let master = String(decoding: try await origin.get("/v/split/master.m3u8").body, as: UTF8.self)
                #expect(master.contains("#EXT-X-MEDIA:TYPE=AUDIO") && master.contains("AUDIO=\"audio\""), "audio once, as its own rendition: \(master)")

                // Every frame, each once, on one clock: the chunk edges (12 s, 24 s) are invisible.
                func decode(_ asset: String, _ stream: String) async throws -> [(pts: Int, duration: Int)] {
                    let result = try await run("/usr/bin/ffmpeg", [
                        "-v", "error", "-i", origin.baseURL + "/v/\(asset)/master.m3u8", "-map", "0:\(stream):0", "-f", "framemd5", "-",
                    ], timeout: 120)
                    #expect(result.status == 0 && result.stderr.isEmpty, "\(asset) \(stream): \(result.stderr.suffix(1500))")
                    return Self.timings(result.stdout)
                }
                let (splitVideo, wholeVideo) = try await (decode("split", "v"), decode("whole", "v"))
                #expect(splitVideo.count == ProgressivePublishTests.longClipFrames && wholeVideo.count == splitVideo.count, "frames: split \(splitVideo.count), whole \(wholeVideo.count)")
                #expect(Self.breaks(splitVideo).isEmpty, "video breaks at frames \(Self.breaks(splitVideo).prefix(10))")
                let (splitAudio, wholeAudio) = try await (decode("split", "a"), decode("whole", "a"))
                #expect(splitAudio.count == wholeAudio.count && splitAudio.count > 1800, "audio frames: split \(splitAudio.count), whole \(wholeAudio.count)")
                #expect(Self.breaks(splitAudio).isEmpty, "audio breaks at frames \(Self.breaks(splitAudio).prefix(10))")
                let duration = { (timings: [(pts: Int, duration: Int)]) in timings.last.map { $0.pts + $0.duration - timings[0].pts } ?? 0 }
                #expect(duration(splitVideo) == duration(wholeVideo), "video lasts as long: \(duration(splitVideo)) and \(duration(wholeVideo))")

                let manifest = try Data(contentsOf: URL(fileURLWithPath: farm.store + "/assets/split/asset.json"))
                let assetJSON = try JSONSerialization.jsonObject(with: manifest) as? [String: Any]
                #expect((assetJSON?["poster"] as? String) == "poster.jpg" && (assetJSON?["renditions"] as? [Any])?.count == 3, "\(String(describing: assetJSON))")
                #expect(try await origin.get("/v/split/poster.jpg").status == 200)
                // The storyboard: each chunk's thumbnails on its own sheets, one index, as many cues as the whole's.
                #expect((assetJSON?["storyboard"] as? String) == "storyboard.vtt")
                let (splitIndex, wholeIndex) = try await (origin.get("/v/split/storyboard.vtt"), origin.get("/v/whole/storyboard.vtt"))
                let cues = { (body: Data) in String(decoding: body, as: UTF8.self).components(separatedBy: " --> ").count - 1 }
                #expect(splitIndex.status == 200 && cues(splitIndex.body) == cues(wholeIndex.body) && cues(splitIndex.body) >= 39, "\(cues(splitIndex.body)) cues")
                let sheets = Set(String(decoding: splitIndex.body, as: UTF8.self).split(separator: "\n").filter { $0.contains("#xywh=") }.map { $0.split(separator: "#")[0] })
                #expect(sheets.count == 3, "a sheet a chunk: \(sheets)")
                for sheet in sheets { #expect(try await origin.get("/v/split/\(record.version ?? "")/\(sheet.split(separator: "/").suffix(2).joined(separator: "/"))").status == 200, "\(sheet)") }
                #expect(farm.staging().isEmpty, "nothing left staged: \(farm.staging())")
            }
        }
    }

    @Test("a split upload is shown once its first chunk is sealed, grows chunk by chunk, and ffmpeg started then plays every frame", .tags(.endToEnd))
    func splitGrowsInOrder() async throws {
        try await withFarm { farm in
            try FileManager.default.createDirectory(atPath: farm.store, withIntermediateDirectories: true)
            try await withServe(store: farm.store, environment: farm.environment) { origin in
                // One worker and the default ladder: each 12 s chunk takes it a while, one after another.
                try farm.startWorker("solo")
                let profile = farm.folder.path + "/growing-split.yaml"
                let ladder = try String(contentsOfFile: packageRoot.appendingPathComponent("profiles/default.yaml").path, encoding: .utf8)
                try ladder.replacingOccurrences(of: "name: default", with: "name: growingsplit\nchunk_duration: 12")
                    .write(toFile: profile, atomically: true, encoding: .utf8)
                let id = try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: profile, assetID: "growsplit")).jobID
                let shown = try await farm.wait(for: id, timeout: 120) { $0.playableAt != nil || $0.state.isTerminal }
                #expect(shown.state == .running && shown.playableVersion != nil, "shown while its chunks run: \(shown)")
                let chunks = Self.chunkIDs(of: id)
                #expect(try await farm.queue.job(chunks[2])?.state != .succeeded, "shown before the last chunk")

                let media = String(decoding: try await origin.get("/v/growsplit/360p/index.m3u8").body, as: UTF8.self)
                #expect(media.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !media.contains("#EXT-X-ENDLIST"), "\(media)")
                #expect(media.contains("00000.ts") && !media.contains("00009.ts"), "the first chunk's segments only (0–12 s: 0…5): \(media)")
                let played = try await run("/usr/bin/ffmpeg", [
                    "-v", "error", "-prefer_x_start", "1", "-i", origin.baseURL + "/v/growsplit/master.m3u8", "-map", "0:v:0", "-f", "framemd5", "-",
                ], timeout: 180)
                #expect(played.status == 0 && played.stderr.isEmpty, "\(played.stderr.suffix(1500))")
                let frames = Self.timings(played.stdout)
                #expect(frames.count == ProgressivePublishTests.longClipFrames && Self.breaks(frames).isEmpty, "\(frames.count) frames, breaks at \(Self.breaks(frames).prefix(5))")

                let record = try await farm.wait(for: id, timeout: 180) { $0.state.isTerminal }
                #expect(record.state == .succeeded && record.version == shown.playableVersion, "the shown version became the published one: \(record)")
                let final = String(decoding: try await origin.get("/v/growsplit/\(record.version ?? "")/360p/index.m3u8").body, as: UTF8.self)
                #expect(final.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && final.contains("#EXT-X-ENDLIST"), "\(final)")
                #expect(farm.staging().isEmpty, "no link or folder left staged: \(farm.staging())")
            }
        }
    }

    @Test("a chunk whose worker is SIGKILLed is reclaimed alone; the others are not redone", .tags(.endToEnd))
    func killedChunkIsReclaimedAlone() async throws {
        try await withFarm { farm in
            try farm.startWorker("steady", lease: 2)
            let id = try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: try Self.splitProfile(in: farm), assetID: "reclaimed")).jobID
            let chunks = Self.chunkIDs(of: id)
            _ = try await farm.wait(for: id, timeout: 60) { _ in try await farm.queue.job(chunks[0]) != nil }
            let victim = try farm.startWorker("victim", lease: 2)
            // The victim takes the first chunk the steady worker leaves; it dies in the middle of it.
            var taken: String?
            let deadline = Date().addingTimeInterval(60)
            while taken == nil, Date() < deadline {
                for chunk in chunks {
                    if let record = try await farm.queue.job(chunk), record.worker == "victim", record.state == .running, (record.progress ?? 0) > 5 { taken = chunk }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            let killed = try #require(taken, "the victim ran a chunk")
            victim.signal(SIGKILL)
            _ = victim.wait(timeout: 5)
            let record = try await farm.wait(for: id, timeout: 180) { $0.state.isTerminal }
            #expect(record.state == .succeeded && record.attempts == 1, "the upload's job ran once: \(record)")
            for chunk in chunks {
                let finished = try #require(try await farm.queue.job(chunk))
                #expect(finished.state == .succeeded && finished.attempts == 1, "\(chunk): \(finished)")
                if chunk == killed {
                    #expect(finished.worker == "steady", "reclaimed by the live worker")
                    let orphaned = try await farm.queue.redis.send(["HGET", farm.queue.keys.job(chunk), "orphaned"]).text
                    #expect(orphaned == "1", "its dead attempt was given back, once")
                }
            }
            #expect(farm.log("steady").contains("reclaimed a job whose lease ran out"), "\(farm.log("steady").suffix(1500))")
        }
    }

    @Test("cancelling a split upload cancels its chunks and leaves nothing behind", .tags(.endToEnd))
    func cancelledSplitLeavesNothing() async throws {
        try await withFarm { farm in
            try farm.startWorker("one")
            try farm.startWorker("two")
            let id = try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: try Self.splitProfile(in: farm), assetID: "abandoned")).jobID
            let chunks = Self.chunkIDs(of: id)
            _ = try await farm.wait(for: id, timeout: 60) { _ in try await farm.queue.job(chunks[0])?.state == .running }
            _ = try await farm.queue.cancel(id)
            let record = try await farm.wait(for: id, timeout: 60) { $0.state.isTerminal }
            #expect(record.state == .cancelled, "\(record)")
            for chunk in chunks {
                let ended = try await farm.wait(for: chunk, timeout: 30) { $0.state.isTerminal }
                #expect(ended.state == .cancelled || ended.state == .succeeded, "\(chunk): \(ended)")
            }
            #expect(try await eventually(within: 10) { farm.staging().isEmpty }, "the shared version is removed: \(farm.staging())")
            #expect(farm.versions(of: "abandoned").isEmpty)
        }
    }

    @Test("in a bucket: two workers with spools of their own write one version; the origin serves it and ffmpeg plays every frame", .tags(.endToEnd))
    func splitIntoBucket() async throws {
        try await withS3 { server in
            try await withFarm { farm in
                let environment = BucketFarmTests.environment(server)
                for name in ["north", "south"] {
                    try farm.startWorker(name, store: BucketFarmTests.storeOptions(server), environment: environment, extra: ["--spool", farm.folder.path + "/spool-\(name)"])
                }
                let id = try await farm.queue.enqueue(JobSpec(source: await FarmHarness.longClip, profile: try Self.splitProfile(in: farm), assetID: "bucketsplit")).jobID
                let record = try await farm.wait(for: id, timeout: 180) { $0.state.isTerminal }
                #expect(record.state == .succeeded, "\(record): \(farm.log("north").suffix(1500)) \(farm.log("south").suffix(1500))")
                #expect(!FileManager.default.fileExists(atPath: farm.store), "no worker wrote a folder store")
                let keys = try await server.client().listAllObjects(bucket: server.bucket, prefix: "farm/objects/bucketsplit/").objects().map(\.key)
                #expect(keys.contains { $0.hasSuffix("/audio/index.m3u8") } && keys.contains { $0.hasSuffix("/360p/00019.ts") }, "\(keys.count) objects")
                try await withServe(store: "s3://\(server.bucket)/farm", arguments: ["--s3-endpoint", server.endpoint], environment: environment) { origin in
                    let play = try await run("/usr/bin/ffmpeg", [
                        "-v", "error", "-i", "\(origin.baseURL)/v/bucketsplit/master.m3u8", "-map", "0:v:0", "-f", "framemd5", "-",
                    ], timeout: 120)
                    #expect(play.status == 0 && play.stderr.isEmpty, "\(play.stderr)")
                    #expect(Self.timings(play.stdout).count == ProgressivePublishTests.longClipFrames)
                }
            }
        }
    }
}
