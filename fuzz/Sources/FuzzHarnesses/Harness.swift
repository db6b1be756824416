/// One fuzz target: a parser of untrusted bytes, called with whatever libFuzzer (or a corpus file)
/// hands it. A harness returns normally for every input the parser refuses or accepts correctly;
/// a bug is a trap, either the parser's own or a broken invariant (``require(_:_:)``), because
/// that is what libFuzzer records as a crash.
public struct Harness: Sendable {
    /// The name `fuzz/run.sh`, the corpus folder and the crash folder use.
    public let name: String
    /// libFuzzer's `-max_len`: the longest input worth trying (a request head, a policy, a profile…).
    public let maxLength: Int
    /// What the harness exercises, for `--list`.
    public let summary: String
    public let run: @Sendable (UnsafeRawBufferPointer) -> Void

    public init(_ name: String, maxLength: Int, _ summary: String, _ run: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
        self.name = name
        self.maxLength = maxLength
        self.summary = summary
        self.run = run
    }

    /// Runs the harness on `bytes`.
    public func callAsFunction(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { run($0) }
    }
}

/// Every harness, by name.
public enum Harnesses {
    public static let all: [Harness] = [
        HTTPHarnesses.requestHead, HTTPHarnesses.playbackTarget, HTTPHarnesses.beacon, HTTPHarnesses.browserSession, HTTPHarnesses.httpDate, HTTPHarnesses.httpRange,
        GateHarnesses.playbackToken, GateHarnesses.siwe, GateHarnesses.rfc3339, GateHarnesses.accessPolicy,
        SealedSourceHarness.harness,
        MediaHarnesses.mediaPlaylist, MediaHarnesses.multivariantPlaylist, MediaHarnesses.profile,
        JobHarnesses.jobSpec, JobHarnesses.callbackURL, JobHarnesses.childOutput, JobHarnesses.partManifest, SourceChannelHarness.harness,
        S3Harnesses.xml,
        TusHarness.harness,
    ]

    public static func named(_ name: String) -> Harness? {
        all.first { $0.name == name }
    }
}

/// A broken invariant: traps with the reason, so libFuzzer keeps the input that broke it.
func require(_ condition: @autoclosure () -> Bool, _ reason: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(reason())", file: file, line: line) }
}

extension UnsafeRawBufferPointer {
    /// The bytes as text. Invalid UTF-8 becomes U+FFFD: the parsers below take Strings, and that
    /// is still a String any caller could pass.
    var text: String { String(decoding: self, as: UTF8.self) }
}
