import NIOConcurrencyHelpers

/// An in-process cache bounded by bytes, not entries, and resistant to scans: W-TinyLFU.
///
/// - A small **window** (1% of the budget) takes every new object, in LRU order, so a burst of new
///   objects can still hit.
/// - The **main** space is a segmented LRU: objects enter **probation** (20% of the main space) and
///   move to **protected** (80%) on their second hit; protected overflow falls back to probation.
/// - An object leaving the window enters the main space only if the frequency sketch says it was
///   asked for more often than the probation victim it would replace. One viewer scrubbing a long
///   film, or a crawler, brings many one-time objects: they stay in the window and leave it, and the
///   hot segments everyone watches stay.
///
/// Objects larger than the window compete for the main space at once. Thread-safe (one lock; every
/// operation is O(1) but for the eviction of several small objects to fit one large one).
public final class ByteCache<Value: Sendable>: Sendable {
    public struct Statistics: Sendable, Equatable {
        public var hits = 0
        public var misses = 0
        public var admissions = 0
        public var rejections = 0
        public var evictions = 0
        public var bytes = 0
        public var entries = 0
    }

    public let capacity: Int
    private let state: NIOLockedValueBox<State>

    /// - Parameters:
    ///   - capacity: the byte budget for stored values (their `cost`).
    ///   - expectedEntries: about how many objects fit (sizes the frequency sketch).
    public init(capacity: Int, expectedEntries: Int = 4096) {
        self.capacity = max(0, capacity)
        state = NIOLockedValueBox(State(capacity: max(0, capacity), expectedEntries: expectedEntries))
    }

    /// The value for `key`, or nil; counts toward the key's frequency either way.
    /// The value for `key`, counted as a use. A miss counts too (the key's popularity decides
    /// what is admitted later) unless `countingMiss` is false: a caller that asks again, through
    /// another path, before loading.
    public func get(_ key: String, countingMiss: Bool = true) -> Value? {
        state.withLockedValue { state in
            guard let slot = state.index[key] else {
                if countingMiss { state.miss(key) }
                return nil
            }
            return state.hit(key, slot: slot)
        }
    }

    /// Stores `value` with a size of `cost` bytes (replacing an older value for `key`). The cache may
    /// decline it (too large, or less popular than what it would evict).
    public func put(_ key: String, _ value: Value, cost: Int) {
        state.withLockedValue { $0.put(key, value, cost: cost) }
    }

    /// Whether `key` is cached; unlike ``get(_:)`` it does not count as a use.
    public func contains(_ key: String) -> Bool {
        state.withLockedValue { $0.index[key] != nil }
    }

    public func remove(_ key: String) {
        state.withLockedValue { $0.remove(key) }
    }

    /// Removes every key for which `matches` is true (for invalidating one asset's objects).
    public func removeAll(where matches: (String) -> Bool) {
        state.withLockedValue { state in
            for key in state.index.keys where matches(key) { state.remove(key) }
        }
    }

    public var statistics: Statistics { state.withLockedValue { $0.statistics } }

    // MARK: - State

    private enum Segment { case window, probation, protected }

    /// One number per segment, kept inline (a dictionary would hash on every link and unlink).
    private struct PerSegment {
        var window: Int
        var probation: Int
        var protected: Int

        init(_ value: Int) {
            (window, probation, protected) = (value, value, value)
        }

        subscript(segment: Segment) -> Int {
            get {
                switch segment {
                case .window: window
                case .probation: probation
                case .protected: protected
                }
            }
            set {
                switch segment {
                case .window: window = newValue
                case .probation: probation = newValue
                case .protected: protected = newValue
                }
            }
        }
    }

    private struct Node {
        var key: String
        var value: Value?
        var cost: Int
        var segment: Segment
        var previous: Int
        var next: Int
    }

    /// Doubly linked lists threaded through one array of nodes (indices, no per-node objects).
    private struct State {
        let windowCapacity: Int
        let protectedCapacity: Int
        let mainCapacity: Int
        var nodes: [Node] = []
        var free: [Int] = []
        var index: [String: Int] = [:]
        var heads = PerSegment(-1)
        var tails = PerSegment(-1)
        var sizes = PerSegment(0)
        var sketch: FrequencySketch
        var statistics = Statistics()

        init(capacity: Int, expectedEntries: Int) {
            windowCapacity = max(1, capacity / 100)
            mainCapacity = capacity - windowCapacity
            protectedCapacity = mainCapacity * 8 / 10
            sketch = FrequencySketch(expectedEntries: expectedEntries)
        }

        static func hash(_ key: String) -> UInt64 { fnv1a(key.utf8) }

        mutating func miss(_ key: String) {
            sketch.increment(Self.hash(key))
            statistics.misses += 1
        }

        /// A use of `key`, found at `slot`.
        mutating func hit(_ key: String, slot: Int) -> Value? {
            sketch.increment(Self.hash(key))
            statistics.hits += 1
            switch nodes[slot].segment {
            case .window:
                moveToFront(slot, of: .window)
            case .probation:
                // A second hit: promote, pushing protected overflow back to probation.
                unlink(slot)
                link(slot, into: .protected)
                while sizes[.protected] > protectedCapacity, case let demoted = tails[.protected], demoted >= 0, demoted != slot {
                    unlink(demoted)
                    link(demoted, into: .probation)
                }
            case .protected:
                moveToFront(slot, of: .protected)
            }
            return nodes[slot].value
        }

        mutating func put(_ key: String, _ value: Value, cost: Int) {
            if index[key] != nil { remove(key) }
            guard cost > 0, cost <= mainCapacity else {
                statistics.rejections += 1
                return
            }
            let slot = allocate(Node(key: key, value: value, cost: cost, segment: .window, previous: -1, next: -1))
            index[key] = slot
            statistics.bytes += cost
            statistics.entries += 1
            guard cost <= windowCapacity else {
                // Larger than the whole window (a long segment at a high bit rate): it competes for
                // the main space at once.
                admitOrEvict(slot)
                return
            }
            link(slot, into: .window)
            // The window's overflow competes for the main space.
            while sizes[.window] > windowCapacity, case let candidate = tails[.window], candidate >= 0 {
                unlink(candidate)
                admitOrEvict(candidate)
            }
        }

        mutating func admitOrEvict(_ candidate: Int) {
            let candidateFrequency = sketch.frequency(Self.hash(nodes[candidate].key))
            let needed = nodes[candidate].cost
            // Victims are taken from probation's tail (then protected's) until the candidate fits;
            // it is admitted only if it is more popular than every victim it would displace.
            var victims: [Int] = []
            var freed = mainCapacity - sizes[.probation] - sizes[.protected]
            var cursor = tails[.probation]
            var segment = Segment.probation
            while freed < needed {
                if cursor < 0 {
                    guard segment == .probation else { break }
                    segment = .protected
                    cursor = tails[.protected]
                    continue
                }
                victims.append(cursor)
                freed += nodes[cursor].cost
                cursor = nodes[cursor].previous
            }
            let admit = freed >= needed
                && victims.allSatisfy { sketch.frequency(Self.hash(nodes[$0].key)) < candidateFrequency }
            if admit {
                for victim in victims { evict(victim) }
                link(candidate, into: .probation)
                statistics.admissions += 1
            } else {
                evict(candidate, linked: false)
                statistics.rejections += 1
            }
        }

        mutating func remove(_ key: String) {
            guard let slot = index[key] else { return }
            unlink(slot)
            release(slot)
        }

        private mutating func evict(_ slot: Int, linked: Bool = true) {
            if linked { unlink(slot) }
            release(slot)
            statistics.evictions += 1
        }

        private mutating func release(_ slot: Int) {
            index.removeValue(forKey: nodes[slot].key)
            statistics.bytes -= nodes[slot].cost
            statistics.entries -= 1
            nodes[slot].value = nil
            nodes[slot].key = ""
            free.append(slot)
        }

        private mutating func allocate(_ node: Node) -> Int {
            if let slot = free.popLast() {
                nodes[slot] = node
                return slot
            }
            nodes.append(node)
            return nodes.count - 1
        }

        private mutating func link(_ slot: Int, into segment: Segment) {
            nodes[slot].segment = segment
            nodes[slot].previous = -1
            let head = heads[segment]
            nodes[slot].next = head
            if head >= 0 { nodes[head].previous = slot }
            heads[segment] = slot
            if tails[segment] < 0 { tails[segment] = slot }
            sizes[segment] += nodes[slot].cost
        }

        private mutating func unlink(_ slot: Int) {
            let segment = nodes[slot].segment
            let previous = nodes[slot].previous
            let next = nodes[slot].next
            if previous >= 0 { nodes[previous].next = next } else { heads[segment] = next }
            if next >= 0 { nodes[next].previous = previous } else { tails[segment] = previous }
            nodes[slot].previous = -1
            nodes[slot].next = -1
            sizes[segment] -= nodes[slot].cost
        }

        private mutating func moveToFront(_ slot: Int, of segment: Segment) {
            guard heads[segment] != slot else { return }
            unlink(slot)
            link(slot, into: segment)
        }
    }
}

/// FNV-1a of `bytes`: stable across runs (Swift's Hasher is seeded per process) and cheap on the
/// short inputs it is given (L1 keys, a playlist of a few kilobytes).
func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash
}
