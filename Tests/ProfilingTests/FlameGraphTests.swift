import Foundation
import Testing
@testable import Profiling

@Suite("ProfilingTests: the flame graph SVG")
struct FlameGraphTests {
    let header = FlameGraph.Header(process: "streamgate serve --store /srv/store (pid 42)", seconds: 2, frequency: 499)

    @Test("a well-formed document whose frame widths are proportional to their samples")
    func widthsProportional() throws {
        let stacks = FoldedStacks.parse("""
            NIO-ELT-0-#0;main;Origin.answer;swift_retain 30
            NIO-ELT-0-#0;main;Origin.answer;Origin.L1.lookup 10
            NIO-ELT-0-#0;main;Origin.answer 5
            x264_threadpool;x264_8_encoder_encode 55
            """)
        let graph = FlameGraph()
        let reader = try SVGReader.read(graph.svg(stacks, header: header))
        let plotWidth = graph.width - 20
        #expect(reader.frames.count == 8)  // all, 2 threads, main, answer, 2 callees, the encoder
        for frame in reader.frames {
            #expect(frame.samples > 0, "\(frame.title)")
            #expect(abs(frame.width - Double(frame.samples) / 100 * plotWidth) < 0.01, "\(frame.title): \(frame.width)")
        }
        let byName = Dictionary(reader.frames.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(byName["all"]?.samples == 100)
        #expect(byName["Origin.answer"]?.samples == 45)
        #expect(byName["swift_retain"]?.title == "swift_retain (30 samples, 30.00%)")
        // Callees sit above their callers, inside their span.
        let answer = try #require(byName["Origin.answer"]), retain = try #require(byName["swift_retain"])
        let lookup = try #require(byName["Origin.L1.lookup"])
        #expect(retain.y < answer.y && lookup.y == retain.y)
        #expect(lookup.x >= answer.x && retain.x >= answer.x)
        #expect(lookup.x + lookup.width + retain.width <= answer.x + answer.width + 0.02)
        #expect(byName["all"]!.y > answer.y)
    }

    @Test("the header names the process, the duration and the samples")
    func title() throws {
        let reader = try SVGReader.read(FlameGraph().svg(FoldedStacks.parse("a;b 3\na 1\n"), header: header))
        #expect(reader.headings.first == "streamgate serve --store /srv/store (pid 42): 2 s at 499 Hz, 4 samples")
    }

    @Test("names with XML's special characters stay well-formed and read back whole")
    func hostileNames() throws {
        let names = [
            "operator<<(std::ostream&, char const*)", "\"quoted\" & 'single'", "</title><script>alert(1)</script>",
            "]]><!-- -->", "a\u{01}b\u{1F}c\u{FFFE}d", "emoji 🎬 and ü", "&&<<>>",
        ]
        var stacks = FoldedStacks()
        for (index, name) in names.enumerated() { stacks.add(["thread", name], count: index + 1) }
        let svg = FlameGraph().svg(stacks, header: FlameGraph.Header(process: "<evil & \"process\">", seconds: 1.5))
        let reader = try SVGReader.read(svg)
        let titles = Set(reader.frames.map(\.name))
        for name in names where !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0xFFFE }) {
            #expect(titles.contains(name), "\(name) missing from \(titles)")
        }
        #expect(titles.contains("a b c\u{FFFD}d"))
        #expect(reader.headings.first == "<evil & \"process\">: 1.5 s, 28 samples")
        #expect(!svg.contains("<script>"))
    }

    @Test("labels are cut to fit their frame; narrow frames have none")
    func labels() {
        let graph = FlameGraph()
        let name = "Origin.PlaybackCore.answer(request: Origin.PlaybackRequest, mode: Origin.AnswerMode) async throws -> Origin.Answer"
        #expect(graph.label(name, width: 2000) == name)
        let cut = graph.label(name, width: 120)
        #expect(cut?.hasSuffix("..") == true)
        #expect(Double(cut?.count ?? 0) * graph.fontSize * 0.59 <= 120)
        #expect(graph.label(name, width: 20) == nil)
        #expect(graph.label("🎬🎬🎬🎬🎬🎬🎬🎬🎬🎬🎬🎬", width: 60) == "🎬🎬🎬🎬🎬..")
    }

    @Test("a function keeps its color; kernel frames get another palette")
    func colors() {
        #expect(FlameGraph.color("swift_retain") == FlameGraph.color("swift_retain"))
        #expect(FlameGraph.color("swift_retain") != FlameGraph.color("swift_release"))
        let kernel = FlameGraph.color("tcp_sendmsg_[k]")
        let parts = kernel.dropFirst(4).dropLast().split(separator: ",").compactMap { Int($0) }
        #expect(parts.count == 3 && parts[0] < parts[2], "\(kernel) is blue-green")
    }

    @Test("frames too narrow to see are left out, and a budget bounds the document")
    func bounded() throws {
        var stacks = FoldedStacks()
        stacks.add(["busy", "work"], count: 1_000_000)
        for index in 0..<2_000 { stacks.add(["idle", "f\(index)", "g", "h"], count: 1) }
        let svg = FlameGraph().svg(stacks, header: header)
        let reader = try SVGReader.read(svg)
        #expect(reader.frames.count < 10, "tiny frames are dropped: \(reader.frames.count)")

        var deep = FoldedStacks()
        for index in 0..<50 { deep.add((0..<400).map { "frame\($0)" } + ["leaf\(index)"], count: 1) }
        var graph = FlameGraph()
        graph.maxFrames = 300
        let capped = try SVGReader.read(graph.svg(deep, header: header))
        #expect(capped.frames.count == 300)
        #expect(capped.headings.contains { $0.contains("left out") })
    }

    @Test("an empty profile is still a document")
    func empty() throws {
        let reader = try SVGReader.read(FlameGraph().svg(FoldedStacks(), header: header))
        #expect(reader.frames.count == 1)
        #expect(reader.headings.first?.hasSuffix("0 samples") == true)
    }

    @Test("fixed-point numbers")
    func fixed() {
        #expect(FlameGraph.fixed(12.345, 2) == "12.35" || FlameGraph.fixed(12.345, 2) == "12.34")
        #expect(FlameGraph.fixed(0.05, 2) == "0.05")
        #expect(FlameGraph.fixed(-1.5, 1) == "-1.5")
        #expect(FlameGraph.fixed(3, 0) == "3")
        #expect(FlameGraph.fixed(.nan, 2) == "0")
        #expect(FlameGraph.fixed(1e300, 2) == "9e15")
    }
}
