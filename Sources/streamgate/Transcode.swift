import ArgumentParser
import Foundation
import Jobs
import Media
import Profiles
import Store
import Vault
import Redis

struct Transcode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Transcode one file into an encrypted HLS ladder and publish it in a store.",
        discussion: unitsHelp
    )

    @Argument(help: "The source file: anything FFmpeg's libavformat reads.")
    var input: String

    /// The input's bytes come from the worker over this descriptor (``SourceChannelReader``): the
    /// input argument is then only its name (the `s3://` URL), for messages; nothing is opened by it.
    @Option(help: .hidden)
    var sourceChannel: Int32?

    @Option(help: "The ladder profile (YAML).")
    var profile: String = "profiles/default.yaml"

    @Option(name: .customLong("out"), help: ArgumentHelp("The store the asset is published into: a folder, or s3://bucket/prefix.", valueName: "folder|s3-url"))
    var store: String

    @OptionGroup(title: "S3 (with --out s3://…)") var s3: S3Options

    @Option(help: ArgumentHelp("With --out s3://…: the local folder segments pass through on their way up (default: a folder in $TMPDIR).", valueName: "folder"))
    var spool: String?

    @Option(help: ArgumentHelp("The poster's instant, seconds from the start (default: a tenth in, at most 10 s).", valueName: "seconds"))
    var posterTime: Double?

    @Option(help: "The asset id (letters, digits, '-', '_'); random when omitted.")
    var assetID: String?

    @Option(help: "A file holding the master key (base64 or 32 raw bytes); else STREAMGATE_MASTER_KEY.")
    var masterKeyFile: String?

    @Flag(help: "Print a JSON summary on standard output.")
    var json = false

    @Flag(help: "No progress bar.")
    var quiet = false

    @Flag(help: .hidden)
    var events = false

    /// The keyring arrives on standard input (``Keyring/handoff()``): how a worker starts its children.
    @Flag(help: .hidden)
    var keyringStdin = false

    /// Caps this process's address space before any input is read: what a hostile file can make
    /// a decoder allocate (set here rather than at exec, where it would count the program itself).
    @Option(help: .hidden)
    var memoryLimitMib: MebibyteCount?

    /// Who publishes (a job's id), recorded in the version this transcode publishes (not with
    /// --staging, whose owner publishes).
    @Option(help: .hidden)
    var publisher: String?

    /// A staging folder a worker made for this attempt, and owns: written here, each file reported
    /// as it is whole (with --events), never published nor removed here (the worker publishes it
    /// through its store, and removes it whatever ends the attempt).
    @Option(help: .hidden)
    var staging: String?

    /// With --staging and --events: playlists are written as the version grows, and `playable`
    /// says when the worker may show it.
    @Flag(help: .hidden)
    var growing = false

    /// With --staging and --events: a source the profile splits (`chunk_duration`) is not
    /// transcoded; its plan is said (`split`) for the worker to enqueue the chunks.
    @Flag(help: .hidden)
    var maySplit = false

    /// With --staging and --events: one part of a split transcode, `audio` or
    /// `video:START:END` (END empty for the source's end); its manifest is in its `done` summary.
    @Option(help: .hidden)
    var part: String?

    /// With --events: each stage the transcode measured is said as a `stage` event, which the
    /// worker records in the job's trace.
    @Flag(help: .hidden)
    var stages = false

    @OptionGroup(title: "Input limits") var limits: MediaLimitOptions

    func run() throws {
        do {
            // The keyring comes from the worker, not the input: read before the cap, under which
            // Foundation's read of standard input could find no room and return nothing.
            let keyring = keyringStdin
                ? try Keyring.load(handoff: Array(FileHandle.standardInput.readDataToEndOfFile()))
                : try Keyring.load(keyFile: masterKeyFile)
            if let memoryLimitMib { try ResourceLimits.capAddressSpace(mebibytes: memoryLimitMib.mebibytes) }
            let limits = try limits.limits()
            if let posterTime, !(posterTime.isFinite && posterTime >= 0) {
                throw ValidationError("--poster-time must be seconds from the start, 0 or more (got \(posterTime))")
            }
            let ladder = try Profile.load(path: profile)
            let part = try self.part.map { text in
                guard let part = TranscodePart(argument: text), staging != nil, events else {
                    throw ValidationError("--part takes 'audio' or 'video:START:END', with --staging and --events (got '\(text.prefix(60))')")
                }
                return part
            } ?? .whole
            let id = try assetID.map { try AssetID($0) } ?? AssetID.random()
            let location = try StoreLocation(store)
            var bucket: BucketUpload?
            let assets: AssetStore
            switch location {
            case .folder(let path):
                assets = try AssetStore(root: path)
            case .bucket(let name, let prefix):
                guard staging == nil else { throw ValidationError("--staging is a worker's, for a folder store") }
                bucket = try BucketUpload(into: try s3.bucketStore(name: name, prefix: prefix), asset: id, spool: spool)
                assets = bucket!.spool
            }
            let adopted = try bucket?.staging ?? staging.map { try assets.adoptStaging($0, for: id) }
            if events { adopted?.onWrite = { EventWriter.write(.stored($0)) } }
            if part != .whole { adopted?.replacesExisting = true }
            let transcoder = Transcoder(store: assets, keyring: keyring)
            let stop = StopSignal.install(watchParent: events)
            let bar = (!quiet && !events && isatty(STDERR_FILENO) == 1) ? ProgressBar() : nil
            let progress: ((TranscodeProgress) -> Void)? = events ? EventWriter.progress : bar.map { bar in { bar.draw($0) } }
            let source = try transcodeInput()
            if maySplit, events, staging != nil, part == .whole,
               let plan = try SplitPlanner.plan(input: source, profile: ladder, keyring: keyring, limits: limits, posterTime: posterTime) {
                EventWriter.write(.split(plan))
                return
            }
            var summary: TranscodeSummary
            do {
                summary = try transcoder.transcode(
                    input: source, profile: ladder, assetID: id, limits: limits, progressInterval: events ? 0.5 : 0.25,
                    progress: progress, isCancelled: { stop.isRequested }, publisher: publisher, staging: adopted,
                    growing: growing && events && staging != nil, onPlayable: { EventWriter.write(.playable) }, posterTime: posterTime, part: part,
                    onStage: stages && events ? { EventWriter.write(.stage($0)) } : nil
                )
                if let bucket { summary.version = try bucket.publish(publisher: publisher) }
            } catch {
                bucket?.discard()
                throw error
            }
            bar?.finish()
            if events {
                EventWriter.write(.finished(summary))
            } else if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(summary), as: UTF8.self))
            } else {
                let rungs = summary.renditions.map { r in r.width.map { "\(r.name) \($0)x\(r.height ?? 0)" } ?? r.name }
                print("published \(summary.assetID) (\(rungs.joined(separator: ", ")); \(String(format: "%.2f", summary.durationSeconds)) s in \(summary.segments) segments, \(String(format: "%.1f", summary.wallSeconds)) s)")
                print("  " + (bucket?.playlist(of: summary) ?? "\(assets.root)/assets/\(summary.assetID)/master.m3u8"))
            }
        } catch {
            let (status, message) = Self.failure(error, input: input, memoryLimitMiB: memoryLimitMib?.mebibytes)
            if events { EventWriter.write(.failed(reason: message, status: status)) }
            throw CommandFailure(message: message, code: status.rawValue)
        }
    }

    /// What to read: the source channel's bytes, or a file. A worker hands its child a path it
    /// resolved and checked, which is then opened refusing links; run by hand, a link to a file is
    /// as good as the file.
    private func transcodeInput() throws -> TranscodeInput {
        if let sourceChannel {
            guard sourceChannel > STDERR_FILENO else {
                throw ValidationError("--source-channel must be a descriptor above 2, not \(sourceChannel)")
            }
            do throws(SourceUnavailableError) {
                return .bytes(try SourceChannelReader(descriptor: sourceChannel, name: input), name: input)
            } catch {
                throw TranscodeError(file: input, reason: error.reason, kind: .sourceUnavailable)
            }
        }
        return .path(keyringStdin ? input : ((try? SourcePolicy(roots: []).resolve(input).get()) ?? input))
    }

    /// The status a failed transcode exits with, and its one-line message. Memory failures are
    /// told by the error's kind and by how near the process came to its address-space cap.
    static func failure(_ error: any Error, input: String, memoryLimitMiB: Int?) -> (status: TranscodeExit, message: String) {
        switch error {
        case let failure as TranscodeError:
            switch failure.kind {
            case .input: return (.badInput, failure.description)
            case .cancelled: return (.cancelled, failure.description)
            // Not the bytes' fault (the object store, the worker serving them): worth another attempt.
            case .sourceUnavailable: return (.internalFailure, failure.description)
            case .allocationFailed, .threadStartFailed:
                // Near the cap, an allocation (or a thread's stack) failed for the limit's sake, not
                // the file's: worth another attempt.
                if let memoryLimitMiB, ResourceLimits.cameNearAddressSpaceCap(mebibytes: memoryLimitMiB) {
                    return (.outOfMemory, "\(input): ran out of memory under the limit of \(memoryLimitMiB) MiB (\(failure.reason))")
                }
                // Far from it, libav* refused what the file asked for: bad input, not worth a retry.
                guard failure.kind == .allocationFailed else { return (.badInput, failure.description) }
                return (.badInput, "\(input): asks for more memory than libav* will allocate (\(failure.reason))")
            }
        case is StoreError: return (.storeUnavailable, "\(error)")
        case is VaultError, is ProfileError: return (.configuration, "\(error)")
        case is ValidationError, ResourceLimitError.notPositive: return (.usage, "\(error)")
        default: return (.internalFailure, "\(error)")
        }
    }
}

/// Prints one line, `streamgate: <reason>`, and exits with a code that tells the kind of failure.
struct CommandFailure: Error, CustomStringConvertible {
    let message: String
    let code: Int32

    var description: String { message }

    init(message: String, code: Int32) {
        self.message = message
        self.code = code
    }

    init(_ error: Error) {
        if let failure = error as? CommandFailure {
            self = failure
            return
        }
        message = "\(error)"
        switch error {
        case is VaultError, is ProfileError: code = 78  // EX_CONFIG
        case is StoreError: code = 73  // EX_CANTCREAT
        case is JobError: code = 65  // EX_DATAERR
        case is RedisError: code = 69  // EX_UNAVAILABLE
        default: code = 1
        }
    }
}

extension CommandFailure {
    func exit() -> Never {
        FileHandle.standardError.write(Data("streamgate: \(message)\n".utf8))
        Foundation.exit(code)
    }
}

/// A one-line progress bar on standard error: percent, frames per second, speed and ETA.
final class ProgressBar {
    private var drawn = false

    func draw(_ progress: TranscodeProgress) {
        draw(fraction: progress.fraction, fps: progress.framesPerSecond, speed: progress.speed, eta: progress.etaSeconds)
    }

    func draw(fraction known: Double?, fps: Double, speed: Double, eta etaSeconds: Double?) {
        let width = 30
        let fraction = min(1, max(0, known ?? 0))
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let percent = known.map { String(format: "%5.1f%%", $0 * 100) } ?? "  ?  %"
        let eta = etaSeconds.map(ProgressBar.clock) ?? "--:--"
        let line = String(format: "\r%@ %@  %6.1f fps  %5.2fx  ETA %@ ", bar, percent, fps, speed, eta)
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        return total >= 3600
            ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
            : String(format: "%d:%02d", total / 60, total % 60)
    }
}
