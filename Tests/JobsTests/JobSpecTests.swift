import Foundation
import Redis
import Store
import Testing
import Traces
@testable import Jobs

@Suite("job specs: the JSON the queue stores")
struct JobSpecTests {
    static var chunk: JobSpec {
        var spec = JobSpec(id: "j1-c3", kind: .chunk, source: "/in.mp4", assetID: "a1", keepSource: true, posterTime: 10)
        spec.parent = "j1"
        spec.chunk = 3
        spec.chunkStart = 180
        spec.chunkEnd = 240
        spec.share = "/store/staging/a1.j1.Ab12Cd"
        return spec
    }

    @Test("a chunk names its parent, its stretch and its share; a client cannot enqueue one")
    func chunkSpecs() async throws {
        try Self.chunk.validate()
        func refusal(_ change: (inout JobSpec) -> Void) -> String? {
            var spec = Self.chunk
            change(&spec)
            do { try spec.validate(); return nil } catch { return error.field }
        }
        #expect(refusal { $0.parent = nil } == "parent")
        #expect(refusal { $0.parent = "../x" } == "parent")
        #expect(refusal { $0.chunk = -1 } == "chunk")
        #expect(refusal { $0.chunkStart = .nan } == "chunk_start")
        #expect(refusal { $0.chunkEnd = 100 } == "chunk_end")
        #expect(refusal { $0.share = "" } == "share")
        #expect(refusal { $0.assetID = nil } == "asset_id")
        var last = Self.chunk
        last.chunkEnd = nil
        try last.validate()
        let id = JobQueue.chunkID(parent: String(repeating: "p", count: 64), index: 1999)
        #expect(JobID.isValid(id) && id.hasSuffix("-c1999"), "\(id)")
        #expect(JobQueue.chunkID(parent: "j1", index: 3) == "j1-c3")
        // Refused before any Redis is asked: the queue here has none.
        let queue = JobQueue(redis: RedisClient(url: try RedisURL("unix:///tmp/sg-no-such-redis.sock"), connections: 1, reconnectWindow: 0.3))
        await #expect(throws: JobError.invalidField("kind", "'chunk' jobs are made by the farm when it splits an upload")) {
            _ = try await queue.enqueue(Self.chunk)
        }
    }
    @Test("json() writes what Foundation's encoder would, key for key, and reads back as the same job", arguments: [
        JobSpec(kind: .noop),
        JobSpec(
            id: "j1", source: "/media/a \"quoted\" \\ path/\n\t\u{1}\u{1F}é🎬.mp4", profile: "fast", assetID: "asset-1",
            priority: .high, callbackURL: "https://hooks.example.com/a?b=c&d=é", idempotencyKey: "key\u{7F}\u{2028}",
            maxAttempts: 7, timeoutSeconds: 1.5, sourceEncrypted: true, keepSource: false
        ),
        JobSpec(source: "/x", timeoutSeconds: 600),
        JobSpec(source: "/x", timeoutSeconds: 1e300),
        JobSpec(source: "/x", timeoutSeconds: 5e-324),
        chunk,
        traced,
    ])
    func jsonMatchesFoundation(spec: JobSpec) throws {
        let written = spec.json()
        #expect(try JobSpec.parse(written) == spec)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let foundation = try JSONSerialization.jsonObject(with: encoder.encode(spec)) as? NSDictionary
        let ours = try JSONSerialization.jsonObject(with: Data(written.utf8)) as? NSDictionary
        #expect(ours != nil && ours == foundation, "\(written)")
        // Keys in sorted order, as Foundation's sortedKeys writes them (no value here contains `":`).
        let keys = try #require(ours?.allKeys as? [String])
        let offsets = keys.sorted().map { written.range(of: "\"\($0)\":")?.lowerBound }
        #expect(!offsets.contains(nil) && offsets == offsets.sorted { $0! < $1! })
    }

    static let traced: JobSpec = {
        var spec = JobSpec(source: "/x")
        spec.trace = TraceContext(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "vendor=a,other=b")
        return spec
    }()

    @Test("a job carries a W3C trace context; a malformed one is refused by name", arguments: [
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", true),
        ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-later", true),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-later", false),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", false),
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", false),
        ("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", false),
        ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", false),
        ("00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01", false),
        ("", false),
    ])
    func traceContext(_ traceparent: String, _ valid: Bool) throws {
        #expect(TraceContext.isValid(traceparent: traceparent) == valid)
        var spec = JobSpec(source: "/x")
        spec.traceparent = traceparent
        if valid {
            try spec.validate()
            #expect(spec.trace?.traceparent == traceparent)
        } else {
            #expect(throws: JobError.invalidField("traceparent", "must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")) { try spec.validate() }
            #expect(spec.trace == nil)
        }
        // A vendor's state that does not fit is dropped, never carried.
        #expect(TraceContext(traceparent: Self.traced.traceparent!, tracestate: String(repeating: "a", count: 513))?.tracestate == nil)
        #expect(TraceContext(traceparent: Self.traced.traceparent!, tracestate: "a=\u{7}")?.tracestate == nil)
    }

    @Test("parse names what is wrong: not an object, not JSON, a field of the wrong type")
    func parseErrors() {
        for (text, expected) in [
            ("[1]", "not a JSON object"), ("  \"text\"", "not a JSON object"), ("{not json", "not a JSON object"),
            ("", "not a JSON object"), (#"{"max_attempts":"3"}"#, "max_attempts"), (#"{"kind":"nothing"}"#, "kind"),
        ] {
            #expect {
                _ = try JobSpec.parse(text)
            } throws: { error in
                "\(error)".contains(expected)
            }
        }
    }

    @Test("random ids are 20 base-32 characters, valid, and do not repeat")
    func randomIDs() throws {
        let ids = (0..<10_000).map { _ in JobID.random() }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.utf8.count == 20 && JobID.isValid($0) })
        let assets = (0..<1_000).map { _ in AssetID.random().rawValue }
        #expect(Set(assets).count == assets.count)
        // Every character of the alphabet turns up in every position.
        for position in 0..<20 {
            #expect(Set(assets.map { Array($0.utf8)[position] }).count == 32, "position \(position)")
        }
    }
}
