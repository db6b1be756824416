import Foundation
import Hummingbird
import Jobs
import TestSupport
import Testing
import Vault
import Processes

/// An HTTP server in the test process that records webhook deliveries; it answers 500 to the first
/// `failFirst` requests, and 302 to `redirectTo` when given.
final class WebhookReceiver: @unchecked Sendable {
    struct Delivery {
        /// Lowercased header names.
        var headers: [String: String]
        var body: [UInt8]
        /// The Host header.
        var authority: String? = nil
    }

    let port: Int
    private let lock = NSLock()
    private var received: [Delivery] = []
    private var failuresLeft: Int
    private var listening = false
    private var task: Task<Void, Error>?

    init(failFirst: Int = 0, redirectTo: String? = nil) throws {
        port = try freePort()
        failuresLeft = failFirst
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let status: HTTPResponse.Status = self.record(Delivery(
                headers: Dictionary(request.headers.map { ($0.name.canonicalName, $0.value) }, uniquingKeysWith: { first, _ in first }),
                body: Array(buffer: body), authority: request.head.authority
            ))
            if let redirectTo { return Response(status: .found, headers: [.location: redirectTo]) }
            return Response(status: status)
        }
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { _ in self.markListening() }
        )
        task = Task { try await app.run() }
    }

    private func markListening() {
        lock.lock(); defer { lock.unlock() }
        listening = true
    }

    private var isListening: Bool {
        lock.lock(); defer { lock.unlock() }
        return listening
    }

    /// Waits until the server accepts connections.
    func ready() async throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if isListening { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("the webhook receiver did not start")
    }

    deinit { task?.cancel() }

    var url: String { "http://127.0.0.1:\(port)/hook" }

    private func record(_ delivery: Delivery) -> HTTPResponse.Status {
        lock.lock(); defer { lock.unlock() }
        received.append(delivery)
        if failuresLeft > 0 {
            failuresLeft -= 1
            return .internalServerError
        }
        return .noContent
    }

    var deliveries: [Delivery] {
        lock.lock(); defer { lock.unlock() }
        return received
    }
}

@Suite("webhooks", .serialized)
struct WebhookTests {
    @Test("state changes reach the callback URL signed; a failed delivery is retried", .tags(.endToEnd))
    func signedAndRetried() async throws {
        let secret = "whsec-test-0123456789abcdef"
        let receiver = try WebhookReceiver(failFirst: 1)
        try await withFarm { farm in
            // The receiver is on loopback: the worker and the queue must allow it explicitly.
            let worker = try ChildProcess(
                executable: streamgateBinary,
                arguments: [
                    "worker", "--store", farm.store, "--id", "hooked", "--profiles", packageRoot.appendingPathComponent("profiles").path,
                    "--webhook-allow", "127.0.0.1",
                ],
                environment: farm.environment.merging(["STREAMGATE_WEBHOOK_SECRET": secret]) { $1 },
                stdout: .file(farm.folder.path + "/hooked.log"), stderr: .file(farm.folder.path + "/hooked.log")
            )
            defer { worker.terminate(grace: 5) }
            let queue = JobQueue(redis: farm.queue.redis, callbackPolicy: try OutboundAddressPolicy(allowing: ["127.0.0.1"]))
            let id = try await queue.enqueue(JobSpec(
                source: packageRoot.appendingPathComponent("fixtures/good/basic.mp4").path, profile: "fast", assetID: "hooked",
                callbackURL: receiver.url
            )).jobID
            _ = try await farm.wait(for: id) { $0.state.isTerminal }

            // running (refused once, then retried), playable (shown while it grew) and succeeded.
            let deadline = Date().addingTimeInterval(30)
            while receiver.deliveries.count < 4, Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
            let deliveries = receiver.deliveries
            #expect(deliveries.count == 4, "\(deliveries.map { String(decoding: $0.body, as: UTF8.self) })")
            var events: [String] = []
            for delivery in deliveries {
                let header = try #require(delivery.headers["streamgate-signature"])
                let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").map { part -> (String, String) in
                    let pair = part.split(separator: "=", maxSplits: 1)
                    return (String(pair[0]), String(pair[1]))
                })
                let timestamp = try #require(parts["t"].flatMap { Int($0) })
                #expect(abs(Double(timestamp) - Date().timeIntervalSince1970) < 120)
                let expected = Digest.hex(Digest.hmacSHA256(key: Array(secret.utf8), message: Array("\(timestamp).".utf8) + delivery.body))
                #expect(parts["v1"] == expected, "the signature verifies")
                let wrongKey = Digest.hex(Digest.hmacSHA256(key: Array("another".utf8), message: Array("\(timestamp).".utf8) + delivery.body))
                #expect(parts["v1"] != wrongKey)
                let object = try #require(try JSONSerialization.jsonObject(with: Data(delivery.body)) as? [String: Any])
                #expect(object["job_id"] as? String == id)
                events.append(try #require(object["type"] as? String))
                #expect(delivery.headers["streamgate-event"] == object["type"] as? String)
            }
            #expect(events.sorted() == ["job.playable", "job.running", "job.running", "job.succeeded"], "\(events)")
            #expect(events.last == "job.succeeded", "\(events)")
            let running = deliveries.filter { $0.headers["streamgate-event"] == "job.running" }
            #expect(running.count == 2 && running[0].headers["streamgate-delivery"] == running[1].headers["streamgate-delivery"],
                    "a retry is the same delivery")
            for event in ["job.playable", "job.succeeded"] {
                let delivery = try #require(deliveries.first { $0.headers["streamgate-event"] == event })
                let body = try JSONSerialization.jsonObject(with: Data(delivery.body)) as? [String: Any]
                #expect(body?["playback_path"] as? String == "/v/hooked/master.m3u8", "\(event)")
            }
        }
    }
}
