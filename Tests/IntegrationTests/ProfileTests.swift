import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Processes
import Profiling
import Testing
@testable import streamgate

/// `streamgate profile` attached by perf to a real `streamgate serve` under a curl load. perf must
/// be able to attach here (root, or perf_event_paranoid that allows it): if it cannot, the test
/// fails with perf's reason rather than skipping.
@Suite("ProfileTests: streamgate profile on a running process", .serialized)
struct ProfileTests {
    @Test("an origin under load: folded stacks through StreamGate's code, and a flame graph that parses", .tags(.endToEnd))
    func profilesServingOrigin() async throws {
        let folder = try TemporaryFolder()
        let store = folder.path + "/store"
        let clip = packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path
        let profile = packageRoot.appendingPathComponent("profiles/fast.yaml").path
        let published = try await run(
            streamgateBinary, ["transcode", clip, "--profile", profile, "--out", store, "--asset-id", "clip"],
            environment: streamgateEnvironment())
        try #require(published.status == 0, "transcode: \(published.stderr)")

        try await withServe(store: store, log: folder.path + "/serve.log") { origin in
            let pid = try #require(origin.process?.pid)
            // Playlists and segments over keep-alive connections, from curl: a real client's load.
            var config = ""
            for _ in 0..<200 {
                for path in ["master.m3u8", "360p/index.m3u8", "360p/00000.ts", "240p/00001.ts"] {
                    config += "url = \"\(origin.baseURL)/v/clip/\(path)\"\noutput = \"/dev/null\"\n"
                }
            }
            let loadConfig = folder.path + "/load.cfg"
            try config.write(toFile: loadConfig, atomically: true, encoding: .utf8)
            let load = Task {
                while !Task.isCancelled { _ = try? await run("/usr/bin/curl", ["-s", "-K", loadConfig], timeout: 60) }
            }
            let out = folder.path + "/profile"
            let profiled = try await run(streamgateBinary, ["profile", "\(pid)", "--seconds", "2", "--out", out], environment: streamgateEnvironment(), timeout: 180)
            load.cancel()
            _ = await load.value
            try #require(profiled.status == 0, "streamgate profile \(pid) failed: \(profiled.stderr)")

            #expect(profiled.stdout.contains(out + "/profile.folded") && profiled.stdout.contains(out + "/profile.svg"), "\(profiled.stdout)")
            #expect(profiled.stdout.contains("top frames by self time"), "\(profiled.stdout)")
            let text = try String(contentsOfFile: out + "/profile.folded", encoding: .utf8)
            let folded = FoldedStacks.parse(text)
            #expect(folded.totalSamples > 20, "\(folded.totalSamples) samples")
            let stacks = folded.counts.keys.map { $0.split(separator: ";") }
            // StreamGate's own code, demangled, inside whole stacks that reach the thread's start.
            let ours = stacks.filter { frames in frames.contains { $0.contains("Origin.") } }
            #expect(!ours.isEmpty, "no stack passes through the origin's code:\n\(text.prefix(4000))")
            #expect(ours.contains { $0.count >= 10 && $0.contains { $0.hasPrefix("start_thread") || $0.hasPrefix("clone3") } },
                    "no whole stack through the origin's code:\n\(text.prefix(4000))")
            let frames = stacks.joined()
            let raw = frames.filter { $0.hasPrefix("$s") }.count
            #expect(raw * 20 < frames.count, "\(raw) of \(frames.count) frames left mangled")
            #expect(!text.contains("+0x"), "offsets are trimmed")

            let svg = try Data(contentsOf: URL(fileURLWithPath: out + "/profile.svg"))
            let titles = TitleCollector()
            let parser = XMLParser(data: svg)
            parser.delegate = titles
            #expect(parser.parse(), "profile.svg is not well-formed: \(parser.parserError.map { "\($0)" } ?? "")")
            #expect(titles.titles.contains { $0.contains("Origin.") })
            #expect(titles.texts.first?.contains("(pid \(pid)): 2 s at") == true, "\(titles.texts.first ?? "no title")")
        }
    }

    @Test("one clear line for a process that is not there, not StreamGate, or not ours to profile; and without perf")
    func refusals() async throws {
        let environment = streamgateEnvironment()
        let ended = try ChildProcess(executable: "/bin/true", arguments: [])
        _ = await ended.exited()
        let gone = try await run(streamgateBinary, ["profile", "\(ended.pid)", "--seconds", "1"], environment: environment)
        #expect(gone.status == 66 && gone.stderr == "streamgate: no process \(ended.pid)\n", "\(gone.stderr)")

        let sleeper = try ChildProcess(executable: "/bin/sleep", arguments: ["60"])
        defer { sleeper.terminate(grace: 1) }
        let other = try await run(streamgateBinary, ["profile", "\(sleeper.pid)", "--seconds", "1"], environment: environment)
        #expect(other.status == 64, "\(other.stderr)")
        #expect(other.stderr == "streamgate: process \(sleeper.pid) is sleep, not streamgate (--any-process profiles it anyway)\n")

        var noPerf = environment
        noPerf["PATH"] = "/nonexistent"
        let missing = try await run(streamgateBinary, ["profile", "\(sleeper.pid)", "--any-process"], environment: noPerf)
        #expect(missing.status == 69 && missing.stderr == "streamgate: perf is not installed (Debian: apt-get install linux-perf)\n", "\(missing.stderr)")

        // An idle process: perf attaches (the check passes with --any-process) and finds no CPU used.
        let folder = try TemporaryFolder()
        let idle = try await run(
            streamgateBinary, ["profile", "\(sleeper.pid)", "--seconds", "1", "--any-process", "--out", folder.path], environment: environment, timeout: 60)
        #expect(idle.status == 1 && idle.stderr.hasPrefix("streamgate: perf took no samples of process \(sleeper.pid)"), "\(idle.stderr)")

        // Another user's process: as root, drop to nobody to ask about root's sleeper.
        let refused = getuid() == 0
            ? try await run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", streamgateBinary, "profile", "\(sleeper.pid)", "--any-process"], environment: environment)
            : try await run(streamgateBinary, ["profile", "1", "--any-process"], environment: environment)
        #expect(refused.status == 77, "\(refused.stderr)")
        #expect(refused.stderr.contains("permission refused") && refused.stderr.contains("/proc/sys/kernel/perf_event_paranoid"), "\(refused.stderr)")
        #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    }

    @Test("perf's own refusals become one line that says what to change")
    func perfMessages() throws {
        // What perf 6.1 printed when `nobody` asked to sample pid 1 here (perf_event_paranoid 2).
        let refusal = """
            Error:
            Access to performance monitoring and observability operations is limited.
            Consider adjusting /proc/sys/kernel/perf_event_paranoid setting to open
            access to performance monitoring and observability operations for processes
            without CAP_PERFMON, CAP_SYS_PTRACE or CAP_SYS_ADMIN Linux capability.
            perf_event_paranoid setting is 2:
            """
        let failure = try #require(PerfRecording.failure(in: refusal, pid: 42))
        #expect(failure.code == 77 && !failure.message.contains("\n"))
        #expect(failure.message.hasPrefix("perf may not attach to process 42: permission refused") && failure.message.contains("/proc/sys/kernel/perf_event_paranoid"))
        #expect(PerfRecording.failure(in: "Couldn't create thread/CPU maps: No such process", pid: 42)?.code == 66)
        #expect(PerfRecording.failure(in: "Error:\nWorkload failed: No such file or directory\n", pid: 42) == nil)
        #expect(PerfRecording.firstReason("Error:\nWorkload failed: No such file or directory\n") == "Workload failed: No such file or directory")
    }
}

/// Collects a document's `<title>` and `<text>` contents.
private final class TitleCollector: NSObject, XMLParserDelegate {
    var titles: [String] = []
    var texts: [String] = []
    private var text = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "title" { titles.append(text) }
        if name == "text" { texts.append(text) }
        text = ""
    }
}
