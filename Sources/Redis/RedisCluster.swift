/// Redis Cluster's arithmetic: key slots (CRC16 of the key or of its `{hash tag}`), which argument
/// of a command is its key, the slot map, and the redirections a node answers with.
public enum RedisCluster {
    /// Slots in a cluster.
    public static let slotCount = 16384

    /// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as the cluster specification defines it.
    public static func crc16<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return crc
    }

    /// The slot of a key: only the part between the first `{` and the next `}` is hashed when that
    /// part is not empty, so every key with the same tag (`{sg}:…`) lives in one slot.
    public static func slot<Bytes: Collection<UInt8>>(of key: Bytes) -> Int {
        if let open = key.firstIndex(of: UInt8(ascii: "{")) {
            let afterOpen = key.index(after: open)
            if let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen {
                return Int(crc16(key[afterOpen..<close]) & 0x3FFF)
            }
        }
        return Int(crc16(key) & 0x3FFF)
    }

    public static func slot(of key: String) -> Int { slot(of: Array(key.utf8)) }

    /// Commands without a key: sent to any node (the seed, or the node of the last slot used).
    private static let keyless: Set<String> = [
        "PING", "ECHO", "PUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SCRIPT", "FUNCTION", "INFO",
        "CLUSTER", "CLIENT", "WAIT", "MULTI", "EXEC", "DISCARD", "SELECT", "ASKING", "AUTH", "HELLO", "FLUSHALL", "FLUSHDB",
        "DBSIZE", "KEYS", "SCAN", "TIME", "CONFIG", "COMMAND", "ROLE", "READONLY", "READWRITE", "SAVE", "BGSAVE", "LASTSAVE",
        "DEBUG", "SLOWLOG", "LATENCY", "SENTINEL", "MONITOR", "SHUTDOWN", "QUIT", "RESET", "ACL", "MODULE", "SWAPDB",
        "FAILOVER", "REPLICAOF", "SLAVEOF", "LOLWUT", "RANDOMKEY", "MEMORY",
    ]

    /// The slot a command's first key is in; nil for commands without a key.
    public static func slot(ofCommand arguments: [[UInt8]]) -> Int? {
        guard let first = arguments.first else { return nil }
        let name = String(decoding: first, as: UTF8.self).uppercased()
        let keyIndex: Int?
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            let count = arguments.count > 2 ? Int(String(decoding: arguments[2], as: UTF8.self)) ?? 0 : 0
            keyIndex = count > 0 ? 3 : nil
        case "XREAD", "XREADGROUP":
            keyIndex = arguments.firstIndex { String(decoding: $0, as: UTF8.self).uppercased() == "STREAMS" }.map { $0 + 1 }
        case "XGROUP", "XINFO", "OBJECT":
            keyIndex = 2
        default:
            keyIndex = keyless.contains(name) ? nil : 1
        }
        guard let keyIndex, keyIndex < arguments.count else { return nil }
        return slot(of: arguments[keyIndex])
    }

    /// A reply that sends a command elsewhere or asks for it again: nothing ran.
    enum Redirect: Equatable {
        /// The slot lives on another node now (`MOVED slot host:port`): update the map.
        case moved(slot: Int, RedisURL.Address)
        /// The slot is migrating and this key is on the importing node (`ASK slot host:port`):
        /// send `ASKING` and the command there, once; the map stays.
        case ask(slot: Int, RedisURL.Address)
        /// The server is a replica now or is loading its data (`READONLY`, `LOADING`,
        /// `MASTERDOWN`): find the primary again.
        case failover
        /// Try again shortly (`TRYAGAIN` during a slot migration, `CLUSTERDOWN`).
        case later

        init?(_ message: String) {
            let words = message.split(separator: " ")
            switch words.first {
            case "MOVED"?, "ASK"?:
                guard words.count >= 3, let slot = Int(words[1]), let colon = words[2].lastIndex(of: ":"),
                      let port = Int(words[2][words[2].index(after: colon)...])
                else { return nil }
                var host = String(words[2][..<colon])
                if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
                let address = RedisURL.Address(host: host, port: port)
                self = words[0] == "MOVED" ? .moved(slot: slot, address) : .ask(slot: slot, address)
            case "READONLY"?, "LOADING"?, "MASTERDOWN"?: self = .failover
            case "TRYAGAIN"?, "CLUSTERDOWN"?: self = .later
            default: return nil
            }
        }

        init?(_ error: RedisError) {
            guard case .server(let message) = error else { return nil }
            self.init(message)
        }

        init?(_ reply: RedisValue) {
            guard case .error(let message) = reply else { return nil }
            self.init(message)
        }
    }

    /// Which node serves each slot, from `CLUSTER SLOTS`.
    struct SlotMap: Sendable {
        private(set) var owners = [RedisURL.Address?](repeating: nil, count: RedisCluster.slotCount)
        /// Every node `CLUSTER SLOTS` named, primaries and replicas: who to ask for the slots again
        /// when a primary cannot be reached (one of its replicas may own its slots by now).
        private(set) var nodes: [RedisURL.Address] = []

        subscript(slot: Int) -> RedisURL.Address? {
            get { owners[slot] }
            set { owners[slot] = newValue }
        }

        /// Parses `CLUSTER SLOTS` (`[[start, end, [host, port, id…], replicas…]…]`); an empty host
        /// means the node that answered.
        init?(clusterSlots reply: RedisValue, answeredBy node: RedisURL.Address) {
            guard let ranges = reply.array, !ranges.isEmpty else { return nil }
            for range in ranges {
                guard let parts = range.array, parts.count >= 3, let start = parts[0].int, let end = parts[1].int,
                      let primary = parts[2].array, primary.count >= 2, let host = primary[0].text, let port = primary[1].int,
                      0 <= start, start <= end, end < RedisCluster.slotCount
                else { return nil }
                let address = RedisURL.Address(host: host.isEmpty || host == "?" ? node.host : host, port: Int(port))
                for slot in Int(start)...Int(end) { owners[slot] = address }
                for member in parts[2...] {
                    guard let fields = member.array, fields.count >= 2, let host = fields[0].text, let port = fields[1].int else { continue }
                    let known = RedisURL.Address(host: host.isEmpty || host == "?" ? node.host : host, port: Int(port))
                    if !nodes.contains(known) { nodes.append(known) }
                }
            }
        }

        init() {}
    }
}
