import AsyncHTTPClient
import Foundation
import Jobs
import Logging
import Traces
import Tracing
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
/// A delivery is retried on a network error, a host that does not resolve, a timeout, 408, 429 or 5xx
/// (1 s, 2 s, 4 s … up to 60 s, with jitter, 8 tries); any other answer ends it. Deliveries never hold up the job they report.
///
/// Webhooks go only to public addresses, or to those the operator allows (`policy`): each attempt
/// resolves the host once, judges every address, and connects to the one judged
/// (``WebhookDestination``). Redirects are never followed; a 3xx ends the delivery.
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

        public init(
            type: String, jobID: String, state: String, assetID: String? = nil, attempt: Int, error: String? = nil,
            version: String? = nil, playbackPath: String? = nil, at: String
        ) {
            self.type = type
            self.jobID = jobID
            self.state = state
            self.assetID = assetID
            self.attempt = attempt
            self.error = error
            self.version = version
            self.playbackPath = playbackPath
            self.at = at
        }
    }

    /// How a delivery ended.
    public enum DeliveryResult: Sendable, Equatable {
        case delivered(tries: Int)
        /// Never sent: no signing secret, or a destination webhooks may not go to.
        case refused(String)
        /// Sent, and not accepted: the last try's outcome.
        case failed(String, tries: Int)
    }

    private let secret: [UInt8]?
    private let policy: OutboundAddressPolicy
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

    /// - Parameters:
    ///   - secret: the signing key; without one, nothing is sent (and each skipped event is
    ///     logged), since an unsigned webhook cannot be trusted by its receiver.
    ///   - policy: where webhooks may go; public addresses only unless the operator allows more.
    public init(secret: [UInt8]?, policy: OutboundAddressPolicy = .publicOnly, logger: Logger, maxTries: Int = 8) {
        self.secret = secret
        self.policy = policy
        self.logger = logger
        self.maxTries = max(1, maxTries)
    }

    /// The signature header value for `body` at time `timestamp`.
    public static func signature(secret: [UInt8], timestamp: Int, body: [UInt8]) -> String {
        let mac = Digest.hmacSHA256(key: secret, message: Array("\(timestamp).".utf8) + body)
        return "t=\(timestamp),v1=\(Digest.hex(mac))"
    }

    /// Queues a delivery; returns at once.
    public func send(_ event: Event, to url: String) {
        // One job's events are delivered in order: each waits for the one before (delivered or given up).
        deliveries.withLockedValue { state in
            state.next += 1
            let number = state.next
            let previous = state.newest[event.jobID].flatMap { state.tasks[$0] }
            state.tasks[number] = Task {
                await previous?.value
                _ = await self.deliver(event, to: url)
                self.deliveries.withLockedValue { state in
                    state.tasks.removeValue(forKey: number)
                    if state.newest[event.jobID] == number { state.newest.removeValue(forKey: event.jobID) }
                }
            }
            state.newest[event.jobID] = number
        }
    }

    /// Delivers one event now, retrying as described above, and says how it ended (which is also
    /// logged when it is not delivered).
    public func deliver(_ event: Event, to url: String) async -> DeliveryResult {
        // In the job's trace: `send` is called inside the attempt's span, and its task inherits it.
        await Traces.span("webhook \(event.type)", ofKind: .client) { span in
            let result = await deliverNow(event, to: url)
            span?.attributes["streamgate.webhook.result"] = "\(result)"
            if case .delivered = result {} else { span?.setStatus(SpanStatus(code: .error, message: "\(result)")) }
            return result
        }
    }

    private func deliverNow(_ event: Event, to url: String) async -> DeliveryResult {
        let metadata: Logger.Metadata = ["job": "\(event.jobID)", "event": "\(event.type)"]
        guard let secret else {
            logger.error("webhook not sent: no STREAMGATE_WEBHOOK_SECRET configured", metadata: metadata)
            return .refused("no STREAMGATE_WEBHOOK_SECRET configured")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let body = try? Array(encoder.encode(event)) else { return .refused("the event cannot be encoded") }
        let delivery = UUID().uuidString.lowercased()
        for attempt in 1...maxTries {
            switch await attemptDelivery(body: body, event: event, delivery: delivery, url: url, secret: secret) {
            case .delivered:
                return .delivered(tries: attempt)
            case .refused(let why):
                logger.error("webhook refused: \(why)", metadata: metadata)
                return .refused(why)
            case .final(let why):
                logger.error("webhook not delivered", metadata: metadata.merging(["tries": "\(attempt)", "last": "\(why)"]) { $1 })
                return .failed(why, tries: attempt)
            case .retry(let why):
                guard attempt < maxTries, !Task.isCancelled else {
                    logger.error("webhook not delivered", metadata: metadata.merging(["tries": "\(attempt)", "last": "\(why)"]) { $1 })
                    return .failed(why, tries: attempt)
                }
                let delay = min(60, pow(2, Double(attempt - 1))) * Double.random(in: 0.5...1)
                try? await Task.sleep(for: .seconds(delay))
            }
        }
        return .failed("no tries", tries: 0)  // not reached: the last try returns
    }

    private enum Attempt {
        case delivered, refused(String), final(String), retry(String)
    }

    /// One try: resolve and judge the destination, then POST to the address judged, with a client
    /// of its own (its DNS override is this attempt's).
    private func attemptDelivery(body: [UInt8], event: Event, delivery: String, url: String, secret: [UInt8]) async -> Attempt {
        let destination: WebhookDestination
        do {
            destination = try await WebhookDestination.resolve(url, policy: policy)
        } catch {
            switch error {
            case .refused(let why): return .refused(why)
            case .unresolved(let why): return .retry(why)
            }
        }
        let timestamp = Int(Date().timeIntervalSince1970)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "StreamGate")
        request.headers.add(name: "StreamGate-Event", value: event.type)
        request.headers.add(name: "StreamGate-Delivery", value: delivery)
        request.headers.add(name: "StreamGate-Signature", value: Self.signature(secret: secret, timestamp: timestamp, body: body))
        request.body = .bytes(ByteBuffer(bytes: body))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: destination.clientConfiguration())
        let outcome: Attempt
        do {
            let response = try await client.execute(request, timeout: .seconds(15))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let code = Int(response.status.code)
            switch code {
            case 200..<300: outcome = .delivered
            case 300..<400:
                let location = response.headers.first(name: "Location").map { " to \($0.prefix(200))" } ?? ""
                outcome = .final("HTTP \(code) (a redirect\(location)): redirects are not followed")
            case 408, 429, 500...: outcome = .retry("HTTP \(code)")
            default: outcome = .final("HTTP \(code)")
            }
        } catch {
            outcome = .retry("\(error)")
        }
        try? await client.shutdown()
        return outcome
    }

    /// Waits up to `timeout` seconds for deliveries in flight, then cancels the rest (each attempt
    /// shuts its own client down as it ends).
    public func shutdown(timeout: Double = 10) async {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, !deliveries.withLockedValue({ $0.tasks.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(100))
        }
        for task in deliveries.withLockedValue({ Array($0.tasks.values) }) { task.cancel() }
    }
}
