/// Call stacks folded into sample counts, in the `stackcollapse-perf` format that flame graph
/// tools read: one `root;…;leaf COUNT` a line. Bounded: past its limits new stacks are counted
/// under ``overflowFrame`` rather than kept, so no input makes it grow without end.
public struct FoldedStacks: Sendable, Equatable {
    public struct Limits: Sendable, Equatable {
        /// Distinct stacks kept.
        public var maxStacks: Int
        /// Bytes of stack text kept, all stacks together.
        public var maxBytes: Int
        /// Frames kept per stack.
        public var maxDepth: Int
        /// Characters kept of a frame's name.
        public var maxNameLength: Int

        public init(maxStacks: Int = 100_000, maxBytes: Int = 32 << 20, maxDepth: Int = 1024, maxNameLength: Int = 1024) {
            self.maxStacks = maxStacks
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
            self.maxNameLength = maxNameLength
        }
    }

    /// Where samples of stacks past the limits are counted.
    public static let overflowFrame = "[stacks past the profile's limits]"
    /// Any one count is capped here; no real profile comes near it.
    static let maxCount = 1 << 40

    public let limits: Limits
    /// Samples by stack (frames joined with `;`, root first).
    public private(set) var counts: [String: Int] = [:]
    public private(set) var totalSamples = 0
    private var storedBytes = 0

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Counts `count` samples of `frames` (root first); names are cleaned (``cleanName(_:)``).
    public mutating func add(_ frames: some Sequence<String>, count: Int = 1) {
        guard count > 0 else { return }
        var names: [String] = []
        for frame in frames {
            guard names.count < limits.maxDepth else { break }
            let name = Self.cleanName(frame, maxLength: limits.maxNameLength)
            if !name.isEmpty { names.append(name) }
        }
        add(stack: names.isEmpty ? "[no stack]" : names.joined(separator: ";"), count: count)
    }

    private mutating func add(stack: String, count: Int) {
        let count = min(count, Self.maxCount)
        totalSamples = Self.adding(totalSamples, count)
        if let known = counts[stack] {
            counts[stack] = Self.adding(known, count)
            return
        }
        let size = stack.utf8.count + 1
        guard counts.count < limits.maxStacks, storedBytes + size <= limits.maxBytes else {
            counts[Self.overflowFrame] = Self.adding(counts[Self.overflowFrame, default: 0], count)
            return
        }
        storedBytes += size
        counts[stack] = count
    }

    /// Sums stop at a quarter of `Int.max`, so no later sum of them traps.
    private static func adding(_ a: Int, _ b: Int) -> Int {
        min(a + b, Int.max / 4)
    }

    /// The stacks, most samples first (then by name, so the file is the same for the same profile).
    public var sorted: [(stack: String, count: Int)] {
        counts.map { (stack: $0.key, count: $0.value) }.sorted { $0.count != $1.count ? $0.count > $1.count : $0.stack < $1.stack }
    }

    /// The folded text: one `stack count` a line, most samples first.
    public var text: String {
        var text = ""
        for (stack, count) in sorted {
            text += stack
            text += " \(count)\n"
        }
        return text
    }

    /// The frames with the most samples of their own (as the leaf of a stack), most first.
    public func topSelf(_ limit: Int) -> [(frame: String, samples: Int)] {
        var selfSamples: [Substring: Int] = [:]
        for (stack, count) in counts {
            let leaf = stack.lastIndex(of: ";").map { stack[stack.index(after: $0)...] } ?? stack[...]
            selfSamples[leaf] = Self.adding(selfSamples[leaf, default: 0], count)
        }
        return selfSamples.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(max(0, limit)).map { (frame: String($0.key), samples: $0.value) }
    }

    /// Reads folded text (as ``text`` writes it, or any `stackcollapse` tool does). Lines that are
    /// not `stack count` with a positive count are skipped.
    public static func parse(_ text: String, limits: Limits = Limits()) -> FoldedStacks {
        var folded = FoldedStacks(limits: limits)
        for line in text.split(whereSeparator: \.isNewline) {
            guard let space = line.lastIndex(of: " "), let count = Int(line[line.index(after: space)...]), count > 0 else { continue }
            folded.add(line[..<space].split(separator: ";").lazy.map(String.init), count: count)
        }
        return folded
    }

    /// A name the folded format can carry: no `;` (the separator), no control characters (a line
    /// break would start a new stack), at most `maxLength` characters.
    public static func cleanName(_ name: String, maxLength: Int) -> String {
        let needsWork = name.utf8.contains { $0 < 0x20 || $0 == 0x7f || $0 == UInt8(ascii: ";") }
        var clean = name
        if needsWork {
            clean = String(String.UnicodeScalarView(name.unicodeScalars.lazy.map { scalar -> Unicode.Scalar in
                if scalar == ";" { return ":" }
                return scalar.value < 0x20 || scalar.value == 0x7f ? " " : scalar
            }))
        }
        clean = String(clean.drop { $0 == " " })
        while clean.last == " " { clean.removeLast() }
        if clean.count > maxLength { clean = String(clean.prefix(max(0, maxLength - 1))) + "…" }
        return clean
    }
}
