import ArgumentParser
import Foundation
import Jobs

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
}
