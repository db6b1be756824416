import Foundation
import Jobs
import Logging
import Store
import TestSupport
import Testing
import Vault
@testable import Farm
import Processes
import Synchronization

/// The worker's side of the child protocol, against a real `streamgate transcode --events`: each way
/// a transcode ends reaches the worker as its typed status and event, the child leaves the staging
/// folder to the attempt that owns it, and a line that is not an event is logged, never fatal.
@Suite("transcode child: typed statuses and events")
struct TranscodeChildTests {
    /// A transcode started as a worker starts one: sandboxed, the keyring on standard input, in a
    /// staging folder the test owns.
    final class Attempt {
        let folder: TemporaryFolder
        let store: AssetStore
        let staging: StagingArea
        let child: TranscodeChild
        let log = LogRecorder()
        /// The files the child reported whole, in order.
        let stored = Reported()

        final class Reported: Sendable {
            private let files = Mutex<[String]>([])
            func append(_ file: String) { files.withLock { $0.append(file) } }
            var all: [String] { files.withLock { $0 } }
        }

        /// `source`: the input's bytes served over the source channel, `input` only naming them.
        init(_ input: String, memoryLimitMiB: Int = 8192, source: (any RandomAccessSource)? = nil) throws {
            folder = try TemporaryFolder()
            store = try AssetStore(root: folder.path + "/store")
            staging = try store.stage(try AssetID("typed"), heldBy: "job-1")
            let keyring = Keyring(current: try MasterKey(base64: testMasterKey, source: "test"))
            child = try TranscodeChild(
                executable: streamgateBinary,
                arguments: [
                    "transcode", input, "--profile", packageRoot.appendingPathComponent("profiles/fast.yaml").path,
                    "--out", store.root, "--asset-id", "typed", "--events", "--quiet", "--keyring-stdin",
                    "--memory-limit-mib", String(memoryLimitMiB), "--staging", staging.directory,
                ],
                secrets: keyring.handoff(), sandbox: ChildProcess.Sandbox(), logger: log.logger(),
                source: source, sourceName: input, onStored: { [stored] file in stored.append(file) }
            )
        }

        /// Waits for the child to exit and its output to be read.
        func ended() async throws -> Processes.ExitStatus {
            let exit = try #require(await child.process.exited(timeout: 120), "the transcode did not end")
            child.drainOutput()
            return exit
        }

        /// The child failed and left the staging folder alone: its owner (this attempt) removes it.
        func expectFailed(_ status: TranscodeExit, exit: Processes.ExitStatus, saying reason: String) throws {
            #expect(TranscodeExit(exit) == status, "\(exit): \(child.errorOutput.suffix(1500))")
            let failed = try #require(child.failed, "no failed event: \(child.errorOutput.suffix(1500))")
            #expect(failed.status == status)
            #expect(failed.reason.contains(reason), "\(failed.reason)")
            #expect(child.finished == nil)
            #expect(log.errors.isEmpty, "\(log.errors)")
            #expect(FileManager.default.fileExists(atPath: staging.directory), "the child removed a staging folder it does not own")
            staging.discard()
            #expect((try? FileManager.default.contentsOfDirectory(atPath: store.root + "/staging")) == [])
            #expect(try store.publishedVersion(of: try AssetID("typed")) == nil)
        }
    }

    @Test("bad input: the badInput status, and a failed event naming the file", .tags(.endToEnd))
    func badInput() async throws {
        let input = packageRoot.appendingPathComponent("fixtures/bad/random.mp4").path
        let attempt = try Attempt(input)
        try attempt.expectFailed(.badInput, exit: try await attempt.ended(), saying: input)
    }

    @Test("an allocation failing under the memory cap: the outOfMemory status, not bad input", .tags(.endToEnd))
    func outOfMemory() async throws {
        let inputs = try TemporaryFolder()
        let attempt = try Attempt(try Self.hungryInput(in: inputs), memoryLimitMiB: 1024)
        try attempt.expectFailed(.outOfMemory, exit: try await attempt.ended(), saying: "ran out of memory under the limit of 1024 MiB")
    }

    @Test("SIGTERM mid-transcode: the cancelled status", .tags(.endToEnd))
    func cancelled() async throws {
        let attempt = try Attempt(await FarmHarness.longClip)
        let deadline = Date().addingTimeInterval(60)
        while attempt.child.progress == nil, attempt.child.process.isRunning, Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(attempt.child.progress != nil, "no progress event before the transcode ended")
        attempt.child.process.signalGroup(SIGTERM)
        try attempt.expectFailed(.cancelled, exit: try await attempt.ended(), saying: "cancelled")
    }

    @Test("success: the succeeded status, every file reported as it is whole, the done event; the worker publishes", .tags(.endToEnd))
    func finished() async throws {
        let attempt = try Attempt(packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path)
        let exit = try await attempt.ended()
        #expect(TranscodeExit(exit) == .succeeded, "\(attempt.child.errorOutput.suffix(1500))")
        let summary = try #require(attempt.child.finished)
        #expect(summary.version == nil && attempt.child.failed == nil && attempt.child.progress != nil && attempt.log.errors.isEmpty)
        // The child only writes: nothing is published until the attempt's owner says so.
        #expect(try attempt.store.publishedVersion(of: try AssetID("typed")) == nil)
        let written = try FileManager.default.subpathsOfDirectory(atPath: attempt.staging.directory).filter { path in
            var folder: ObjCBool = false
            return FileManager.default.fileExists(atPath: attempt.staging.directory + "/" + path, isDirectory: &folder) && !folder.boolValue
        }
        let stored = attempt.stored.all
        #expect(Set(stored) == Set(written) && stored.count == written.count, "reported \(stored), wrote \(written)")
        #expect(stored.contains("master.m3u8") && stored.contains("asset.json") && stored.contains { $0.hasSuffix(".ts") || $0.hasSuffix(".m4s") })
        // Segments are reported before the playlists that list them are written.
        let firstSegment = try #require(stored.firstIndex { $0.hasSuffix(".ts") || $0.hasSuffix(".m4s") })
        #expect(firstSegment < stored.firstIndex(of: "master.m3u8")!)
        let published = try attempt.staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: "job-1")
        #expect(try attempt.store.publishedVersion(of: try AssetID("typed")) == published)
    }

    @Test("a line that is not an event is logged naming it; the events around it still count")
    func malformedLineIsLogged() async throws {
        let log = LogRecorder()
        let script = """
            echo 'streamgate: not json'
            echo '{"type":"warning","text":"x"}'
            echo '{"type":"failed","reason":"the file is bad","status":65}'
            exit 65
            """
        let child = try TranscodeChild(executable: "/bin/sh", arguments: ["-c", script], secrets: [], sandbox: ChildProcess.Sandbox(), logger: log.logger())
        let exit = try #require(await child.process.exited(timeout: 30))
        child.drainOutput()
        #expect(TranscodeExit(exit) == .badInput)
        #expect(child.failed?.reason == "the file is bad" && child.failed?.status == .badInput)
        let errors = log.errors
        #expect(errors.count == 2, "\(errors)")
        #expect(errors.first?.contains("streamgate: not json") == true, "\(errors)")
        #expect(errors.last?.contains(#"{"type":"warning","text":"x"}"#) == true && errors.last?.contains("unknown event type 'warning'") == true, "\(errors)")
    }

    @Test("through a worker: out of memory under the cap is retried, then dead-lettered saying so", .tags(.endToEnd))
    func workerRetriesOutOfMemory() async throws {
        try await withFarm { farm in
            try farm.startWorker("capped", extra: ["--memory-limit-mib", "1024"])
            let id = try await farm.queue.enqueue(JobSpec(
                source: try Self.hungryInput(in: farm.folder), profile: FarmTests.fast, assetID: "hungry", maxAttempts: 2
            )).jobID
            let record = try await farm.wait(for: id, timeout: 60) { record in
                if record.state == .retrying {
                    _ = try? await run("/usr/bin/redis-cli", ["-s", farm.redis.socketPath, "ZADD", farm.queue.keys.delayed, "0", id])
                }
                return record.state.isTerminal
            }
            #expect(record.state == .dead && record.attempts == 2, "\(record)")
            #expect(record.error?.contains("ran out of memory under the limit of 1024 MiB") == true, "\(record.error ?? "")")
            #expect(farm.staging().isEmpty && farm.versions(of: "hungry").isEmpty)
        }
    }

    /// basic.mp4 with its video chunk-offset table declaring 201,326,592 entries: 1.5 GiB, which
    /// libavformat tries to allocate (under `av_max_alloc`'s 2 GiB) and a 1 GiB cap refuses.
    static func hungryInput(in folder: TemporaryFolder) throws -> String {
        var bytes = try HostileFixture.bytes("fixtures/good/basic.mp4")
        let stco = try #require(HostileFixture.mp4Boxes(bytes).first { $0.path == "moov/trak/mdia/minf/stbl/stco" })
        HostileFixture.put(0x0C00_0000, at: stco.start + 12, in: &bytes)  // entry_count
        let path = folder.path + "/hungry.mp4"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}
