import Foundation
import Store
import Testing
@testable import Jobs

@Suite("job specs: the JSON the queue stores")
struct JobSpecTests {
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
