import ArgumentParser
import Foundation
import Jobs

/// The worker options a farm passes on to each worker it starts.
struct WorkerOptions: ParsableArguments {
    @OptionGroup(title: "Store") var store: StoreOptions

    @Option(help: ArgumentHelp(
        "A local folder for what a transcode writes before it reaches a bucket store (default: a folder in $TMPDIR).", valueName: "folder"
    ))
    var spool: String?

    @Option(help: "Jobs each worker runs at once.")
    var concurrency: Int = 1

    @Option(help: "Folder where a job's profile NAME is found as NAME.yaml.")
    var profiles: String = "profiles"

    @Option(help: ArgumentHelp("How long a job may go without renewal before another worker takes it over.", valueName: "duration"))
    var lease = DurationValue(seconds: 30)

    @Option(help: ArgumentHelp(
        "How long a transcode may run before it is killed and retried (a job's timeout_s may ask for less, never more).",
        valueName: "duration"
    ))
    var jobTimeout = DurationValue(seconds: 4 * 3600)

    @Option(help: ArgumentHelp("Address-space limit of each transcode, in whole MiB; a plain number is MiB.", valueName: "size"))
    var memoryLimitMib = MebibyteCount(8192)

    @Option(help: "A file holding the master key (base64 or 32 raw bytes); else STREAMGATE_MASTER_KEY.")
    var masterKeyFile: String?

    @Option(help: ArgumentHelp(
        "How long a drain may last before running jobs are handed back (keep it under the platform's kill grace period).",
        valueName: "duration"
    ))
    var drainTimeout: DurationValue?

    @Option(help: "A folder job sources may be in (repeatable), besides the store's uploads; none: any (the queue's writers are trusted).")
    var sourceRoot: [String] = []

    @Option(help: ArgumentHelp(
        "stable, or canary: take only a running rollout's share of the jobs (`streamgate rollout`; default: $STREAMGATE_TRACK, else stable).",
        valueName: "track"
    ))
    var track: String?

    @OptionGroup var webhooks: WebhookOptions

    @OptionGroup(title: "Input limits") var limits: MediaLimitOptions

    var arguments: [String] {
        var list = [
            "--concurrency", String(concurrency), "--profiles", profiles, "--lease", lease.description,
            "--job-timeout", jobTimeout.description, "--memory-limit-mib", memoryLimitMib.description,
        ]
        list = store.arguments + list
        if let spool { list += ["--spool", spool] }
        if let masterKeyFile { list += ["--master-key-file", masterKeyFile] }
        if let drainTimeout { list += ["--drain-timeout", drainTimeout.description] }
        for root in sourceRoot { list += ["--source-root", root] }
        if let track { list += ["--track", track] }
        return list + webhooks.arguments + limits.arguments
    }

    /// The worker's track: the option, else the environment's, else stable.
    func resolvedTrack() throws -> WorkerTrack {
        let text = track ?? ProcessInfo.processInfo.environment["STREAMGATE_TRACK"].flatMap { $0.isEmpty ? nil : $0 } ?? "stable"
        guard let value = WorkerTrack(rawValue: text) else {
            throw CommandFailure(message: "--track must be stable or canary, got '\(text)'", code: 64)
        }
        return value
    }
}

/// Where webhooks may go beyond public addresses: taken by `serve` and `dev` (which refuse other
/// literal addresses at enqueue) and by `worker` and `farm` (whose sender is the real boundary).
struct WebhookOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "A destination webhooks may reach though it is not public: a block (10.0.0.0/8), an address or a host name; repeatable or comma-separated (default: $STREAMGATE_WEBHOOK_ALLOW).",
        valueName: "block|address|host"
    ))
    var webhookAllow: [String] = []

    /// The options' entries, else the environment's.
    var entries: [String] {
        webhookAllow.isEmpty ? [ProcessInfo.processInfo.environment["STREAMGATE_WEBHOOK_ALLOW"] ?? ""] : webhookAllow
    }

    func policy() throws -> OutboundAddressPolicy {
        do {
            return try OutboundAddressPolicy(allowing: entries)
        } catch {
            throw CommandFailure(message: error.description, code: 64)
        }
    }

    /// For a child process: the entries as given (the environment reaches it anyway).
    var arguments: [String] { webhookAllow.flatMap { ["--webhook-allow", $0] } }
}
