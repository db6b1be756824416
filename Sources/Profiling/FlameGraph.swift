/// A flame graph of folded stacks as a standalone SVG: every frame a rectangle as wide as its share
/// of the samples, callees stacked on their callers from the root at the bottom, colored by a hash
/// of the name (so a function keeps its color between profiles), with its name, samples and percent
/// in a tooltip.
public struct FlameGraph: Sendable {
    /// What the title says: which process, for how long, and how often it was sampled.
    public struct Header: Sendable {
        public var process: String
        public var seconds: Double
        public var frequency: Int?

        public init(process: String, seconds: Double, frequency: Int? = nil) {
            self.process = process
            self.seconds = seconds
            self.frequency = frequency
        }
    }

    public var width = 1200.0
    public var frameHeight = 16.0
    public var fontSize = 12.0
    /// Frames narrower than this (pixels) are left out, with their callees: they could not be seen,
    /// and a profile of many tiny stacks would make a huge file.
    public var minFrameWidth = 0.1
    /// Frames drawn at most; the deepest are left out past it.
    public var maxFrames = 60_000

    private static let padding = 10.0
    private static let headerHeight = 56.0
    /// Verdana's average glyph width, as a fraction of the font size.
    private static let glyphWidth = 0.59

    public init() {}

    /// The SVG document for `stacks`.
    public func svg(_ stacks: FoldedStacks, header: Header) -> String {
        let tree = Tree(stacks)
        let plotWidth = width - 2 * Self.padding
        let total = max(tree.nodes[0].count, 1)
        var boxes: [(node: Int, x: Double, depth: Int)] = []
        var level: [(node: Int, x: Double)] = [(0, Self.padding)]
        var depth = 0
        var leftOut = false
        // Level by level, so a budget that runs out leaves out the deepest frames, not a whole side.
        while !level.isEmpty {
            var next: [(node: Int, x: Double)] = []
            for (node, x) in level {
                guard boxes.count < maxFrames else { leftOut = true; break }
                boxes.append((node, x, depth))
                var childX = x
                for child in tree.children(of: node) {
                    let childWidth = Double(tree.nodes[child].count) / Double(total) * plotWidth
                    if childWidth >= minFrameWidth { next.append((child, childX)) }
                    childX += childWidth
                }
            }
            if leftOut { break }
            level = next
            depth += 1
        }
        let levels = (boxes.last?.depth ?? 0) + 1
        let height = Self.headerHeight + Double(levels) * frameHeight + 2 * Self.padding

        var svg = """
            <?xml version="1.0" encoding="UTF-8" standalone="no"?>
            <svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="\(Self.fixed(width, 0))" height="\(Self.fixed(height, 0))" \
            viewBox="0 0 \(Self.fixed(width, 0)) \(Self.fixed(height, 0))">
            <style>text { font-family: Verdana, sans-serif; font-size: \(Self.fixed(fontSize, 1))px; fill: #000 } \
            .title { font-size: \(Self.fixed(fontSize + 5, 1))px } .note { fill: #555 } g:hover rect { stroke: #000; stroke-width: 0.5 }</style>
            <rect x="0" y="0" width="100%" height="100%" fill="#f8f8f0"/>

            """
        svg += "<text class=\"title\" x=\"\(Self.fixed(width / 2, 1))\" y=\"24\" text-anchor=\"middle\">\(Self.escape(title(header, samples: stacks.totalSamples)))</text>\n"
        let note = leftOut ? "the deepest frames are left out (over \(maxFrames) frames); " : ""
        svg += "<text class=\"note\" x=\"\(Self.fixed(width / 2, 1))\" y=\"44\" text-anchor=\"middle\">\(Self.escape(note))width is the share of samples; hover a frame for its samples</text>\n"
        for (node, x, depth) in boxes {
            let name = tree.nodes[node].name
            let count = tree.nodes[node].count
            let boxWidth = Double(count) / Double(total) * plotWidth
            let y = height - Self.padding - Double(depth + 1) * frameHeight
            svg += "<g><title>\(Self.escape(name)) (\(count) \(count == 1 ? "sample" : "samples"), \(Self.fixed(Double(count) * 100 / Double(total), 2))%)</title>"
            svg += "<rect x=\"\(Self.fixed(x, 2))\" y=\"\(Self.fixed(y, 1))\" width=\"\(Self.fixed(boxWidth, 2))\" height=\"\(Self.fixed(frameHeight - 1, 1))\" "
            svg += "fill=\"\(Self.color(name, root: node == 0))\" rx=\"2\" ry=\"2\"/>"
            if let label = label(name, width: boxWidth) {
                svg += "<text x=\"\(Self.fixed(x + 3, 2))\" y=\"\(Self.fixed(y + frameHeight - 4.5, 1))\">\(Self.escape(label))</text>"
            }
            svg += "</g>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    private func title(_ header: Header, samples: Int) -> String {
        let rate = header.frequency.map { " at \($0) Hz" } ?? ""
        let seconds = header.seconds == header.seconds.rounded() ? Self.fixed(header.seconds, 0) : Self.fixed(header.seconds, 1)
        return "\(header.process): \(seconds) s\(rate), \(samples) \(samples == 1 ? "sample" : "samples")"
    }

    /// The name cut to what fits in `width` pixels, ending in `..` when cut; nil when not even a
    /// few characters fit.
    func label(_ name: String, width: Double) -> String? {
        let fits = Int((width - 6) / (fontSize * Self.glyphWidth))
        guard fits >= 3 else { return nil }
        var characters = 0
        var end = name.startIndex
        while end < name.endIndex, characters < fits {
            name.formIndex(after: &end)
            characters += 1
        }
        if end == name.endIndex { return name }
        return String(name[..<name.index(end, offsetBy: -2)]) + ".."
    }

    /// Text for XML: the five special characters escaped, and characters XML 1.0 forbids
    /// (control characters, U+FFFE, U+FFFF) replaced, so any name makes a well-formed document.
    public static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&apos;"
            case "\t", "\n", "\r": escaped.unicodeScalars.append(scalar)
            default:
                let forbidden = scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF
                escaped.unicodeScalars.append(forbidden ? "\u{FFFD}" : scalar)
            }
        }
        return escaped
    }

    /// A warm color from a hash of the name, as flame graphs usually are; kernel frames (`_[k]`)
    /// blue-green and frames named only by their module (`[…]`) gray, so both stand out.
    static func color(_ name: String, root: Bool = false) -> String {
        if root { return "rgb(200,200,200)" }
        var hash: UInt32 = 2_166_136_261
        for byte in name.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let v1 = Double(hash & 0xff) / 255, v2 = Double((hash >> 8) & 0xff) / 255, v3 = Double((hash >> 16) & 0xff) / 255
        let (r, g, b): (Double, Double, Double)
        if name.hasSuffix("_[k]") {
            (r, g, b) = (50 + 60 * v1, 165 + 55 * v2, 165 + 55 * v3)
        } else if name.hasPrefix("[") {
            (r, g, b) = (160 + 40 * v1, 160 + 40 * v1, 170 + 40 * v1)
        } else {
            (r, g, b) = (205 + 50 * v3, 230 * v1, 55 * v2)
        }
        return "rgb(\(Int(r)),\(Int(g)),\(Int(b)))"
    }

    /// `value` with exactly `decimals` decimals (no Foundation formatting, no exponent).
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e15 else { return value < 0 ? "-9e15" : "9e15" }
        let units = Int64(scaled)
        let whole = units / Int64(scale), fraction = units % Int64(scale)
        let sign = value < 0 && units != 0 ? "-" : ""
        guard decimals > 0 else { return "\(sign)\(whole)" }
        let digits = String(fraction)
        return "\(sign)\(whole)." + String(repeating: "0", count: decimals - digits.count) + digits
    }
}

/// Folded stacks merged into one tree: a node per frame per path from the root, with the samples
/// of every stack that passes through it.
struct Tree {
    struct Node {
        var name: String
        var count: Int
        var children: [String: Int] = [:]
    }

    var nodes: [Node]

    init(_ stacks: FoldedStacks) {
        nodes = [Node(name: "all", count: 0)]
        for (stack, count) in stacks.counts {
            nodes[0].count = Self.adding(nodes[0].count, count)
            var node = 0
            for frame in stack.split(separator: ";") {
                let name = String(frame)
                if let child = nodes[node].children[name] {
                    node = child
                } else {
                    nodes.append(Node(name: name, count: 0))
                    nodes[node].children[name] = nodes.count - 1
                    node = nodes.count - 1
                }
                nodes[node].count = Self.adding(nodes[node].count, count)
            }
        }
    }

    /// Counts saturate rather than trap: the widths stay right for any realistic profile.
    private static func adding(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }

    /// A node's children in name order, so the same profile always draws the same picture.
    func children(of node: Int) -> [Int] {
        nodes[node].children.sorted { $0.key < $1.key }.map(\.value)
    }
}
