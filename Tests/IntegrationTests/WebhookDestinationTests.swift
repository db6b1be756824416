import Farm
import Foundation
import Jobs
import Logging
import TestSupport
import Testing
import Processes

/// The webhook sender against real receivers on real sockets: what it may reach, and what it never does.
@Suite("webhook destinations")
struct WebhookDestinationTests {
    static let secret = Array("whsec-test-0123456789abcdef".utf8)

    static let event = WebhookSender.Event(
        type: "job.running", jobID: "j-hooks", state: "running", assetID: nil, attempt: 1, error: nil, version: nil,
        playbackPath: nil, at: "2025-01-01T00:00:00Z"
    )

    static func sender(allowing entries: [String] = [], maxTries: Int = 3) throws -> WebhookSender {
        WebhookSender(
            secret: secret, policy: try OutboundAddressPolicy(allowing: entries), logger: Logger(label: "test.webhooks"),
            maxTries: maxTries
        )
    }

    @Test("a loopback receiver that is not allow-listed gets no request, however its address is written")
    func webhookNeverReachesLoopback() async throws {
        let receiver = try WebhookReceiver()
        try await receiver.ready()
        let sender = try Self.sender()
        for host in ["127.0.0.1", "127.1", "2130706433", "0x7f.1", "017700000001", "[::ffff:127.0.0.1]"] {
            let result = await sender.deliver(Self.event, to: "http://\(host):\(receiver.port)/hook")
            guard case .refused(let why) = result else {
                Issue.record("\(host): \(result)")
                continue
            }
            #expect(why.contains("127.0.0.1") && why.contains("loopback"), "\(host): \(why)")
        }
        #expect(receiver.deliveries.isEmpty)
    }

    @Test("a name that resolves to loopback (localhost) is refused without the allow-list")
    func webhookNeverReachesLocalhostByName() async throws {
        let receiver = try WebhookReceiver()
        try await receiver.ready()
        let result = try await Self.sender().deliver(Self.event, to: "http://localhost:\(receiver.port)/hook")
        guard case .refused(let why) = result else { Issue.record("\(result)"); return }
        #expect(why.hasPrefix("localhost resolves to") && why.contains("loopback"), "\(why)")
        #expect(receiver.deliveries.isEmpty)
    }

    @Test("an allow-listed receiver gets the webhook, signed, at the address that was checked")
    func webhookReachesAllowListedReceiver() async throws {
        let receiver = try WebhookReceiver()
        try await receiver.ready()
        let byAddress = try Self.sender(allowing: ["127.0.0.1"])
        let byBlock = try Self.sender(allowing: ["127.0.0.0/8"])
        let elsewhere = try Self.sender(allowing: ["10.0.0.0/8"])
        #expect(await byAddress.deliver(Self.event, to: receiver.url) == .delivered(tries: 1))
        // A numeric form is connected to as the address it was judged as.
        #expect(await byBlock.deliver(Self.event, to: "http://127.1:\(receiver.port)/hook") == .delivered(tries: 1))
        let deliveries = receiver.deliveries
        #expect(deliveries.count == 2)
        #expect(deliveries.allSatisfy { $0.headers["streamgate-signature"]?.hasPrefix("t=") == true })
        #expect(deliveries.last?.authority == "127.1:\(receiver.port)", "the Host header keeps the URL's host")
        // Allowing one block does not open the others.
        let refused = await elsewhere.deliver(Self.event, to: receiver.url)
        #expect(refused == .refused("127.0.0.1 is a loopback address"))
        #expect(receiver.deliveries.count == 2)
    }

    @Test("a redirect is not followed, and the delivery is not retried")
    func webhookNeverFollowsRedirects() async throws {
        let target = try WebhookReceiver()
        let redirecting = try WebhookReceiver(redirectTo: target.url)
        try await target.ready()
        try await redirecting.ready()
        let result = try await Self.sender(allowing: ["127.0.0.1"]).deliver(Self.event, to: redirecting.url)
        guard case .failed(let why, let tries) = result else { Issue.record("\(result)"); return }
        #expect(tries == 1)
        #expect(why.contains("302") && why.contains("redirects are not followed") && why.contains(target.url), "\(why)")
        #expect(redirecting.deliveries.count == 1)
        #expect(target.deliveries.isEmpty, "the redirect's target never gets a request")
    }

    @Test("a callback URL with a user name, or read differently by URL parsers, is refused")
    func webhookRefusesAmbiguousURLs() async throws {
        let receiver = try WebhookReceiver()
        try await receiver.ready()
        let sender = try Self.sender(allowing: ["127.0.0.1"])
        for url in [
            "http://user:secret@127.0.0.1:\(receiver.port)/hook", "http://%31%32%37.0.0.1:\(receiver.port)/hook",
            "http://example.com\\@127.0.0.1:\(receiver.port)/hook", "http://127.0.0.1:0/hook",
        ] {
            let result = await sender.deliver(Self.event, to: url)
            guard case .refused = result else { Issue.record("\(url): \(result)"); continue }
        }
        #expect(receiver.deliveries.isEmpty)
    }

    @Test("a worker started without --webhook-allow never calls a loopback receiver", .tags(.endToEnd))
    func workerWebhookNeverReachesLoopback() async throws {
        let receiver = try WebhookReceiver()
        try await receiver.ready()
        try await withFarm { farm in
            let worker = try ChildProcess(
                executable: streamgateBinary,
                arguments: ["worker", "--store", farm.store, "--id", "unhooked", "--profiles", packageRoot.appendingPathComponent("profiles").path],
                environment: farm.environment.merging(["STREAMGATE_WEBHOOK_SECRET": "whsec-test-0123456789abcdef"]) { $1 }
                    .filter { $0.key != "STREAMGATE_WEBHOOK_ALLOW" },
                stdout: .file(farm.folder.path + "/unhooked.log"), stderr: .file(farm.folder.path + "/unhooked.log")
            )
            defer { worker.terminate(grace: 5) }
            // The server that took the job allowed loopback; the worker did not, and the worker decides.
            let queue = JobQueue(redis: farm.queue.redis, callbackPolicy: try OutboundAddressPolicy(allowing: ["127.0.0.1"]))
            let id = try await queue.enqueue(JobSpec(kind: .noop, callbackURL: receiver.url)).jobID
            let record = try await farm.wait(for: id) { $0.state.isTerminal }
            #expect(record.state == .succeeded)
            let deadline = Date().addingTimeInterval(20)
            while !farm.log("unhooked").contains("webhook refused"), Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
            #expect(farm.log("unhooked").contains("127.0.0.1 is a loopback address"), "\(farm.log("unhooked"))")
            #expect(receiver.deliveries.isEmpty)
        }
    }
}
