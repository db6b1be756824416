import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Jobs
import Logging
import NIOCore
import Origin
import Store
import Testing
import TestSupport
import Vault

/// What the console reaches the server through: browser sessions (cookie and CSRF token), the job
/// list, retries, dead letters, farms and workers, and the live job feed, over a real redis-server.
@Suite("console API: browser sessions, job list and retry, farms, live feed")
struct ConsoleAPITests {
    static let key = "console-api-key-0123456789"
    static let masterKey = try! MasterKey(bytes: (0..<32).map { UInt8($0 &+ 40) })

    static func application(_ redis: RedisFixture, store: AssetStore, alerts: PrometheusAlerts? = nil) -> (OriginApplication, JobQueue) {
        let logger = Logger(label: "test.console-api")
        let queue = JobQueue(redis: redis.client(connections: 4))
        let api = JobAPI(
            configuration: .init(apiKeys: [key], uploadsDirectory: store.root + "/uploads"),
            queue: queue, keyring: Keyring(current: masterKey), logger: logger, store: store,
            browserSessions: BrowserSessions(masterKey: masterKey), alerts: alerts
        )
        let origin = OriginRoutes(store: store, unwrapKey: { _, _, _ in [] }, logger: logger)
        return (originApplication(routes: origin, api: api, health: HealthRoutes(store: store, queue: queue, metrics: { [] }), logger: logger), queue)
    }

    static func withApplication(alerts: PrometheusAlerts? = nil, _ body: @escaping @Sendable (OriginServer, JobQueue) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-console-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try AssetStore(root: folder.path + "/store")
        try await withRedis { redis in
            let (application, queue) = application(redis, store: store, alerts: alerts)
            try await withOrigin(application) { origin in try await body(origin, queue) }
        }
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    static func signIn(_ client: OriginClient) async throws -> (cookie: String, csrf: String) {
        try await client.execute(uri: "/v1/session", method: .post, body: ByteBuffer(string: #"{"api_key":"\#(key)"}"#)) { response in
            #expect(response.status == .ok)
            let setCookie = try #require(response.headers[.setCookie])
            return (String(setCookie.split(separator: ";")[0]), try #require(json(response.body)["csrf_token"] as? String))
        }
    }

    @Test("a key buys a session cookie (HttpOnly, SameSite=Strict); a change needs its CSRF token; a tampered or ended session is refused")
    func sessions() async throws {
        try await Self.withApplication { origin, queue in
            let client = origin.client
            try await client.execute(uri: "/v1/session", method: .post, body: ByteBuffer(string: #"{"api_key":"wrong-key-0000000000"}"#)) { response in
                #expect(response.status == .unauthorized && response.headers[.setCookie] == nil)
                #expect(Self.json(response.body)["field"] as? String == "api_key")
            }
            try await client.execute(uri: "/v1/session", method: .post, body: ByteBuffer(string: "not json")) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/v1/session", method: .post, body: ByteBuffer(string: #"{"api_key":"\#(Self.key)"}"#)) { response in
                let cookie = try #require(response.headers[.setCookie])
                for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] { #expect(cookie.contains(attribute), "\(cookie)") }
                #expect(!cookie.contains("Secure"), "plain HTTP: a Secure cookie would never come back")
            }
            try await client.execute(uri: "/v1/session", method: .post, headers: [HTTPField.Name("X-Forwarded-Proto")!: "https"], body: ByteBuffer(string: #"{"api_key":"\#(Self.key)"}"#)) { response in
                #expect(response.headers[.setCookie]?.contains("Secure") == true, "behind a TLS proxy the cookie is Secure")
            }
            let (cookie, csrf) = try await Self.signIn(client)
            try await client.execute(uri: "/v1/session", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .ok && Self.json(response.body)["csrf_token"] as? String == csrf)
            }
            try await client.execute(uri: "/v1/queue", method: .get, headers: [.cookie: cookie]) { #expect($0.status == .ok) }
            let scale = ByteBuffer(string: #"{"workers": 3}"#)
            try await client.execute(uri: "/v1/farms/night", method: .put, headers: [.cookie: cookie], body: scale) { response in
                #expect(response.status == .forbidden && Self.json(response.body)["field"] as? String == "X-CSRF-Token")
            }
            try await client.execute(uri: "/v1/farms/night", method: .put, headers: [.cookie: cookie, BrowserSessions.csrfHeader: csrf + "x"], body: scale) { response in
                #expect(response.status == .forbidden)
            }
            #expect(try await queue.farm("night").desired == nil, "nothing changed without the token")
            try await client.execute(uri: "/v1/farms/night", method: .put, headers: [.cookie: cookie, BrowserSessions.csrfHeader: csrf], body: scale) { response in
                #expect(response.status == .ok && Self.json(response.body)["desired"] as? Int == 3)
            }
            // A byte changed anywhere in the cookie, or another server's cookie: no session.
            var tampered = Array(cookie.utf8)
            tampered[tampered.count - 5] = tampered[tampered.count - 5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            for bad in [String(decoding: tampered, as: UTF8.self), "streamgate_session=AQAA.AAAA", "streamgate_session=\(cookie)"] {
                try await client.execute(uri: "/v1/queue", method: .get, headers: [.cookie: bad]) { response in
                    #expect(response.status == .unauthorized && Self.json(response.body)["field"] as? String == "Cookie", "\(bad)")
                }
            }
            // An empty cookie is no session at all: the key is asked for.
            try await client.execute(uri: "/v1/queue", method: .get, headers: [.cookie: "streamgate_session="]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/session", method: .delete, headers: [.cookie: cookie]) { response in
                #expect(response.status == .noContent && response.headers[.setCookie]?.contains("Max-Age=0") == true)
            }
            // Signed out means signed out everywhere: a copy of the cookie kept from before is refused.
            try await client.execute(uri: "/v1/queue", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .unauthorized && (Self.json(response.body)["error"] as? String)?.contains("signed out") == true)
            }
            try await client.execute(uri: "/v1/session", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .unauthorized, "a signed-out session gets no CSRF token back either")
            }
            let (other, _) = try await Self.signIn(client)
            try await client.execute(uri: "/v1/queue", method: .get, headers: [.cookie: other]) { #expect($0.status == .ok, "another session stays open") }
        }
    }

    @Test("a session ends with its lifetime, with its API key's removal, and under another master key")
    func sessionLifetime() throws {
        let sessions = BrowserSessions(masterKey: Self.masterKey, lifetime: .seconds(60))
        let digest = Digest.sha256(Array(Self.key.utf8))
        let (value, expires) = try sessions.open(keyDigest: digest, now: Date(timeIntervalSince1970: 1_000_000))
        #expect(expires == 1_000_060)
        #expect(sessions.session(value, knownKeyDigests: [digest], now: Date(timeIntervalSince1970: 1_000_059)) != nil)
        #expect(sessions.session(value, knownKeyDigests: [digest], now: Date(timeIntervalSince1970: 1_000_060)) == nil, "expired")
        #expect(sessions.session(value, knownKeyDigests: [Digest.sha256(Array("another-key-0123456789".utf8))], now: Date(timeIntervalSince1970: 1_000_000)) == nil, "its key was removed")
        let other = BrowserSessions(masterKey: try MasterKey(bytes: Array(repeating: 1, count: 32)))
        #expect(other.session(value, knownKeyDigests: [digest], now: Date(timeIntervalSince1970: 1_000_000)) == nil, "another deployment's")
        #expect(sessions.isCSRFToken(sessions.csrfToken(for: value), for: value) && !sessions.isCSRFToken(nil, for: value))
        #expect(!sessions.isCSRFToken(other.csrfToken(for: value), for: value))
    }

    @Test("jobs are listed newest first, by state; a finished job is retried as a new one, a running or missing one is not")
    func jobsAndRetry() async throws {
        try await Self.withApplication { origin, queue in
            let client = origin.client
            let auth: HTTPFields = [.authorization: "Bearer \(Self.key)"]
            let first = try await queue.enqueue(JobSpec(source: "/media/a.mp4", profile: "fast", assetID: "alpha")).jobID
            let second = try await queue.enqueue(JobSpec(source: "/media/b.mp4", profile: "fast", assetID: "beta")).jobID
            _ = try await queue.cancel(first)
            try await client.execute(uri: "/v1/jobs?limit=10", method: .get, headers: auth) { response in
                let jobs = Self.json(response.body)["jobs"] as? [[String: Any]] ?? []
                #expect(jobs.compactMap { $0["id"] as? String } == [second, first], "newest first: \(jobs)")
            }
            try await client.execute(uri: "/v1/jobs?state=cancelled", method: .get, headers: auth) { response in
                let jobs = Self.json(response.body)["jobs"] as? [[String: Any]] ?? []
                #expect(jobs.compactMap { $0["id"] as? String } == [first])
            }
            for (query, field) in [("limit=0", "limit"), ("limit=501", "limit"), ("state=lost", "state")] {
                try await client.execute(uri: "/v1/jobs?\(query)", method: .get, headers: auth) { response in
                    #expect(response.status == .badRequest && Self.json(response.body)["field"] as? String == field, "\(query)")
                }
            }
            try await client.execute(uri: "/v1/jobs/\(first)/retry", method: .post, headers: auth) { response in
                #expect(response.status == .accepted)
                let again = try #require(Self.json(response.body)["job_id"] as? String)
                #expect(again != first)
                let record = try #require(try await queue.job(again))
                #expect(record.state == .queued && record.attempts == 0 && record.spec?.source == "/media/a.mp4" && record.assetID == "alpha")
            }
            try await client.execute(uri: "/v1/jobs/\(second)/retry", method: .post, headers: auth) { response in
                #expect(response.status == .conflict && (Self.json(response.body)["error"] as? String)?.contains("queued") == true)
            }
            try await client.execute(uri: "/v1/jobs/nosuchjob0000/retry", method: .post, headers: auth) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/v1/dead", method: .get, headers: auth) { response in
                #expect(response.status == .ok && (Self.json(response.body)["dead"] as? [Any])?.isEmpty == true)
            }
        }
    }

    @Test("a farm's size is set and read; a size out of range, a non-number or a bad name is refused naming the field")
    func farms() async throws {
        try await Self.withApplication { origin, queue in
            let client = origin.client
            let auth: HTTPFields = [.authorization: "Bearer \(Self.key)"]
            for body in [#"{"workers": 257}"#, #"{"workers": -1}"#, #"{"workers": true}"#, #"{"workers": "3"}"#, #"{"workers": 2.5}"#, "[]", ""] {
                try await client.execute(uri: "/v1/farms/default", method: .put, headers: auth, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .badRequest && Self.json(response.body)["field"] as? String == "workers", "\(body)")
                }
            }
            try await client.execute(uri: "/v1/farms/bad%20name", method: .put, headers: auth, body: ByteBuffer(string: #"{"workers": 1}"#)) { response in
                #expect(response.status == .badRequest && Self.json(response.body)["field"] as? String == "name")
            }
            // 0 stops a farm and 1 is one worker: neither is taken for a boolean.
            for size in [0, 1, 4] {
                try await client.execute(uri: "/v1/farms/default", method: .put, headers: auth, body: ByteBuffer(string: #"{"workers": \#(size)}"#)) { response in
                    #expect(response.status == .ok && Self.json(response.body)["desired"] as? Int == size, "\(size)")
                }
            }
            #expect(try await queue.farm("default").desired == 4)
            try await client.execute(uri: "/v1/farms", method: .get, headers: auth) { response in
                let farms = Self.json(response.body)["farms"] as? [[String: Any]] ?? []
                #expect(farms.count == 1 && farms.first?["name"] as? String == "default" && farms.first?["desired"] as? Int == 4, "\(farms)")
            }
            try await client.execute(uri: "/v1/workers", method: .get, headers: auth) { response in
                #expect(response.status == .ok && (Self.json(response.body)["workers"] as? [Any])?.isEmpty == true)
            }
        }
    }

    @Test("the live feed streams each changed job as one server-sent event, to a real HTTP client")
    func liveFeed() async throws {
        try await Self.withApplication { origin, queue in
            // curl reads the stream as a browser's EventSource would, for three seconds.
            let curl = Task {
                try await offPool {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
                    process.arguments = ["-sN", "--max-time", "3", "-H", "Authorization: Bearer \(Self.key)", "http://127.0.0.1:\(origin.port)/v1/events"]
                    let out = Pipe()
                    process.standardOutput = out
                    try process.run()
                    let data = out.fileHandleForReading.readDataToEndOfFile()
                    process.waitUntilExit()
                    return String(decoding: data, as: UTF8.self)
                }
            }
            try await Task.sleep(for: .milliseconds(800))
            let id = try await queue.enqueue(JobSpec(source: "/media/live.mp4", profile: "fast", assetID: "live")).jobID
            _ = try await queue.cancel(id)
            let stream = try await curl.value
            #expect(stream.hasPrefix("retry: 2000\n\n"), "\(stream)")
            let events = stream.components(separatedBy: "\n\n").filter { $0.hasPrefix("event: job\ndata: ") }
            let states = events.compactMap { event -> String? in
                let json = Self.json(ByteBuffer(string: String(event.dropFirst("event: job\ndata: ".count))))
                return json["id"] as? String == id ? json["state"] as? String : nil
            }
            #expect(states.first == "queued" || states.first == "cancelled", "\(stream)")
            #expect(states.last == "cancelled", "the job's changes, as they happened: \(states)")
        }
    }

    @Test("alerts: none configured is said so; an unreachable Prometheus is a 503 naming it; Prometheus's answer is read field by field")
    func alerts() async throws {
        let auth: HTTPFields = [.authorization: "Bearer \(Self.key)"]
        try await Self.withApplication { origin, _ in
            try await origin.client.execute(uri: "/v1/alerts", method: .get, headers: auth) { response in
                #expect(response.status == .ok && Self.json(response.body)["configured"] as? Bool == false)
            }
        }
        let closed = try LoopbackListener.freePort()
        try await Self.withApplication(alerts: PrometheusAlerts(baseURL: "http://127.0.0.1:\(closed)/")) { origin, _ in
            try await origin.client.execute(uri: "/v1/alerts", method: .get, headers: auth) { response in
                #expect(response.status == .serviceUnavailable)
                #expect((Self.json(response.body)["error"] as? String)?.contains("http://127.0.0.1:\(closed) cannot be reached") == true, "\(Self.json(response.body))")
            }
        }
        let answer = """
        {"status":"success","data":{"alerts":[
          {"labels":{"alertname":"B","severity":"ticket"},"state":"pending","activeAt":"2026-12-04T10:00:00Z"},
          {"labels":{"alertname":"A","severity":"page"},"annotations":{"summary":"s","runbook_url":"docs/runbooks/A.md"},"state":"firing"},
          {"labels":{"severity":"page"},"state":"firing"}, {"state":"firing"}, {"labels":{"alertname":"C"},"state":"inactive"}, 7]}}
        """
        #expect(throws: AlertsUnavailable.self) { try PrometheusAlerts.parse(Data(answer.utf8)) }
        let alerts = try PrometheusAlerts.parse(Data(answer.replacingOccurrences(of: ", 7]", with: "]").utf8))
        #expect(alerts.map(\.name) == ["A", "B"] && alerts[0].runbook == "docs/runbooks/A.md" && alerts[1].state == "pending", "firing first, nameless and inactive left out: \(alerts)")
        for bad in ["", "[]", #"{"status":"error"}"#, #"{"status":"success","data":{"alerts":{}}}"#] {
            #expect(throws: AlertsUnavailable.self, "\(bad)") { try PrometheusAlerts.parse(Data(bad.utf8)) }
        }
    }
}
