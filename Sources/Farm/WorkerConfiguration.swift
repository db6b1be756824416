import Foundation
import Jobs
import Vault
import Processes
import Store

/// How a worker runs its jobs.
public struct WorkerConfiguration: Sendable {
    /// This worker's consumer name in the group, unique in the farm.
    public var id: String
    /// Jobs run at once.
    public var concurrency: Int
    /// The store assets are published into.
    public var storage: any AssetStorage
    /// A local folder for what a transcode writes before it reaches a store kept elsewhere (a
    /// bucket); a folder store stages inside itself instead.
    public var spool: String
    /// Where `profile: NAME` is looked up, as `NAME.yaml`.
    public var profilesDirectory: String
    /// The `streamgate` binary each transcode runs in, as a child process.
    public var executable: String
    /// Seconds a job's entry may go without renewal before another worker reclaims it. Renewed
    /// every third of this while the job runs.
    public var leaseSeconds: Double
    /// Seconds a transcode may run before it is killed (and retried); a job's `timeout_s` may ask for less.
    public var jobTimeoutSeconds: Double
    /// Address-space cap for each transcode child, MiB.
    public var memoryLimitMiB: Int
    /// First retry delay, seconds; doubled per attempt, with full jitter, up to `retryCapSeconds`.
    public var retryBaseSeconds: Double
    public var retryCapSeconds: Double
    /// Seconds between heartbeats.
    public var heartbeatSeconds: Double
    /// Seconds a drain may last before running jobs are handed back to the queue (nil: no limit).
    /// Set it below the time a platform waits between SIGTERM and SIGKILL (Kubernetes'
    /// `terminationGracePeriodSeconds`), so a long job is released instead of killed.
    public var drainTimeoutSeconds: Double?
    /// Signs webhooks (`STREAMGATE_WEBHOOK_SECRET`); none are sent without it.
    public var webhookSecret: [UInt8]?
    /// The master keys, handed to each transcode child on a pipe (children get no environment).
    public var keyring: Keyring
    /// Arguments added to every `transcode` child's command line (its input limits).
    public var transcodeArguments: [String]
    /// What each transcode child may not do (its limits are filled in per job).
    public var sandbox: ChildProcess.Sandbox
    /// Folders job sources may be in, besides the store's uploads; empty: anywhere (the queue's
    /// writers are trusted, and the API checks its own roots). Checked again here, symlinks resolved.
    public var sourceRoots: [String]
    /// Where webhooks may go: public addresses, and what the operator allows (`--webhook-allow`).
    public var webhookPolicy: OutboundAddressPolicy
    /// `canary`: takes only a running rollout's share of the jobs (``Worker``'s admission).
    public var track: WorkerTrack

    public init(
        id: String = WorkerConfiguration.defaultID(), concurrency: Int = 1, storage: any AssetStorage,
        spool: String = NSTemporaryDirectory() + "streamgate-spool",
        profilesDirectory: String = "profiles", executable: String = CommandLine.arguments[0],
        leaseSeconds: Double = 30, jobTimeoutSeconds: Double = 4 * 3600, memoryLimitMiB: Int = 8192,
        retryBaseSeconds: Double = 5, retryCapSeconds: Double = 600, heartbeatSeconds: Double = 2,
        keyring: Keyring, transcodeArguments: [String] = [], sandbox: ChildProcess.Sandbox = ChildProcess.Sandbox(fileSizeBytes: 2 << 30),
        sourceRoots: [String] = [], drainTimeoutSeconds: Double? = nil,
        webhookSecret: [UInt8]? = ProcessInfo.processInfo.environment["STREAMGATE_WEBHOOK_SECRET"].flatMap { $0.isEmpty ? nil : Array($0.utf8) },
        webhookPolicy: OutboundAddressPolicy = .publicOnly, track: WorkerTrack = .stable
    ) {
        self.track = track
        self.webhookSecret = webhookSecret
        self.webhookPolicy = webhookPolicy
        self.drainTimeoutSeconds = drainTimeoutSeconds
        self.id = id
        self.concurrency = max(1, concurrency)
        self.storage = storage
        self.spool = spool
        self.profilesDirectory = profilesDirectory
        self.executable = executable
        self.leaseSeconds = leaseSeconds
        self.jobTimeoutSeconds = jobTimeoutSeconds
        self.memoryLimitMiB = memoryLimitMiB
        self.retryBaseSeconds = retryBaseSeconds
        self.retryCapSeconds = retryCapSeconds
        self.heartbeatSeconds = heartbeatSeconds
        self.keyring = keyring
        self.transcodeArguments = transcodeArguments
        self.sandbox = sandbox
        self.sourceRoots = sourceRoots
    }

    /// `host-pid-xxxx`: readable in `streamgate workers`, unique across restarts.
    public static func defaultID() -> String {
        let host = hostName()
        let safeHost = String(host.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" }.prefix(40))
        let suffix = randomSuffix()
        return "\(safeHost.isEmpty ? "worker" : safeHost)-\(getpid())-\(suffix)"
    }

    /// Four random base-32 characters, to tell apart processes started on one host.
    static func randomSuffix() -> String {
        AssetID.randomBase32(count: 4)
    }

    /// This machine's host name.
    static func hostName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The retry delay after `attempt` failed: exponential, full jitter.
    func retryDelay(afterAttempt attempt: Int) -> Double {
        let ceiling = min(retryCapSeconds, retryBaseSeconds * pow(2, Double(max(0, attempt - 1))))
        return Double.random(in: (ceiling / 2)...max(ceiling / 2, ceiling))
    }
}
