/// Folds `perf script` samples into ``FoldedStacks``, the way `stackcollapse-perf` does: the thread
/// as the root, then the call chain root first; Swift names demangled, offsets gone, kernel frames
/// marked `_[k]`, a frame perf could not name shown as its module (`[libavcodec.so.59]`).
public struct StackFolder: Sendable {
    /// Whether each stack starts with the thread's name (perf's `comm`).
    public var includeThreads: Bool
    /// Whether Swift names are demangled (with the runtime's demangler, when it is there).
    public var demangle: Bool
    public private(set) var folded: FoldedStacks
    /// Names already worked out, by module kind and symbol: demangling every sample would cost more
    /// than perf did. Cleared when full, to stay bounded.
    private var names: [String: String] = [:]
    private static let maxRememberedNames = 65_536

    public init(includeThreads: Bool = true, demangle: Bool = true, limits: FoldedStacks.Limits = FoldedStacks.Limits()) {
        self.includeThreads = includeThreads
        self.demangle = demangle
        folded = FoldedStacks(limits: limits)
    }

    /// Counts one sample.
    public mutating func add(_ sample: PerfSample) {
        var stack: [String] = []
        stack.reserveCapacity(sample.frames.count + 2)
        if includeThreads { stack.append(sample.thread) }
        // A chain cut short lost its root side: say so where the root would be.
        if sample.droppedFrames > 0 { stack.append("[truncated]") }
        for frame in sample.frames.reversed() { stack.append(name(of: frame)) }
        folded.add(stack)
    }

    /// Counts every sample of a `perf script` text.
    public mutating func add(perfScript text: String, limits: PerfScriptParser.Limits = PerfScriptParser.Limits()) {
        for sample in PerfScriptParser.samples(in: text, limits: limits) { add(sample) }
    }

    private mutating func name(of frame: PerfFrame) -> String {
        let key = (frame.isKernel ? "k" : "u") + (frame.symbol == "[unknown]" ? frame.module : frame.symbol)
        if let known = names[key] { return known }
        let name = Self.name(of: frame, demangle: demangle)
        if names.count >= Self.maxRememberedNames { names.removeAll(keepingCapacity: true) }
        names[key] = name
        return name
    }

    /// A frame's name in a folded stack.
    public static func name(of frame: PerfFrame, demangle: Bool = true) -> String {
        var name: String
        if frame.symbol == "[unknown]" || frame.symbol.isEmpty {
            let module = frame.module.split(separator: "/").last.map(String.init) ?? frame.module
            name = module.isEmpty || module == "[unknown]" ? "[unknown]" : module.hasPrefix("[") ? module : "[\(module)]"
        } else if demangle, frame.symbol.hasSuffix("@plt") {
            // A call through the PLT: perf names the stub after its target.
            name = SwiftDemangler.demangle(String(frame.symbol.dropLast(4))) + "@plt"
        } else {
            name = demangle ? SwiftDemangler.demangle(frame.symbol) : frame.symbol
        }
        if frame.isKernel { name += "_[k]" }
        return name
    }
}
