/// One frame of a `perf script` call chain, as perf printed it.
public struct PerfFrame: Sendable, Equatable {
    /// The symbol without its `+0x…` offset; `[unknown]` when perf had none.
    public var symbol: String
    /// The object it was in: a path, `[kernel.kallsyms]`, a kernel module as `[name]`, `[unknown]`.
    public var module: String

    public init(symbol: String, module: String) {
        self.symbol = symbol
        self.module = module
    }

    /// Kernel code: perf names the kernel and its modules in brackets. The bracketed names that
    /// are user-space mappings are not.
    public var isKernel: Bool {
        guard module.hasPrefix("["), module.hasSuffix("]") else { return false }
        return !Self.userSpacePseudoModules.contains(module) && !module.hasPrefix("[anon")
    }

    private static let userSpacePseudoModules: Set<String> = ["[unknown]", "[vdso]", "[vsyscall]", "[heap]", "[stack]", "[vvar]", "[JIT]"]

    /// Reads one call-chain line: `ADDRESS SYMBOL[+0xOFFSET] (MODULE)`; the address and the module
    /// may be missing (they depend on `perf script -F`). Nil for a line that names nothing.
    public static func parse(_ line: Substring) -> PerfFrame? {
        var rest = line.drop { $0 == " " || $0 == "\t" }
        while let last = rest.last, last == " " || last == "\t" || last == "\r" { rest = rest.dropLast() }
        guard !rest.isEmpty else { return nil }
        if let space = rest.firstIndex(of: " "), rest[..<space].allSatisfy(\.isHexDigit) {
            rest = rest[space...].drop { $0 == " " }
        } else if rest.allSatisfy(\.isHexDigit) {
            return PerfFrame(symbol: "[unknown]", module: "[unknown]")
        }
        var module = "[unknown]"
        if rest.last == ")", let open = matchingOpenParenthesis(rest) {
            module = String(rest[rest.index(after: open)..<rest.index(before: rest.endIndex)])
            rest = rest[..<open]
            while rest.last == " " { rest = rest.dropLast() }
        }
        return PerfFrame(symbol: rest.isEmpty ? "[unknown]" : String(trimmingOffset(rest)), module: module)
    }

    /// The `(` that opens the parenthesized group ending the line, so a module path like
    /// `/opt/streamgate (deleted)` stays whole.
    private static func matchingOpenParenthesis(_ text: Substring) -> Substring.Index? {
        var depth = 0
        var index = text.endIndex
        while index > text.startIndex {
            index = text.index(before: index)
            if text[index] == ")" { depth += 1 }
            if text[index] == "(" {
                depth -= 1
                if depth == 0 { return index }
            }
        }
        return nil
    }

    /// `name+0x1c` → `name`: offsets differ sample by sample and would split one function apart.
    static func trimmingOffset(_ symbol: Substring) -> Substring {
        guard let plus = symbol.lastIndex(of: "+") else { return symbol }
        let offset = symbol[symbol.index(after: plus)...]
        guard offset.hasPrefix("0x"), offset.count > 2, offset.dropFirst(2).allSatisfy(\.isHexDigit) else { return symbol }
        return symbol[..<plus]
    }
}

/// One sample: the thread perf found running and its call chain, leaf first as perf prints it.
public struct PerfSample: Sendable, Equatable {
    public var thread: String
    public var frames: [PerfFrame]
    /// Frames past ``PerfScriptParser/Limits/maxFrames`` that were not kept (the root side).
    public var droppedFrames: Int

    public init(thread: String, frames: [PerfFrame], droppedFrames: Int = 0) {
        self.thread = thread
        self.frames = frames
        self.droppedFrames = droppedFrames
    }
}

/// Reads `perf script` output a line at a time: a header line per sample (`comm pid/tid time: …`,
/// or just `comm tid` with `-F comm,tid,ip,sym,dso`), then its call chain indented, then a blank
/// line. Anything else is skipped; nothing it reads can make it keep more than its limits.
public struct PerfScriptParser: Sendable {
    public struct Limits: Sendable {
        /// Frames kept per sample; a deeper chain keeps its leaf side.
        public var maxFrames = 1024
        /// Characters kept of a thread or symbol name.
        public var maxNameLength = 1024

        public init(maxFrames: Int = 1024, maxNameLength: Int = 1024) {
            self.maxFrames = maxFrames
            self.maxNameLength = maxNameLength
        }
    }

    public let limits: Limits
    private var current: PerfSample?

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Takes one line (without its newline); returns a sample when this line finished one.
    public mutating func feed(_ line: Substring) -> PerfSample? {
        guard let first = line.first else { return finish() }
        if first == " " || first == "\t" {
            guard current != nil, var frame = PerfFrame.parse(line) else { return nil }
            if current!.frames.count >= limits.maxFrames {
                current!.droppedFrames += 1
                return nil
            }
            frame.symbol = String(frame.symbol.prefix(limits.maxNameLength))
            frame.module = String(frame.module.prefix(limits.maxNameLength))
            current!.frames.append(frame)
            return nil
        }
        if first == "#" { return nil }
        let done = finish()
        current = PerfSample(thread: String(Self.thread(inHeader: line).prefix(limits.maxNameLength)), frames: [])
        return done
    }

    /// Ends the input: the last sample, if one was open.
    public mutating func finish() -> PerfSample? {
        defer { current = nil }
        return current
    }

    /// Every sample of a whole `perf script` text.
    public static func samples(in text: String, limits: Limits = Limits()) -> [PerfSample] {
        var parser = PerfScriptParser(limits: limits)
        var samples: [PerfSample] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let sample = parser.feed(line) { samples.append(sample) }
        }
        if let sample = parser.finish() { samples.append(sample) }
        return samples
    }

    /// The thread's name: what comes before the pid (or pid/tid). A thread name may hold spaces
    /// and digits, so the pid is the token before the time (`12.345:`) or, with no time, the last.
    static func thread(inHeader line: Substring) -> Substring {
        let tokens = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard tokens.count > 1 else { return tokens.first ?? "[unknown]" }
        func isPID(_ token: Substring) -> Bool {
            let parts = token.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count <= 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
        }
        func isTime(_ token: Substring) -> Bool {
            token.hasSuffix(":") && token.dropLast().contains(".") && token.dropLast().allSatisfy { $0 == "." || ($0.isASCII && $0.isNumber) }
        }
        func isCPU(_ token: Substring) -> Bool { token.hasPrefix("[") && token.hasSuffix("]") }
        var pidIndex: Int?
        if let time = tokens.indices.first(where: { $0 > 0 && isTime(tokens[$0]) }) {
            var candidate = time - 1
            if candidate > 0, isCPU(tokens[candidate]) { candidate -= 1 }
            if candidate > 0, isPID(tokens[candidate]) { pidIndex = candidate }
        } else if let last = tokens.indices.last(where: { $0 > 0 && isPID(tokens[$0]) }) {
            pidIndex = last
        }
        guard let pidIndex else { return tokens[0] }
        let end = tokens[pidIndex - 1].endIndex
        return line[tokens[0].startIndex..<end]
    }
}

/// Cuts a byte stream into lines as it arrives, keeping at most `maxLineBytes` of any line, so a
/// stream without newlines never grows a buffer past that.
public struct LineSplitter: Sendable {
    public let maxLineBytes: Int
    private var pending: [UInt8] = []

    public init(maxLineBytes: Int = 16 * 1024) {
        self.maxLineBytes = maxLineBytes
    }

    /// Calls `line` for every line `bytes` completes.
    public mutating func feed(_ bytes: some Collection<UInt8>, _ line: (Substring) throws -> Void) rethrows {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                try line(Substring(String(decoding: pending, as: UTF8.self)))
                pending.removeAll(keepingCapacity: true)
            } else if pending.count < maxLineBytes {
                pending.append(byte)
            }
        }
    }

    /// The last line, when the stream did not end with a newline.
    public mutating func finish(_ line: (Substring) throws -> Void) rethrows {
        if !pending.isEmpty { try line(Substring(String(decoding: pending, as: UTF8.self))) }
        pending.removeAll()
    }
}
