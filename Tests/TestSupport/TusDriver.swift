import Foundation

/// Runs scripts/tus_resume.py (tuspy through a connection-dropping proxy) with the repository's
/// .venv Python; its JSON report.
public func runTusDriver(_ arguments: [String]) async throws -> [String: Any] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    let python = root + "/.venv/bin/python"
    guard FileManager.default.isExecutableFile(atPath: python) else {
        throw TusDriverError("no \(python): run scripts/python-env.sh (it installs tuspy into .venv)")
    }
    let (status, output, errors) = try await offPool { () throws -> (Int32, Data, Data) in
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [root + "/scripts/tus_resume.py"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, output, errors)
    }
    guard status == 0, let report = try? JSONSerialization.jsonObject(with: output) as? [String: Any] else {
        throw TusDriverError("tus_resume.py exited \(status): \(String(decoding: output, as: UTF8.self))\n\(String(decoding: errors, as: UTF8.self).suffix(3000))")
    }
    return report
}

public struct TusDriverError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
