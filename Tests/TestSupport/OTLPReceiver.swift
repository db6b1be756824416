import Foundation

/// scripts/otlp_receiver.py on a loopback port: a real OTLP/HTTP endpoint that decodes what
/// exporters post with the OpenTelemetry protocol's own messages, and keeps every span.
public final class OTLPReceiver: @unchecked Sendable {
    /// One span as the receiver decoded it.
    public struct Span: Sendable {
        public var service: String
        public var traceID: String
        public var spanID: String
        /// Empty for a root.
        public var parentSpanID: String
        public var name: String
        /// OTLP's numbering: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
        public var kind: Int
        public var startNanoseconds: UInt64
        public var endNanoseconds: UInt64
        public var statusCode: Int
        public var attributes: [String: String]
    }

    public let port: Int
    private let process: Process
    /// Held open while the receiver should run: the receiver exits when it closes, with this
    /// object or with the test process.
    private let input = Pipe()
    private let output: String

    /// Starts the receiver; spans are kept in `folder`.
    public init(folder: String) async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let python = root + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw TusDriverError("no \(python): run scripts/python-env.sh (it installs opentelemetry-proto into .venv)")
        }
        output = folder + "/spans.jsonl"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [root + "/scripts/otlp_receiver.py", output]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        process.standardInput = input
        try process.run()
        self.process = process
        let line = try await offPool { () -> String in
            var bytes: [UInt8] = []
            while let byte = try out.fileHandleForReading.read(upToCount: 1)?.first, byte != UInt8(ascii: "\n") { bytes.append(byte) }
            return String(decoding: bytes, as: UTF8.self)
        }
        guard line.hasPrefix("listening "), let port = Int(line.dropFirst("listening ".count)) else {
            process.terminate()
            throw TusDriverError("otlp_receiver.py did not start: '\(line)'")
        }
        self.port = port
    }

    /// Stops the receiver now.
    public func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
    }

    deinit { stop() }

    /// The endpoint to give exporters (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Every span received so far.
    public func spans() throws -> [Span] {
        guard let text = try? String(contentsOfFile: output, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TusDriverError("a span line is not an object: \(line.prefix(200))")
            }
            let attributes = (object["attributes"] as? [String: Any] ?? [:]).mapValues { "\($0)" }
            let status = object["status"] as? [String: Any]
            return Span(
                service: object["service"] as? String ?? "", traceID: object["trace_id"] as? String ?? "",
                spanID: object["span_id"] as? String ?? "", parentSpanID: object["parent_span_id"] as? String ?? "",
                name: object["name"] as? String ?? "", kind: object["kind"] as? Int ?? 0,
                startNanoseconds: (object["start_ns"] as? NSNumber)?.uint64Value ?? 0, endNanoseconds: (object["end_ns"] as? NSNumber)?.uint64Value ?? 0,
                statusCode: status?["code"] as? Int ?? 0, attributes: attributes
            )
        }
    }
}
