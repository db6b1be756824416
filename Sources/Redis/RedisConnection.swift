import CHiredis
import Foundation

/// One blocking hiredis connection. Every call blocks its thread: use it from a dedicated thread
/// (``RedisClient`` runs it on its own thread pool), never from an event loop or a Swift task.
///
/// Commands are argv arrays, never format strings, so no value is ever interpreted as a format.
/// Replies are copied into ``RedisValue`` and freed at once. After a connection-level failure the
/// connection is broken for good (``isBroken``); make a new one.
public final class RedisConnection {
    public let url: RedisURL
    /// Where this connection went: the URL's own endpoint, or the primary a sentinel named.
    public let address: String
    private let context: UnsafeMutablePointer<redisContext>
    private let defaultTimeout: Double
    public private(set) var isBroken = false

    /// Connects, authenticates and selects the database. With a `redis+sentinel://` URL the sentinels
    /// are asked for the primary first, and the server it names must say `ROLE` master.
    /// - Parameter timeout: for connecting and for each reply, seconds.
    public init(url: RedisURL, timeout: Double = 5) throws(RedisError) {
        _ = Self.ignoreBrokenPipes
        self.url = url
        defaultTimeout = timeout
        let tv = Self.timeval(seconds: timeout)
        let connected: UnsafeMutablePointer<redisContext>?
        switch url.endpoint {
        case .tcp(let host, let port):
            address = url.description
            connected = redisConnectWithTimeout(host, Int32(port), tv)
        case .unix(let path):
            address = url.description
            connected = redisConnectUnixWithTimeout(path, tv)
        case .sentinel(let sentinels, let service):
            let primary = try RedisSentinel.primary(of: service, sentinels: sentinels, timeout: timeout, url: url)
            address = "\(url.description) (primary \(primary))"
            connected = redisConnectWithTimeout(primary.host, Int32(primary.port), tv)
        }
        guard let connected else { throw .connect(endpoint: address, reason: "out of memory") }
        if connected.pointee.err != 0 {
            let reason = Self.errorString(connected)
            redisFree(connected)
            throw .connect(endpoint: address, reason: reason)
        }
        context = connected
        _ = redisSetTimeout(context, tv)
        if case .unix = url.endpoint {} else { _ = redisEnableKeepAlive(context) }
        do {
            if let password = url.password {
                _ = try send(url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
            }
            if url.database != 0 { _ = try send(["SELECT", String(url.database)]) }
        } catch {
            // A refused AUTH or SELECT means nothing was done yet: report it as a connect failure.
            throw .connect(endpoint: address, reason: error.description)
        }
        if case .sentinel(_, let service) = url.endpoint {
            // A sentinel may still name the old primary for a moment after a failover (or one that
            // came back as a replica): only a server that says it is a primary will do.
            let role = (try? send(["ROLE"]))?.array?.first?.text
            guard role == "master" else {
                throw .connect(endpoint: address, reason: "not the primary of '\(service)' (ROLE says \(role ?? "nothing")); the sentinels have not caught up yet")
            }
        }
    }

    deinit { redisFree(context) }

    /// hiredis writes with plain write(2): a server that went away would kill the process with
    /// SIGPIPE instead of failing the call with EPIPE. Ignored once, process-wide.
    private static let ignoreBrokenPipes: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    /// Sends one command and waits for its reply. An error reply throws ``RedisError/server(_:)``.
    public func send(_ arguments: [String]) throws(RedisError) -> RedisValue {
        try send(bytes: arguments.map { Array($0.utf8) })
    }

    /// Sends one command made of binary-safe arguments.
    public func send(bytes arguments: [[UInt8]]) throws(RedisError) -> RedisValue {
        let reply = try pipeline(bytes: [arguments])[0]
        if case .error(let message) = reply { throw .server(message) }
        return reply
    }

    /// Sends several commands in one write and reads their replies in order. Error replies are
    /// returned in place; a connection failure throws.
    public func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisValue] {
        try pipeline(bytes: commands.map { $0.map { Array($0.utf8) } })
    }

    public func pipeline(bytes commands: [[[UInt8]]]) throws(RedisError) -> [RedisValue] {
        guard !isBroken else { throw .connection(endpoint: address, reason: "connection already failed") }
        for arguments in commands {
            let status = Self.withArgv(arguments) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            if status != CHiredis_OK() { throw fail() }
        }
        var replies: [RedisValue] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer? = nil
            if redisGetReply(context, &raw) != CHiredis_OK() || raw == nil { throw fail() }
            let reply = raw!.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.copy(reply))
            freeReplyObject(raw)
        }
        return replies
    }

    /// Waits up to `seconds` for a reply the server pushes without a request (pub/sub messages after
    /// `SUBSCRIBE`); nil when none arrived. Replies already buffered are returned first, without
    /// waiting. A connection failure throws and breaks the connection.
    public func receive(waiting seconds: Double) throws(RedisError) -> RedisValue? {
        guard !isBroken else { throw .connection(endpoint: address, reason: "connection already failed") }
        var raw: UnsafeMutableRawPointer? = nil
        if redisGetReplyFromReader(context, &raw) != CHiredis_OK() { throw fail() }
        if raw == nil {
            var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(max(0, seconds * 1000)))
            if ready < 0, errno != EINTR { throw fail() }
            if ready <= 0 { return nil }
            if redisGetReply(context, &raw) != CHiredis_OK() || raw == nil { throw fail() }
        }
        defer { freeReplyObject(raw) }
        return Self.copy(raw!.assumingMemoryBound(to: redisReply.self))
    }

    /// Runs `body` with a longer reply timeout, for blocking commands (`XREADGROUP … BLOCK`).
    public func withReplyTimeout<T>(_ seconds: Double, _ body: () throws(RedisError) -> T) throws(RedisError) -> T {
        _ = redisSetTimeout(context, Self.timeval(seconds: seconds))
        defer { if !isBroken { _ = redisSetTimeout(context, Self.timeval(seconds: defaultTimeout)) } }
        return try body()
    }

    /// Whether the server has closed (or reset) this idle connection. A server sends nothing
    /// unasked outside pub/sub, so an idle connection that is readable holds an end of file or an
    /// error; it is marked broken.
    public var isClosedByPeer: Bool {
        guard !isBroken else { return true }
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, 0) > 0 { isBroken = true }
        return isBroken
    }

    private func fail() -> RedisError {
        isBroken = true
        return .connection(endpoint: address, reason: Self.errorString(context))
    }

    /// Marks the connection unusable: it answered as a replica or while loading, so it is no longer
    /// the primary it was made for.
    func discard() { isBroken = true }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        let text = withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "error \(context.pointee.err)" : text
    }

    private static func timeval(seconds: Double) -> Glibc.timeval {
        let whole = seconds.rounded(.down)
        return Glibc.timeval(tv_sec: Int(whole), tv_usec: Int((seconds - whole) * 1_000_000))
    }

    private static func withArgv<R>(
        _ arguments: [[UInt8]], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        // One contiguous buffer for all arguments, so argv points into memory that lives for the call.
        var storage: [UInt8] = []
        storage.reserveCapacity(arguments.reduce(0) { $0 + $1.count + 1 })
        var offsets: [Int] = []
        var lengths: [Int] = []
        for argument in arguments {
            offsets.append(storage.count)
            lengths.append(argument.count)
            storage.append(contentsOf: argument)
            storage.append(0)
        }
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(Int32(arguments.count), argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
        }
    }

    private static func copy(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let value = reply.pointee
        switch value.type {
        case CHiredis_REPLY_STRING():
            return .string(bytes(value.str, value.len))
        case CHiredis_REPLY_STATUS():
            return .status(String(decoding: bytes(value.str, value.len), as: UTF8.self))
        case CHiredis_REPLY_ERROR():
            return .error(String(decoding: bytes(value.str, value.len), as: UTF8.self))
        case CHiredis_REPLY_INTEGER():
            return .integer(value.integer)
        case CHiredis_REPLY_ARRAY():
            var elements: [RedisValue] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                if let element = value.element[index] { elements.append(copy(element)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
