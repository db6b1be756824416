import Foundation
import Testing
@testable import Profiling

/// `Fixtures/perf-script.txt`: eleven samples `perf script --no-inline -F comm,tid,ip,sym,dso`
/// printed for a debug `streamgate serve` under curl load (event-loop threads, kernel TCP frames)
/// and a `streamgate transcode` (FFmpeg and x264 frames, x264's threads), recorded with
/// `--call-graph dwarf`; only the binary's path was shortened.
@Suite("ProfilingTests: a captured perf script")
struct CapturedProfileTests {
    static let script: String = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/perf-script.txt")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    static func folded() -> FoldedStacks {
        var folder = StackFolder()
        folder.add(perfScript: script)
        return folder.folded
    }

    @Test("every sample is read, with its thread and its whole call chain")
    func samples() throws {
        let samples = PerfScriptParser.samples(in: Self.script)
        #expect(samples.count == 11)
        #expect(samples.map(\.frames.count) == [72, 2, 44, 41, 18, 21, 7, 1, 1, 15, 19])
        #expect(Set(samples.map(\.thread)) == ["NIO-SGLTN-1-#1", "NIO-SGLTN-1-#2", "streamgate"])
        #expect(samples[0].frames.first == PerfFrame(symbol: "tcp_ack", module: "[kernel.kallsyms]"))
        #expect(samples[0].frames.last == PerfFrame(symbol: "clone3", module: "/usr/lib/x86_64-linux-gnu/libc.so.6"))
    }

    @Test("folded root first: thread, then the thread's start, down to the leaf; Swift names demangled")
    func stacks() throws {
        let folded = Self.folded()
        #expect(folded.totalSamples == 11)
        let stacks = folded.counts.keys.map { $0.split(separator: ";").map(String.init) }
        // The origin's event loop, from clone3 through NIO into the kernel's TCP stack.
        let tcp = try #require(stacks.first { $0.last == "tcp_ack_[k]" })
        #expect(tcp.prefix(3) == ["NIO-SGLTN-1-#2", "clone3", "start_thread"])
        #expect(tcp.contains("NIOPosix.SelectableEventLoop.run() throws -> ()"))
        #expect(tcp.contains { $0.hasPrefix("Origin.") })
        #expect(tcp.filter { $0.hasSuffix("_[k]") }.count == 29)
        // A frame pointer-less leaf: two frames, still named.
        #expect(stacks.contains(["NIO-SGLTN-1-#2", "static Origin.ByteRequestHead.parse(Swift.UnsafeRawBufferPointer) -> Origin.ByteRequestHead.Parsed", "swift_retain"]))
        #expect(stacks.contains { $0.last == "dispatch thunk of Swift.BinaryInteger.init<A where A1: Swift.BinaryInteger>(A1) -> A@plt" })
        // The transcode: the main thread from _start into FFmpeg, x264's threads by module.
        let ffmpeg = try #require(stacks.first { $0.last == "av_buffer_unref" })
        #expect(ffmpeg.prefix(2) == ["streamgate", "_start"])
        #expect(ffmpeg.contains { $0.hasPrefix("Media.") })
        #expect(stacks.contains { $0.contains("Media.AudioPipeline.(configure in _EF0CB2F1D8C68D88A86DB3CDC53A8FA5)(for: Swift.UnsafeMutablePointer<__C.AVFrame>) throws(Media.MediaError) -> ()") })
        #expect(stacks.contains(["streamgate", "x264_8_trellis_coefn"]))
        #expect(stacks.contains(["streamgate", "[libswscale.so.6.7.100]"]))
        #expect(stacks.contains { $0.first == "streamgate" && $0.contains("[libx264.so.164]") && $0[1] == "[unknown]" })
        #expect(stacks.contains { $0.last == "finish_task_switch.isra.0_[k]" })
        #expect(stacks.contains { $0.last == "__vdso_clock_gettime" })
        // Nothing left of addresses, offsets or mangling.
        let frames = stacks.joined()
        #expect(!frames.contains { $0.hasPrefix("$s") || $0.contains("+0x") })
        #expect(!frames.contains { $0.count >= 6 && $0.allSatisfy(\.isHexDigit) })
    }

    @Test("the folded file reads back the same, and draws well-formed widths")
    func foldedFileAndGraph() throws {
        let folded = Self.folded()
        let text = folded.text
        #expect(text.split(separator: "\n").count == folded.counts.count)
        #expect(text.split(separator: "\n").allSatisfy { $0.hasSuffix(" 1") })
        #expect(FoldedStacks.parse(text) == folded)
        let graph = FlameGraph()
        let reader = try SVGReader.read(graph.svg(folded, header: FlameGraph.Header(process: "streamgate (pid 26861)", seconds: 3, frequency: 99)))
        for frame in reader.frames {
            #expect(abs(frame.width - Double(frame.samples) / 11 * (graph.width - 20)) < 0.01, "\(frame.title)")
        }
        #expect(reader.frames.first { $0.name == "streamgate" }?.samples == 7)
        #expect(reader.headings.first == "streamgate (pid 26861): 3 s at 99 Hz, 11 samples")
    }

    @Test("self time: the leaves, most samples first")
    func topSelf() {
        let top = Self.folded().topSelf(3)
        #expect(top.count == 3)
        #expect(top.allSatisfy { $0.samples == 1 })
    }
}
