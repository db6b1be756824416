import ArgumentParser
import Foundation
import Redis
import TestSupport
import Testing

@testable import streamgate

/// `--redis-wait-replicas` and `--redis-wait-timeout`: one option group on every command that
/// enqueues or finishes jobs, validated, passed on by a farm to its workers, and reaching the
/// Redis client (a real `streamgate enqueue` against a server with and without replicas).
@Suite("command line: --redis-wait-replicas and --redis-wait-timeout")
struct RedisWaitOptionsTests {
    static let flags = ["--redis-wait-replicas", "1", "--redis-wait-timeout", "500ms"]
    static let wanted = ReplicaWait(replicas: 1, timeoutSeconds: 0.5)

    @Test("serve, dev, worker, farm, enqueue and bench-queue take them")
    func everyWritingCommand() throws {
        #expect(try Serve.parse(["--store", "/tmp/s"] + Self.flags).redisWait.replicaWait == Self.wanted)
        #expect(try Dev.parse(Self.flags).redisWait.replicaWait == Self.wanted)
        #expect(try WorkerCommand.parse(["--store", "/tmp/s"] + Self.flags).redisWait.replicaWait == Self.wanted)
        #expect(try FarmCommand.parse(["--store", "/tmp/s"] + Self.flags).redisWait.replicaWait == Self.wanted)
        #expect(try Enqueue.parse(["clip.mp4"] + Self.flags).redisWait.replicaWait == Self.wanted)
        #expect(try BenchQueue.parse(Self.flags).redisWait.replicaWait == Self.wanted)
        // Off unless asked: no wait, and 1 s when only the replicas are given.
        #expect(try Serve.parse(["--store", "/tmp/s"]).redisWait.replicaWait == ReplicaWait(replicas: 0, timeoutSeconds: 1))
        #expect(try Enqueue.parse(["clip.mp4", "--redis-wait-replicas", "2"]).redisWait.replicaWait == ReplicaWait(replicas: 2, timeoutSeconds: 1))
        #expect(try WorkerCommand.parse(["--store", "/tmp/s", "--redis-wait-timeout", "2"]).redisWait.replicaWait.timeoutSeconds == 2)
    }

    @Test("refused values name the flag and the reason", arguments: [
        (["--redis-wait-replicas=-1"], "--redis-wait-replicas must be 0 or more, got -1"),
        (["--redis-wait-timeout", "0"], "--redis-wait-timeout must be positive"),
        (["--redis-wait-timeout", "500us"], "'us' is not a unit of time"),
        (["--redis-wait-replicas", "one"], "--redis-wait-replicas"),
    ])
    func refusals(_ arguments: [String], _ reason: String) {
        do {
            _ = try StreamGate.parseAsRoot(["enqueue", "clip.mp4"] + arguments)
            Issue.record("\(arguments) was accepted")
        } catch {
            let message = RefusedValue.explain(StreamGate.fullMessage(for: error)) ?? StreamGate.fullMessage(for: error)
            #expect(message.contains(reason), "\(message)")
        }
    }

    @Test("a farm passes them to every worker it starts, in a form the worker reads back the same")
    func farmPassesThemOn() throws {
        let farm = try FarmCommand.parse(["--store", "/tmp/s", "--prefix", "tenant"] + Self.flags)
        let worker = try WorkerCommand.parse(farm.workerArguments)
        #expect(worker.redisWait.replicaWait == Self.wanted)
        #expect(worker.queueOptions.prefix == "tenant")
        // Defaults are not spelled out: a farm without them starts workers exactly as before.
        let plain = try FarmCommand.parse(["--store", "/tmp/s"])
        #expect(!plain.workerArguments.contains { $0.hasPrefix("--redis-wait") })
        #expect(try WorkerCommand.parse(plain.workerArguments).redisWait.replicaWait == ReplicaWait())
    }

    @Test("dev refuses a wait for replicas its Unix-socket redis-server can never have")
    func devRefusesReplicas() async throws {
        let folder = try TemporaryFolder()
        let output = try await run(
            streamgateBinary, ["dev", "--data", folder.path, "--no-chain", "--redis-wait-replicas", "1"],
            environment: streamgateEnvironment(), timeout: 60
        )
        #expect(output.status == 64, "\(output.stderr)")
        #expect(output.stderr.contains("--redis-wait-replicas 1: dev's redis-server has no replicas"), "\(output.stderr)")
    }

    @Test("streamgate enqueue waits for a replica: refused without one, acknowledged behind Sentinel")
    func enqueueThroughTheBinary() async throws {
        let source = packageRoot.appendingPathComponent("README.md").path
        try await withRedis { redis in
            // A lone server: WAIT 1 can only time out, and the command says so.
            let output = try await run(
                streamgateBinary, ["enqueue", source, "--redis", redis.urlString, "--redis-wait-replicas", "1", "--redis-wait-timeout", "100ms"],
                environment: streamgateEnvironment(), timeout: 60
            )
            #expect(output.status != 0)
            #expect(output.stderr.contains("write reached 0 of 1 replicas in time; not acknowledged"), "\(output.stderr)")
            let plain = try await run(streamgateBinary, ["enqueue", source, "--redis", redis.urlString], environment: streamgateEnvironment(), timeout: 60)
            #expect(plain.status == 0, "\(plain.stderr)")
        }
        try await withSentinelRedis { ha in
            let output = try await run(
                streamgateBinary, ["enqueue", source, "--redis", ha.urlString, "--redis-wait-replicas", "2", "--redis-wait-timeout", "5s"],
                environment: streamgateEnvironment(), timeout: 60
            )
            #expect(output.status == 0, "\(output.stderr)")
            #expect(output.stdout.hasPrefix("job "), "\(output.stdout)")
        }
    }
}
