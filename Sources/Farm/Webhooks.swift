import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Vault

/// Sends a job's state changes to its `callback_url` as signed JSON, retrying with backoff.
///
/// Each POST carries:
/// - `StreamGate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the
///   receiver recomputes it over the raw body and rejects old timestamps (replay);
/// - `StreamGate-Event: job.<state>` and `StreamGate-Delivery: <unique id>` (the same on retries, so a
///   receiver can drop duplicates).
///
/// A delivery is retried on a network error, a timeout, 408, 429 or 5xx (1 s, 2 s, 4 s … up to 60 s,
/// with jitter, 8 tries); any other answer ends it. Deliveries never hold up the job they report.
public final class WebhookSender: Sendable {
    public struct Event: Sendable, Encodable {
        public var type: String
        public var jobID: String
        public var state: String
        public var assetID: String?
        public var attempt: Int
        public var error: String?
        public var version: String?
        public var playbackPath: String?
        public var at: String

        enum CodingKeys: String, CodingKey {
            case type, jobID = "job_id", state, assetID = "asset_id", attempt, error, version
            case playbackPath = "playback_path", at
        }
    }

    private let secret: [UInt8]?
    private let client: HTTPClient
    private let logger: Logger
    private let deliveries = NIOLockedValueBox(Deliveries())
    public let maxTries: Int

    /// Deliveries in flight, by number, and the newest one of each job (which the job's next
    /// delivery waits for).
    private struct Deliveries {
        var next: UInt64 = 0
        var tasks: [UInt64: Task<Void, Never>] = [:]
        var newest: [String: UInt64] = [:]
    }

    /// - Parameter secret: the signing key; without one, nothing is sent (and each skipped event is
    ///   logged), since an unsigned webhook cannot be trusted by its receiver.
    public init(secret: [UInt8]?, logger: Logger, maxTries: Int = 8) {
        self.secret = secret
        self.logger = logger
        self.maxTries = maxTries
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(timeout: .init(connect: .seconds(5), read: .seconds(10))))
    }

    /// The signature header value for `body` at time `timestamp`.
    public static func signature(secret: [UInt8], timestamp: Int, body: [UInt8]) -> String {
        let mac = Digest.hmacSHA256(key: secret, message: Array("\(timestamp).".utf8) + body)
        return "t=\(timestamp),v1=\(Digest.hex(mac))"
    }

    /// Queues a delivery; returns at once.
    public func send(_ event: Event, to url: String) {
        guard let secret else {
            logger.error("webhook not sent: no STREAMGATE_WEBHOOK_SECRET configured", metadata: ["job": "\(event.jobID)", "event": "\(event.type)"])
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let body = try? Array(encoder.encode(event)) else { return }
        let delivery = UUID().uuidString.lowercased()
        // One job's events are delivered in order: each waits for the one before (delivered or given up).
        deliveries.withLockedValue { state in
            state.next += 1
            let number = state.next
            let previous = state.newest[event.jobID].flatMap { state.tasks[$0] }
            state.tasks[number] = Task {
                await previous?.value
                await self.deliver(body: body, event: event, delivery: delivery, url: url, secret: secret)
                self.deliveries.withLockedValue { state in
                    state.tasks.removeValue(forKey: number)
                    if state.newest[event.jobID] == number { state.newest.removeValue(forKey: event.jobID) }
                }
            }
            state.newest[event.jobID] = number
        }
    }

    private func deliver(body: [UInt8], event: Event, delivery: String, url: String, secret: [UInt8]) async {
        for attempt in 1...maxTries {
            let timestamp = Int(Date().timeIntervalSince1970)
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "StreamGate")
            request.headers.add(name: "StreamGate-Event", value: event.type)
            request.headers.add(name: "StreamGate-Delivery", value: delivery)
            request.headers.add(name: "StreamGate-Signature", value: Self.signature(secret: secret, timestamp: timestamp, body: body))
            request.body = .bytes(ByteBuffer(bytes: body))
            var retry = true
            var outcome = ""
            do {
                let response = try await client.execute(request, timeout: .seconds(15))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                let code = Int(response.status.code)
                if (200..<300).contains(code) { return }
                outcome = "HTTP \(code)"
                retry = code == 408 || code == 429 || code >= 500
            } catch {
                outcome = "\(error)"
            }
            guard retry, attempt < maxTries, !Task.isCancelled else {
                logger.error("webhook not delivered", metadata: ["job": "\(event.jobID)", "event": "\(event.type)", "tries": "\(attempt)", "last": "\(outcome)"])
                return
            }
            let delay = min(60, pow(2, Double(attempt - 1))) * Double.random(in: 0.5...1)
            try? await Task.sleep(for: .seconds(delay))
        }
    }

    /// Waits up to `timeout` seconds for deliveries in flight, then stops the client.
    public func shutdown(timeout: Double = 10) async {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, !deliveries.withLockedValue({ $0.tasks.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(100))
        }
        for task in deliveries.withLockedValue({ Array($0.tasks.values) }) { task.cancel() }
        try? await client.shutdown()
    }
}
