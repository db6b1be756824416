import Foundation
import TestSupport
import Testing

/// The package root, found from this file's path.
let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The `streamgate` binary SwiftPM built beside this test bundle.
let streamgateBinary: String = {
    let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [
        bundleDirectory.appendingPathComponent("streamgate").path,
        packageRoot.appendingPathComponent(".build/debug/streamgate").path,
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
}()

/// A fixed test master key (base64 of 32 bytes); never used outside tests.
let testMasterKey = Data((0..<32).map { UInt8($0 &* 7 &+ 3) }).base64EncodedString()

/// What a finished child process printed.
struct ProcessOutput {
    var status: Int32
    var stdout: String
    var stderr: String
    var stdoutData: Data
}

/// Runs a program to completion, with a time limit, capturing both outputs. The waiting happens on
/// a thread of its own (`offPool`).
func run(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
    stdin: Data? = nil, timeout: Double = 300
) async throws -> ProcessOutput {
    try await offPool { try runBlocking(executable, arguments, environment: environment, stdin: stdin, timeout: timeout) }
}

/// ``run(_:_:environment:stdin:timeout:)`` on the calling thread: only for code that already runs
/// on a thread of its own.
func runBlocking(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
    stdin: Data? = nil, timeout: Double = 300
) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let input = Pipe()
    process.standardInput = stdin == nil ? FileHandle.nullDevice : input
    try process.run()
    if let stdin {
        try input.fileHandleForWriting.write(contentsOf: stdin)
        try input.fileHandleForWriting.close()
    }
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    let collected = Collected()
    let group = DispatchGroup()
    for (handle, isOut) in [(out.fileHandleForReading, true), (err.fileHandleForReading, false)] {
        group.enter()
        DispatchQueue.global().async {
            let data = handle.readDataToEndOfFile()
            collected.set(data, isOut: isOut)
            group.leave()
        }
    }
    let deadline = DispatchTime.now() + timeout
    if group.wait(timeout: deadline) == .timedOut {
        // What it printed before it hung says where it hung.
        process.terminate()
        _ = group.wait(timeout: .now() + 5)
        let (stdoutData, stderrData) = collected.values
        throw TestFailure("""
            \(executable) \(arguments.joined(separator: " ")) timed out after \(timeout) s; \
            its output ended with: \(String(decoding: stdoutData.suffix(3000), as: UTF8.self)) \
            \(String(decoding: stderrData.suffix(3000), as: UTF8.self))
            """)
    }
    process.waitUntilExit()
    let (stdoutData, stderrData) = collected.values
    return ProcessOutput(
        status: process.terminationStatus,
        stdout: String(decoding: stdoutData, as: UTF8.self),
        stderr: String(decoding: stderrData, as: UTF8.self),
        stdoutData: stdoutData
    )
}

private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var out = Data()
    private var err = Data()

    func set(_ data: Data, isOut: Bool) {
        lock.lock(); defer { lock.unlock() }
        if isOut { out = data } else { err = data }
    }

    var values: (Data, Data) {
        lock.lock(); defer { lock.unlock() }
        return (out, err)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The environment for `streamgate` with the test master key and nothing else key-related.
func streamgateEnvironment(masterKey: String? = testMasterKey) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment.removeValue(forKey: "STREAMGATE_MASTER_KEY")
    environment.removeValue(forKey: "STREAMGATE_MASTER_KEY_FILE")
    environment.removeValue(forKey: "STREAMGATE_PREVIOUS_MASTER_KEYS")
    if let masterKey { environment["STREAMGATE_MASTER_KEY"] = masterKey }
    return environment
}

/// A temporary folder removed when the value is released.
final class TemporaryFolder {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("streamgate-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A free TCP port on loopback, from the kernel.
func freePort() throws -> Int {
    try LoopbackListener.freePort()
}

/// Runs `body` with `streamgate serve --store STORE ARGUMENTS` on a free port, with the test master
/// key and `environment`; afterwards the server is stopped, whatever `body` did.
func withServe<T>(
    store: String, port: Int? = nil, arguments: [String] = [], environment: [String: String] = [:], log: String? = nil,
    isolation: isolated (any Actor)? = #isolation, _ body: (OriginServer) async throws -> T
) async throws -> T {
    try await withOrigin(
        serving: streamgateBinary, store: store, port: port, arguments: arguments,
        environment: streamgateEnvironment().merging(environment) { $1 }, log: log, body
    )
}

/// What the tests ask a `streamgate serve` origin, with curl: a real HTTP client, not this code.
extension OriginServer {
    /// The sum of a Prometheus metric's samples at `/metrics` whose labels include `labels`.
    func metric(_ name: String, _ labels: [String: String] = [:]) async throws -> Double {
        let text = String(decoding: try await get("/metrics").body, as: UTF8.self)
        var total = 0.0
        for line in text.split(separator: "\n") where line.hasPrefix(name) && !line.hasPrefix("#") {
            let rest = line.dropFirst(name.count)
            guard rest.first == "{" || rest.first == " " else { continue }
            let labelText = rest.first == "{" ? String(rest[rest.startIndex..<(rest.firstIndex(of: "}") ?? rest.endIndex)]) : ""
            guard labels.allSatisfy({ labelText.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
            total += Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return total
    }

    /// Sends a request with curl: method, headers and an optional body; the status and body.
    func request(_ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil) async throws -> (status: Int, body: String) {
        var arguments = ["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method]
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if let body { arguments += ["--data-binary", body] }
        let output = try await run("/usr/bin/curl", arguments + [baseURL + path])
        let text = output.stdout
        guard let newline = text.lastIndex(of: "\n") else { throw TestFailure("curl printed no status") }
        return (Int(text[text.index(after: newline)...]) ?? 0, String(text[..<newline]))
    }

    /// GETs a path with a real HTTP client (curl), returning the status and body.
    func get(_ path: String) async throws -> (status: Int, body: Data) {
        let output = try await run("/usr/bin/curl", ["-s", "-o", "-", "-w", "\n%{http_code}", baseURL + path])
        var data = output.stdoutData
        guard let newline = data.lastIndex(of: UInt8(ascii: "\n")) else { throw TestFailure("curl printed no status") }
        let status = Int(String(decoding: data[(newline + 1)...], as: UTF8.self)) ?? 0
        data = data[..<newline]
        return (status, Data(data))
    }
}

func expectNothingPublished(store: String) throws {
    let manager = FileManager.default
    let published = (try? manager.contentsOfDirectory(atPath: store + "/assets")) ?? []
    #expect(published.isEmpty, "published: \(published)")
    let objects = (try? manager.contentsOfDirectory(atPath: store + "/objects")) ?? []
    #expect(objects.isEmpty, "objects: \(objects)")
    let staging = (try? manager.contentsOfDirectory(atPath: store + "/staging")) ?? []
    #expect(staging.isEmpty, "staging left behind: \(staging)")
}
