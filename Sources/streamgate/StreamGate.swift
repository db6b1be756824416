import ArgumentParser
import Foundation
import Jobs
import NIOCore
import NIOPosix

@main
struct StreamGate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streamgate",
        abstract: "Transcode uploads into encrypted HLS ladders and serve them.",
        subcommands: [Dev.self, Transcode.self, BenchQueue.self, Serve.self, WorkerCommand.self, FarmCommand.self, Scale.self, Enqueue.self, Jobs.self, QueueCommand.self, Workers.self]
    )

    /// Runs the chosen command; a ``CommandFailure`` becomes one line on standard error and an exit
    /// code that tells its kind, instead of ArgumentParser's generic error output.
    static func main() async {
        Telemetry.bootstrap()
        do {
            var command = try parseAsRoot()
            if command is Serve || command is Dev { adoptEventLoopsAsGlobalExecutor() }
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            failure.exit()
        } catch let error as RedisError {
            CommandFailure(error).exit()
        } catch let error as JobError {
            CommandFailure(error).exit()
        } catch {
            exit(withError: error)
        }
    }

    /// The HTTP server's request handlers are Swift tasks. On the default global executor each
    /// request hops from the event loop that read it to a pool thread and back to write the answer:
    /// two thread switches per request, which on a 2-core host cost more than serving a cached
    /// segment. Run tasks on the event loops themselves instead (one thread per core, and a task
    /// started on a loop stays on it). Nothing the server runs as a task blocks: file, store and
    /// Redis calls go to NIO's thread pools. `STREAMGATE_GLOBAL_EXECUTOR=swift` keeps the default,
    /// for comparison.
    private static func adoptEventLoopsAsGlobalExecutor() {
        guard ProcessInfo.processInfo.environment["STREAMGATE_GLOBAL_EXECUTOR"] != "swift" else { return }
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
