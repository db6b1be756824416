import Foundation
import Jobs
import TestSupport
import Testing

/// Tracing end to end: `streamgate serve` and `streamgate worker` exporting to a real OTLP/HTTP
/// receiver, a job made by a traced request, its webhooks, and a playback request.
@Suite("tracing", .serialized)
struct TraceTests {
    static let apiKey = "trace-test-api-key-0123456789"
    // The caller's span: the job's whole trace continues it.
    static let callerTrace = "0af7651916cd43dd8448eb211c80319c"
    static let callerSpan = "b7ad6b7169203331"

    @Test("one job's spans, from the API, the worker and its transcode child, form one tree under the caller's trace", .tags(.endToEnd))
    func oneJobOneTree() async throws {
        let folder = try TemporaryFolder()
        let receiver = try await OTLPReceiver(folder: folder.path)
        defer { receiver.stop() }
        let hooks = try WebhookReceiver()
        try await hooks.ready()
        let tracing = ["OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"]
        var jobID = ""
        var workerLog = ""
        try await withFarm { farm in
            let fixtures = packageRoot.appendingPathComponent("fixtures/good").path
            // The worker makes the store the server then serves.
            let worker = try farm.startWorker(
                "traced", environment: tracing.merging(["STREAMGATE_WEBHOOK_SECRET": "whsec-trace-0123456789abcdef"]) { $1 },
                extra: ["--webhook-allow", "127.0.0.1"]
            )
            #expect(try await eventually(within: 20) { FileManager.default.fileExists(atPath: farm.store + "/assets") })
            try await withServe(
                store: farm.store,
                arguments: ["--redis", farm.redis.urlString, "--source-root", fixtures, "--webhook-allow", "127.0.0.1", "--trace-playback", "1"],
                environment: tracing.merging(["STREAMGATE_API_KEYS": Self.apiKey]) { $1 }
            ) { server in
                let job = #"{"source": "\#(fixtures)/basic.mp4", "profile": "fast", "asset_id": "traced", "callback_url": "\#(hooks.url)"}"#
                let (status, body) = try await server.request("POST", "/v1/jobs", headers: [
                    "Authorization": "Bearer \(Self.apiKey)", "Content-Type": "application/json",
                    "traceparent": "00-\(Self.callerTrace)-\(Self.callerSpan)-01",
                ], body: job)
                #expect(status == 202, "\(body)")
                let answer = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
                jobID = try #require(answer["job_id"] as? String)
                let record = try await farm.wait(for: jobID) { $0.state.isTerminal }
                #expect(record.state == .succeeded, "\(record.error ?? "")")

                // The webhook carries the job's trace to its receiver.
                #expect(try await eventually(within: 30) { hooks.deliveries.contains { $0.headers["streamgate-event"] == "job.succeeded" } })
                for delivery in hooks.deliveries {
                    let traceparent = try #require(delivery.headers["traceparent"], "every delivery says its trace")
                    #expect(traceparent.hasPrefix("00-\(Self.callerTrace)-"), "\(traceparent)")
                }

                // Playback: the first request misses L1 and is traced (ratio 1); the same request
                // again is answered from memory, and is not.
                #expect(try await server.get("/v/traced/master.m3u8").status == 200)
                #expect(try await server.get("/v/traced/master.m3u8").status == 200)
                worker.terminate(grace: 20)
                workerLog = farm.log("traced")
            }
        }
        // Both processes flushed their spans as they stopped.
        let spans = try receiver.spans()
        let trace = spans.filter { $0.traceID == Self.callerTrace }
        let byID = Dictionary(trace.map { ($0.spanID, $0) }, uniquingKeysWith: { first, _ in first })
        func named(_ name: String) -> [OTLPReceiver.Span] { trace.filter { $0.name == name } }
        func parent(of span: OTLPReceiver.Span) -> OTLPReceiver.Span? { byID[span.parentSpanID] }

        let request = try #require(named("/v1/jobs").first, "the API request's span: \(trace.map(\.name))")
        #expect(request.service == "streamgate-server" && request.kind == 2)
        #expect(request.parentSpanID == Self.callerSpan, "the request continues the caller's span")
        let enqueue = try #require(named("enqueue").first)
        #expect(parent(of: enqueue)?.spanID == request.spanID && enqueue.kind == 4)
        #expect(enqueue.attributes["streamgate.job.id"] == jobID)

        let attempt = try #require(named("job.attempt").first, "the worker's attempt: \(trace.map(\.name))")
        #expect(attempt.service == "streamgate-worker" && attempt.kind == 5)
        #expect(parent(of: attempt)?.spanID == enqueue.spanID, "the attempt continues the enqueue, across Redis")
        #expect(attempt.attributes["streamgate.job.outcome"] == "succeeded")

        let transcode = try #require(named("transcode").first)
        #expect(parent(of: transcode)?.spanID == attempt.spanID)
        let pid = try #require(transcode.attributes["process.pid"])
        // The child's stages: measured in the child (its own pid), recorded under its span.
        let stages = trace.filter { $0.parentSpanID == transcode.spanID }.map(\.name)
        for stage in ["probe", "decode", "seal"] { #expect(stages.contains(stage), "\(stages)") }
        #expect(stages.contains { $0.hasPrefix("encode ") }, "a stage per rung: \(stages)")
        for span in trace where span.parentSpanID == transcode.spanID {
            #expect(span.startNanoseconds >= transcode.startNanoseconds && span.endNanoseconds <= transcode.endNanoseconds + 1_000_000,
                    "\(span.name) lies within the child's life")
        }
        #expect(Int(pid) != nil)
        // The worker's log lines within the job say its trace.
        #expect(workerLog.contains("trace_id=\(Self.callerTrace)"), "\(workerLog.suffix(2000))")

        let publish = try #require(named("publish").first)
        #expect(parent(of: publish)?.spanID == attempt.spanID)
        let webhooks = trace.filter { $0.name.hasPrefix("webhook ") }
        #expect(webhooks.contains { $0.name == "webhook job.succeeded" }, "\(webhooks.map(\.name))")
        #expect(webhooks.allSatisfy { parent(of: $0)?.spanID == attempt.spanID && $0.kind == 3 })

        // One tree: every span but the request hangs from a span of the same trace.
        for span in trace where span.spanID != request.spanID {
            #expect(byID[span.parentSpanID] != nil, "\(span.name) (\(span.service)) has a parent in the trace")
        }
        #expect(Set(trace.map(\.service)) == ["streamgate-server", "streamgate-worker"])

        // The playback request that missed L1: one trace of its own, with its loads; the hit made none.
        let playback = spans.filter { $0.name == "GET /v/{asset}" }
        #expect(playback.count == 1, "\(playback.map(\.attributes))")
        if let playback = playback.first {
            #expect(playback.parentSpanID.isEmpty && playback.attributes["url.path"] == "/v/traced/master.m3u8")
            let loads = spans.filter { $0.parentSpanID == playback.spanID }.map(\.name)
            #expect(loads.contains("load version"), "\(loads)")
        }
    }
}
