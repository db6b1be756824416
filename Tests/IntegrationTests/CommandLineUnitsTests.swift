import ArgumentParser
import Foundation
import Testing

@testable import streamgate

/// Sizes and durations on the command line: what the two grammars accept and refuse, the forms help
/// prints, and that `serve`, `worker` and the gating options read them into bytes and seconds.
@Suite("command line: sizes and durations with units")
struct CommandLineUnitsTests {
    static let acceptedSizes: [(String, Int)] = [
        ("0", 0), ("268435456", 268_435_456), ("007", 7), ("9223372036854775807", Int.max),
        ("256MiB", 268_435_456), ("1GiB", 1_073_741_824), ("2TiB", 2 << 40), ("512KiB", 524_288),
        ("512K", 524_288), ("512k", 524_288), ("256M", 268_435_456), ("1G", 1 << 30), ("1T", 1 << 40),
        ("512kB", 512_000), ("512KB", 512_000), ("8GB", 8_000_000_000), ("5MB", 5_000_000), ("1TB", 1_000_000_000_000),
        ("100B", 100), ("1.5KiB", 1536), ("0.5MiB", 524_288), ("1.50GiB", 1_610_612_736), ("1.000B", 1), ("2.5kB", 2500),
        ("8388607TiB", 8_388_607 << 40),
    ]

    @Test("sizes accepted", arguments: acceptedSizes)
    func acceptsSize(text: String, bytes: Int) throws {
        #expect(try ByteCount(parsing: text).bytes == bytes)
        #expect(ByteCount(argument: text)?.bytes == bytes)
    }

    static let refusedSizes: [(String, String)] = [
        ("", "no size given; expected"),
        (" 256MiB", "contains a space"), ("256 MiB", "contains a space"), ("256MiB\n", "contains a space"), ("\t1", "contains a space"),
        ("-1", "negative"), ("-256MiB", "negative"),
        ("1.5B", "not a whole number of bytes"), ("0.1KiB", "not a whole number of bytes"), ("1.0005kB", "not a whole number of bytes"),
        ("10XB", "'XB' is not a unit of size; expected"), ("256mib", "'mib' is not a unit"), ("256Mb", "'Mb' is not a unit"),
        ("8EiB", "'EiB' is not a unit"), ("1e3", "'e3' is not a unit"), ("0x10", "'x10' is not a unit"),
        ("MiB", "not a size; expected"), ("+5", "not a size"), (".5", "not a size"), ("inf", "not a size"), ("5.", "a point needs digits"),
        ("9223372036854775808", "too large"), ("8388608TiB", "too large"), ("99999999999999999999999", "too large"),
        ("9223372036854775807.5KiB", "too large"), ("1.0000000000000000001KiB", "more than 18 decimals"),
    ]

    @Test("sizes refused, with what was given and why", arguments: refusedSizes)
    func refusesSize(text: String, reason: String) {
        #expect(ByteCount(argument: text) == nil)
        guard let error = Self.refusal({ () throws(UnitError) in _ = try ByteCount(parsing: text) }) else {
            Issue.record("'\(text)' was accepted")
            return
        }
        #expect(error.given == text)
        #expect(error.description.contains(reason), "\(error)")
        if !text.isEmpty { #expect(error.description.hasPrefix("'\(text)': "), "\(error)") }
    }

    static let acceptedDurations: [(String, Int)] = [
        ("0", 0), ("90", 90_000_000_000), ("90s", 90_000_000_000), ("1.5", 1_500_000_000), ("1.5s", 1_500_000_000),
        ("250ms", 250_000_000), ("1.5ms", 1_500_000), ("10m", 600_000_000_000), ("4h", 14_400_000_000_000),
        ("1d", 86_400_000_000_000), ("14400.0", 14_400_000_000_000), ("0.001", 1_000_000), ("0.000000001s", 1),
        ("106751d", 106_751 * 86_400_000_000_000),
    ]

    @Test("durations accepted; plain numbers are seconds", arguments: acceptedDurations)
    func acceptsDuration(text: String, nanoseconds: Int) throws {
        #expect(try DurationValue(parsing: text).nanoseconds == nanoseconds)
        #expect(DurationValue(argument: text)?.nanoseconds == nanoseconds)
    }

    static let refusedDurations: [(String, String)] = [
        ("", "no duration given; expected"), (" 90s", "contains a space"), ("90 s", "contains a space"), ("90s ", "contains a space"),
        ("-1", "negative"), ("-1s", "negative"),
        ("10M", "'M' is not a unit of time; expected"), ("10x", "'x' is not a unit of time"), ("1h30m", "'h30m' is not a unit"),
        ("1e3", "'e3' is not a unit"), ("90S", "'S' is not a unit"), ("s", "not a duration"), ("5.", "a point needs digits"),
        ("0.0000000001s", "finer than a nanosecond"), ("1.5ns", "'ns' is not a unit"),
        ("106752d", "too long"), ("9223372037", "too long"), ("99999999999999999999999", "too long"),
    ]

    @Test("durations refused, with what was given and why", arguments: refusedDurations)
    func refusesDuration(text: String, reason: String) {
        #expect(DurationValue(argument: text) == nil)
        let error = Self.refusal { () throws(UnitError) in _ = try DurationValue(parsing: text) }
        #expect(error?.given == text)
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
    }

    /// The error `parse` throws; nil when it accepts.
    static func refusal(_ parse: () throws(UnitError) -> Void) -> UnitError? {
        do throws(UnitError) {
            try parse()
            return nil
        } catch {
            return error
        }
    }

    @Test("help writes values the way a person does, and what it writes reads back exactly")
    func helpFormsRoundTrip() throws {
        let sizes: [(Int, String)] = [
            (0, "0"), (268_435_456, "256MiB"), (1 << 30, "1GiB"), (8 << 20, "8MiB"), (8 << 30, "8GiB"), (64 << 30, "64GiB"),
            (8_000_000_000, "8GB"), (50_000, "50kB"), (1536, "1536"), (1_024_000, "1000KiB"), (Int.max, String(Int.max)),
        ]
        for (bytes, text) in sizes {
            #expect(ByteCount(bytes).defaultValueDescription == text)
            #expect(try ByteCount(parsing: text).bytes == bytes)
        }
        let durations: [(Int, String)] = [
            (0, "0s"), (90_000_000_000, "90s"), (60_000_000_000, "1m"), (14_400_000_000_000, "4h"), (7 * 86_400_000_000_000, "7d"),
            (3480_000_000_000, "58m"), (1_500_000_000, "1500ms"), (1_500_000, "0.0015s"), (1, "0.000000001s"),
            (Int.max, "9223372036.854775807s"),
        ]
        for (nanoseconds, text) in durations {
            #expect(DurationValue(nanoseconds: nanoseconds).defaultValueDescription == text)
            #expect(try DurationValue(parsing: text).nanoseconds == nanoseconds)
        }
        #expect(MebibyteCount(8192).defaultValueDescription == "8GiB")
        #expect(try MebibyteCount(parsing: "8192").mebibytes == 8192)
        #expect(try MebibyteCount(parsing: "1.5GiB").mebibytes == 1536)
        #expect(throws: UnitError.self) { try MebibyteCount(parsing: "1000KiB") }
    }

    @Test("serve --l1-bytes 256MiB --l2-bytes 1GiB reaches the caches as bytes; plain numbers still mean bytes and seconds")
    func serveReadsUnits() throws {
        let serve = try Serve.parse(["--store", "/tmp/store", "--l1-bytes", "256MiB", "--l2-bytes", "1GiB"])
        #expect(serve.cache.l1Bytes.bytes == 268_435_456)
        #expect(serve.cache.l2Bytes.bytes == 1_073_741_824)
        #expect(try serve.cache.originOptions().l1Bytes == 268_435_456)
        #expect(try serve.cache.sharedOptions()?.budgetBytes == 1_073_741_824)

        let plain = try Serve.parse([
            "--store", "/tmp/store", "--l1-bytes", "268435456", "--l2-max-object-bytes", "1048576", "--l2-ttl", "600",
            "--entry-max-age", "30", "--max-upload-bytes", "1000", "--idle-timeout", "1.5", "--header-timeout", "250ms",
        ])
        #expect(try plain.cache.originOptions().l1Bytes == 268_435_456)
        #expect(try plain.cache.originOptions().entryMaxAge == 30)
        #expect(try plain.cache.sharedOptions()?.maxObjectBytes == 1 << 20)
        #expect(try plain.cache.sharedOptions()?.ttlSeconds == 600)
        #expect(plain.maxUploadBytes.bytes == 1000)
        let limits = try plain.connections.limits()
        #expect(limits.idleTimeout == .milliseconds(1500))
        #expect(limits.headerTimeout == .milliseconds(250))

        let defaults = try Serve.parse(["--store", "/tmp/store"])
        #expect(defaults.cache.l1Bytes.bytes == 256 << 20 && defaults.maxUploadBytes.bytes == 8 << 30)
        #expect(try defaults.cache.sharedOptions()?.ttlSeconds == 3600)

        // What is kept in whole seconds refuses fractions rather than round them.
        let fractional = try Serve.parse(["--store", "/tmp/store", "--l2-ttl", "1.5s", "--entry-max-age", "0.5"])
        #expect(throws: ValidationError.self) { try fractional.cache.sharedOptions() }
        #expect(throws: ValidationError.self) { try fractional.cache.originOptions() }

        #expect(throws: (any Error).self) { try Serve.parse(["--store", "/tmp/store", "--l1-bytes", "10XB"]) }
        #expect(throws: (any Error).self) { try Serve.parse(["--store", "/tmp/store", "--idle-timeout", "10M"]) }
    }

    @Test("worker options read units, and pass them on to the workers a farm starts in forms that read back the same")
    func workerOptionsRoundTrip() throws {
        let options = try WorkerOptions.parse([
            "--store", "/tmp/store", "--lease", "10s", "--job-timeout", "4h", "--memory-limit-mib", "2GiB", "--drain-timeout", "58m",
            "--max-duration", "90m", "--max-output-bytes", "64GiB",
        ])
        #expect(options.lease.seconds == 10 && options.jobTimeout.seconds == 14_400 && options.drainTimeout?.seconds == 3480)
        #expect(options.memoryLimitMib.mebibytes == 2048)
        let limits = try options.limits.limits()
        #expect(limits.maxDurationSeconds == 5400 && limits.maxOutputBytes == 64 << 30)
        let passedOn = try WorkerOptions.parse(options.arguments)
        #expect(passedOn.arguments == options.arguments)
        #expect(passedOn.lease == options.lease && passedOn.memoryLimitMib == options.memoryLimitMib)
        #expect(options.arguments.contains("2GiB") && options.arguments.contains("58m"))

        // Plain numbers, as scripts and the farm tests pass them (Python's str(float) included).
        let plain = try WorkerOptions.parse(["--store", "/tmp/store", "--lease", "2.0", "--memory-limit-mib", "150", "--max-duration", "2"])
        #expect(plain.lease.seconds == 2 && plain.memoryLimitMib.mebibytes == 150 && plain.limits.maxDuration.seconds == 2)
        #expect(throws: (any Error).self) { try WorkerOptions.parse(["--store", "s", "--memory-limit-mib", "1.5"]) }
    }

    @Test("gating durations: token lifetime and chain poll take units; the ownership TTL whole seconds")
    func gatingDurations() throws {
        let options = try GateCommandOptions.parse(["--token-lifetime", "15m", "--chain-poll", "250ms", "--ownership-ttl", "2m"])
        #expect(options.tokenLifetime.seconds == 900 && options.chainPoll.duration == .milliseconds(250))
        #expect(options.ownershipTTL.wholeSeconds == 120)
        #expect(throws: (any Error).self) { try GateCommandOptions.parse(["--ownership-ttl", "1.5s"]) }
    }

    @Test("every size and duration README.md, docs/ and deploy/ pass to these options parses")
    func documentedValuesParse() throws {
        let sizes = ["l1-bytes", "l2-bytes", "l2-max-object-bytes", "max-upload-bytes", "max-output-bytes"]
        let durations = [
            "l2-ttl", "entry-max-age", "idle-timeout", "header-timeout", "lease", "job-timeout", "drain-timeout",
            "max-duration", "token-lifetime", "ownership-ttl", "chain-poll", "redis-wait-timeout",
        ]
        let names = sizes + durations + ["memory-limit-mib"]
        var files = ["README.md", "SECURITY.md"].map { packageRoot.appendingPathComponent($0) }
        for folder in ["docs", "deploy"] {
            let root = packageRoot.appendingPathComponent(folder)
            for case let url as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)! where !url.hasDirectoryPath {
                files.append(url)
            }
        }
        // "--option value" on one line, or a YAML argument list's "- --option" then "- value".
        let pattern = try Regex(#"--(\#(names.joined(separator: "|")))(?:[ =]|\s*\n\s*-\s*)"?([0-9][^\s\]`"),;]*)"#)
        var seen = 0
        for file in files {
            guard let text = try? String(contentsOf: file, encoding: .utf8) else { continue }
            for match in text.matches(of: pattern) {
                let name = String(match.output[1].substring!), value = String(match.output[2].substring!)
                seen += 1
                let place = "\(file.lastPathComponent): --\(name) \(value)"
                if sizes.contains(name) {
                    #expect(ByteCount(argument: value) != nil, "\(place)")
                } else if durations.contains(name) {
                    #expect(DurationValue(argument: value) != nil, "\(place)")
                } else {
                    #expect(MebibyteCount(argument: value) != nil, "\(place)")
                }
            }
        }
        #expect(seen >= 5, "the README's examples were found")
    }

    @Test("the built binary: help prints 256MiB, and a refused value says what was given and what is expected")
    func builtBinary() async throws {
        let help = try await run(streamgateBinary, ["serve", "--help"])
        #expect(help.status == 0, "\(help.stderr)")
        let text = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(text.contains("--l1-bytes <size>"), "\(help.stdout)")
        for shown in ["(default: 256MiB)", "(default: 1GiB)", "(default: 8MiB)", "(default: 8GiB)", "(default: 1h)", "(default: 1m)", "(default: 10s)"] {
            #expect(text.contains(shown), "\(shown) in \(help.stdout)")
        }
        #expect(!text.contains("268435456 ") && !text.contains("1073741824"), "\(help.stdout)")

        let workerHelp = try await run(streamgateBinary, ["worker", "--help"])
        let workerText = workerHelp.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for shown in ["(default: 30s)", "(default: 4h)", "(default: 8GiB)", "(default: 12h)", "(default: 64GiB)"] {
            #expect(workerText.contains(shown), "\(shown) in \(workerHelp.stdout)")
        }

        let refused = try await run(streamgateBinary, ["serve", "--store", "/nonexistent", "--l1-bytes", "10XB"])
        #expect(refused.status == 64, "\(refused.stderr)")
        let firstLine = refused.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.contains("'10XB'") && firstLine.contains("--l1-bytes"), "\(refused.stderr)")
        #expect(firstLine.contains("'XB' is not a unit of size; expected"), "\(refused.stderr)")
    }
}
