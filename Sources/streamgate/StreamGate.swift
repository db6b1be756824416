import ArgumentParser
import Foundation
import Jobs
import Redis

@main
struct StreamGate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streamgate",
        abstract: "Transcode uploads into encrypted HLS ladders and serve them.",
        subcommands: [Dev.self, Transcode.self, BenchQueue.self, Serve.self, WorkerCommand.self, FarmCommand.self, Scale.self, Enqueue.self, Jobs.self, QueueCommand.self, Workers.self, AnalyticsCommand.self, BackupCommand.self, RestoreCommand.self, RotateMasterKey.self, RolloutCommand.self, ProfileCommand.self]
    )

    /// Runs the chosen command; a ``CommandFailure`` becomes one line on standard error and an exit
    /// code that tells its kind, instead of ArgumentParser's generic error output.
    static func main() async {
        Telemetry.bootstrap()
        TraceExport.bootstrapLogging()
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            // A refused size or duration: ArgumentParser's message, and why the value was refused.
            if let message = RefusedValue.explain(fullMessage(for: error)) {
                FileHandle.standardError.write(Data((message + "\n").utf8))
                Foundation.exit(exitCode(for: error).rawValue)
            }
            exit(withError: error)
        }
        do {
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
