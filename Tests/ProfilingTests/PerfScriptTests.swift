import Testing
@testable import Profiling

@Suite("ProfilingTests: reading perf script and folding it")
struct PerfScriptTests {
    @Test("a call-chain line: address, symbol without its offset, module", arguments: [
        ("\t    55d0c4a1b2c3 $s6Origin6answeryyF+0x1c (/srv/bin/streamgate)", "$s6Origin6answeryyF", "/srv/bin/streamgate"),
        ("\t          166d00 __strchr_evex (/usr/lib/x86_64-linux-gnu/libc.so.6)", "__strchr_evex", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
        ("\tffffffff8a2c1d30 tcp_sendmsg+0x40 ([kernel.kallsyms])", "tcp_sendmsg", "[kernel.kallsyms]"),
        ("\t               0 [unknown] ([unknown])", "[unknown]", "[unknown]"),
        ("\t 7f00 operator<<(std::ostream&, int)+0x8 (/usr/lib/libstdc++.so.6)", "operator<<(std::ostream&, int)", "/usr/lib/libstdc++.so.6"),
        ("\t 1234 main (/opt/streamgate (deleted))", "main", "/opt/streamgate (deleted)"),
        ("\t 1234 a+b+0x10", "a+b", "[unknown]"),
        ("\t 1234 keep+0xzz (/x)", "keep+0xzz", "/x"),
        ("\t 1234", "[unknown]", "[unknown]"),
    ])
    func frameLine(line: String, symbol: String, module: String) throws {
        let frame = try #require(PerfFrame.parse(Substring(line)))
        #expect(frame.symbol == symbol)
        #expect(frame.module == module)
    }

    @Test("kernel frames are told from user-space mappings")
    func kernel() {
        #expect(PerfFrame(symbol: "x", module: "[kernel.kallsyms]").isKernel)
        #expect(PerfFrame(symbol: "x", module: "[nf_conntrack]").isKernel)
        #expect(!PerfFrame(symbol: "x", module: "[vdso]").isKernel)
        #expect(!PerfFrame(symbol: "x", module: "[unknown]").isKernel)
        #expect(!PerfFrame(symbol: "x", module: "/usr/lib/libc.so.6").isKernel)
    }

    @Test("the thread's name in a sample's header, in perf's formats", arguments: [
        ("streamgate 41234 ", "streamgate"),
        ("NIO-ELT-0-#1 41235/41240 87695.131906:   10101010 cpu-clock:ppp: ", "NIO-ELT-0-#1"),
        ("bash 16025 87695.131906:   10101010 cpu-clock:ppp: ", "bash"),
        ("worker 2 of 4 16025 [001] 87695.131906: 1 cycles: ", "worker 2 of 4"),
        ("x264 lookahead 77 ", "x264 lookahead"),
        ("lonely", "lonely"),
    ])
    func header(line: String, thread: String) {
        #expect(PerfScriptParser.thread(inHeader: Substring(line)) == thread)
    }

    @Test("samples fold root first, offsets and addresses gone, kernel marked, most samples first")
    func folding() {
        let script = """
            # comment lines are skipped
            streamgate 100 1.000001:   1 cpu-clock:ppp: 
            \tffffffff81000010 copy_user_enhanced_fast_string+0x10 ([kernel.kallsyms])
            \t    7f0000001000 __libc_write+0x4 (/usr/lib/x86_64-linux-gnu/libc.so.6)
            \t    55d000001000 $s4main5helloyyF+0x21 (/srv/streamgate)
            \t    55d000000100 main+0x9 (/srv/streamgate)

            streamgate 100 1.000002:   1 cpu-clock:ppp: 
            \t    55d000001004 $s4main5helloyyF+0x25 (/srv/streamgate)
            \t    55d000000100 main+0x9 (/srv/streamgate)

            streamgate 100 1.000003:   1 cpu-clock:ppp: 
            \t    55d000001008 $s4main5helloyyF+0x29 (/srv/streamgate)
            \t    55d000000100 main+0x9 (/srv/streamgate)

            x264_threadpool 101 1.000004:   1 cpu-clock:ppp: 
            \t    7f0000009000 [unknown] (/usr/lib/x86_64-linux-gnu/libx264.so.164)
            \t               0 [unknown] ([unknown])
            """
        var folder = StackFolder()
        folder.add(perfScript: script)
        let hello = SwiftDemangler.isAvailable ? "main.hello() -> ()" : "$s4main5helloyyF"
        #expect(folder.folded.text == """
            streamgate;main;\(hello) 2
            streamgate;main;\(hello);__libc_write;copy_user_enhanced_fast_string_[k] 1
            x264_threadpool;[unknown];[libx264.so.164] 1

            """)
        #expect(folder.folded.totalSamples == 4)
        let top = folder.folded.topSelf(10)
        #expect(top.map(\.frame) == [hello, "[libx264.so.164]", "copy_user_enhanced_fast_string_[k]"])
        #expect(top.map(\.samples) == [2, 1, 1])
    }

    @Test("folded text reads back as it was written")
    func roundTrip() {
        var folder = StackFolder(includeThreads: false)
        folder.add(PerfSample(thread: "t", frames: [PerfFrame(symbol: "leaf", module: "/x"), PerfFrame(symbol: "root", module: "/x")]))
        folder.add(PerfSample(thread: "t", frames: [PerfFrame(symbol: "other", module: "/x")]))
        folder.add(PerfSample(thread: "t", frames: [PerfFrame(symbol: "other", module: "/x")]))
        #expect(folder.folded.text == "other 2\nroot;leaf 1\n")
        #expect(FoldedStacks.parse(folder.folded.text) == folder.folded)
    }

    @Test("lines arrive whole however the bytes are cut")
    func lineSplitter() {
        let text = Array("first\nsecond line\n\nlast".utf8)
        for chunk in [1, 2, 7, 100] {
            var splitter = LineSplitter()
            var lines: [String] = []
            var offset = 0
            while offset < text.count {
                splitter.feed(text[offset..<min(offset + chunk, text.count)]) { lines.append(String($0)) }
                offset += chunk
            }
            splitter.finish { lines.append(String($0)) }
            #expect(lines == ["first", "second line", "", "last"], "chunks of \(chunk)")
        }
    }
}

@Suite("ProfilingTests: Swift names")
struct DemanglerTests {
    @Test("the runtime's demangler is found and reads Swift names")
    func demangles() {
        #expect(SwiftDemangler.isAvailable)
        #expect(SwiftDemangler.demangle("$s4main5helloyyF") == "main.hello() -> ()")
        #expect(SwiftDemangler.demangle("_$sSS") == "Swift.String")
        #expect(SwiftDemangler.demangle("$s4main3fooyyYaFTY0_") == "(1) suspend resume partial function for main.foo() async -> ()")
    }

    @Test("other names, and what is not a valid Swift name, stay as they were")
    func leavesOthers() {
        for name in ["main", "__libc_write", "_ZN3foo3barEv", "x264_8_encoder_encode", ""] {
            #expect(SwiftDemangler.demangle(name) == name)
        }
        // Not Swift names after all: the runtime refuses them and the raw name is kept.
        for name in ["$s", "$sNOT-A-NAME\u{7f}", "$s9999999999999"] {
            #expect(SwiftDemangler.demangle(name) == name)
        }
        #expect(!SwiftDemangler.isMangled("_ZN3foo3barEv"))
        #expect(SwiftDemangler.isMangled("$s4main5helloyyF") && SwiftDemangler.isMangled("_T0Si"))
    }
}
