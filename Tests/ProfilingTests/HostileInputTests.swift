import Foundation
import Testing
@testable import Profiling

/// Whatever perf (or a file claiming to be its output) prints, folding and drawing end, keep to
/// their limits and write a well-formed document.
@Suite("ProfilingTests: hostile input")
struct HostileInputTests {
    /// A fixed pseudo-random generator, so a failure can be replayed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Runs bytes through the whole chain the command uses: lines, samples, folding, the SVG.
    func fold(_ bytes: [UInt8], chunk: Int = 4096, limits: FoldedStacks.Limits = FoldedStacks.Limits()) throws -> FoldedStacks {
        var splitter = LineSplitter(maxLineBytes: 4096)
        var parser = PerfScriptParser(limits: PerfScriptParser.Limits(maxFrames: 64, maxNameLength: 200))
        var folder = StackFolder(limits: limits)
        var offset = 0
        while offset < bytes.count {
            splitter.feed(bytes[offset..<min(offset + chunk, bytes.count)]) { line in
                if let sample = parser.feed(line) { folder.add(sample) }
            }
            offset += chunk
        }
        splitter.finish { line in
            if let sample = parser.feed(line) { folder.add(sample) }
        }
        if let sample = parser.finish() { folder.add(sample) }
        _ = try SVGReader.read(FlameGraph().svg(folder.folded, header: FlameGraph.Header(process: "fuzz", seconds: 1)))
        return folder.folded
    }

    func check(_ folded: FoldedStacks, maxDepth: Int, maxNameLength: Int) {
        for (stack, count) in folded.counts {
            #expect(count > 0)
            #expect(!stack.contains("\n") && !stack.contains("\r"))
            let frames = stack.split(separator: ";", omittingEmptySubsequences: false)
            #expect(frames.count <= maxDepth)
            #expect(frames.allSatisfy { !$0.isEmpty && $0.count <= maxNameLength })
        }
        #expect(folded.counts.values.reduce(0, +) == folded.totalSamples)
    }

    @Test("random bytes and garbage lines", arguments: 0..<8)
    func garbage(seed: UInt64) throws {
        var random = SplitMix(state: seed)
        let alphabet = Array("\t \n\n()[];+0x:/#&<>\"'abcfz0129$sS_.-".utf8)
        var bytes: [UInt8] = []
        for _ in 0..<40_000 {
            // Half the bytes from perf's own alphabet, so some lines look nearly right.
            bytes.append(random.next() % 2 == 0 ? alphabet[Int(random.next() % UInt64(alphabet.count))] : UInt8(truncatingIfNeeded: random.next()))
        }
        let folded = try fold(bytes, chunk: 1 + Int(seed) * 97)
        check(folded, maxDepth: 66, maxNameLength: 1024)
    }

    @Test("a stack of 100,000 frames keeps its leaf side, marked truncated")
    func hugeStack() throws {
        var script = "streamgate 7 \n"
        for depth in 0..<100_000 { script += "\t \(String(depth, radix: 16)) f\(depth)+0x1 (/srv/streamgate)\n" }
        script += "\n"
        let folded = try fold(Array(script.utf8))
        #expect(folded.counts.count == 1)
        let stack = try #require(folded.counts.keys.first)
        let frames = stack.split(separator: ";")
        #expect(frames.count == 66)
        #expect(frames.prefix(2) == ["streamgate", "[truncated]"])
        #expect(frames.last == "f0")
    }

    @Test("a line without an end, and names far too long, are cut")
    func longLines() throws {
        let name = String(repeating: "n", count: 100_000)
        let script = "\(name) 1 \n\t 10 \(name) (/x)\n\n" + String(repeating: "z", count: 1_000_000)
        let folded = try fold(Array(script.utf8))
        check(folded, maxDepth: 66, maxNameLength: 200)
        #expect(folded.totalSamples == 2)
    }

    @Test("names with the folded format's and XML's special characters")
    func specialNames() throws {
        let script = "evil;thread\u{1}name 3 \n\t 10 a;b<c>&\"d\"'e (/x)\n\t 11 line\rbreak (/x)\n\n"
        let folded = try fold(Array(script.utf8))
        #expect(folded.text == "evil:thread name;line break;a:b<c>&\"d\"'e 1\n")
    }

    @Test("more distinct stacks than the limit are counted, not kept")
    func manyStacks() throws {
        var script = ""
        for index in 0..<5_000 { script += "t 1 \n\t 1 f\(index) (/x)\n\n" }
        let limits = FoldedStacks.Limits(maxStacks: 1_000, maxBytes: 1 << 20, maxDepth: 66, maxNameLength: 200)
        let folded = try fold(Array(script.utf8), limits: limits)
        #expect(folded.counts.count == 1_001)
        #expect(folded.counts[FoldedStacks.overflowFrame] == 4_000)
        #expect(folded.totalSamples == 5_000)

        let tight = FoldedStacks.Limits(maxStacks: 1_000_000, maxBytes: 10_000, maxDepth: 66, maxNameLength: 200)
        let bytesBound = try fold(Array(script.utf8), limits: tight)
        #expect(bytesBound.counts.keys.reduce(0) { $0 + $1.utf8.count } < 10_000 + FoldedStacks.overflowFrame.utf8.count)
        #expect(bytesBound.totalSamples == 5_000)
    }

    @Test("folded text that lies about its counts")
    func badFoldedText() {
        let text = """
            a;b notanumber
            a;b -5
            a;b 0
            a;b 99999999999999999999999999
            a;;;b 2
            ;;; 3
            no-count
            a;b 9223372036854775807
            a;b 9223372036854775807
            """
        let folded = FoldedStacks.parse(text)
        #expect(folded.counts["a;b"] == 2 + 2 * FoldedStacks.maxCount)
        #expect(folded.counts["[no stack]"] == 3)
        #expect(folded.totalSamples == folded.counts.values.reduce(0, +))
    }
}
