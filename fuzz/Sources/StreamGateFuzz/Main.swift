import Foundation
import FuzzHarnesses

/// `StreamGateFuzz HARNESS [ARGUMENT…]`, or `STREAMGATE_FUZZ_HARNESS=HARNESS StreamGateFuzz …`.
///
/// Built with `-D FUZZING -sanitize=fuzzer` (fuzz/run.sh), the arguments after the harness are
/// libFuzzer's (flags, corpus folders, inputs to replay). Built plainly, as `swift build` does, the
/// arguments are files or folders whose every file is run through the harness once: a crash
/// reproduces without the fuzz build. `--list` prints each harness with its `-max_len`.
@main
enum StreamGateFuzz {
    static let variable = "STREAMGATE_FUZZ_HARNESS"

    static func main() {
        var arguments = CommandLine.arguments
        if arguments.dropFirst().first == "--list" {
            for harness in Harnesses.all { print(harness.name, harness.maxLength, harness.summary, separator: "\t") }
            return
        }
        var name = ProcessInfo.processInfo.environment[variable]
        if let first = arguments.dropFirst().first, !first.hasPrefix("-"), Harnesses.named(first) != nil {
            name = first
            arguments.remove(at: 1)
        }
        guard let name, let harness = Harnesses.named(name) else {
            let names = Harnesses.all.map(\.name).joined(separator: ", ")
            warn("usage: StreamGateFuzz HARNESS [ARGUMENT…] (or \(variable)=HARNESS); --list\nharnesses: \(names)")
            exit(2)
        }
        // libFuzzer runs itself again for -merge and -fork without our argument: the variable
        // carries the choice to those children.
        setenv(variable, name, 1)
        #if FUZZING
        exit(runLibFuzzer(harness, arguments: arguments))
        #else
        exit(replay(harness, paths: Array(arguments.dropFirst())))
        #endif
    }

    /// Runs every file under `paths` through `harness` once.
    static func replay(_ harness: Harness, paths: [String]) -> Int32 {
        var files: [String] = []
        for path in paths {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
                warn("no such file: \(path)")
                return 2
            }
            if isFolder.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.sorted().map { (path as NSString).appendingPathComponent($0) }
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            harness(Array(data))
        }
        print("\(harness.name): \(files.count) inputs, no crash")
        return 0
    }

    static func warn(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
