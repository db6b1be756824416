import CFFmpeg
import Foundation
import HLS
import Profiles
import Store
import Vault

/// How far a transcode has got, reported at most a few times a second.
public struct TranscodeProgress: Sendable {
    /// Media time processed, seconds.
    public var processedSeconds: Double
    /// The source's duration, when the container says.
    public var totalSeconds: Double?
    /// Video frames decoded so far.
    public var frames: Int
    /// Wall time since the transcode started, seconds.
    public var elapsedSeconds: Double

    /// 0…1, when the duration is known.
    public var fraction: Double? {
        guard let totalSeconds, totalSeconds > 0 else { return nil }
        return min(1, max(0, processedSeconds / totalSeconds))
    }

    public var framesPerSecond: Double { elapsedSeconds > 0 ? Double(frames) / elapsedSeconds : 0 }
    /// Media seconds per wall second.
    public var speed: Double { elapsedSeconds > 0 ? processedSeconds / elapsedSeconds : 0 }
    /// Seconds left at the current speed, when the duration is known.
    public var etaSeconds: Double? {
        guard let totalSeconds, speed > 0 else { return nil }
        return max(0, (totalSeconds - processedSeconds) / speed)
    }
}

/// A transcode failure for one input: the file, one clear reason, and what kind of failure it was,
/// so the caller decides from the kind and never from the reason's text.
public struct TranscodeError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The input: damaged, unsupported, over a limit. Another attempt fails the same way.
        case input
        /// `isCancelled` asked the transcode to stop.
        case cancelled
        /// An allocation failed (ENOMEM from libav*, or an allocator that returned nothing): the
        /// process's memory cap, or a request libav* refuses whatever the cap.
        case allocationFailed
        /// A codec thread could not start (EAGAIN: no room left for its stack, under a memory cap).
        case threadStartFailed
        /// The input's bytes could not be read (`SourceUnavailableError`: the object store, the
        /// worker serving them): the source's fault, not its bytes'. Another attempt may succeed.
        case sourceUnavailable
    }

    public let file: String
    public let reason: String
    public let kind: Kind

    public init(file: String, reason: String, kind: Kind = .input) {
        self.file = file
        self.reason = reason
        self.kind = kind
    }

    public var description: String { "\(file): \(reason)" }
}

extension TranscodeError.Kind {
    /// The kind of a failed FFmpeg call, from the AVERROR code it carries.
    init(_ error: MediaError) {
        if error.isSourceUnavailable {
            self = .sourceUnavailable
            return
        }
        switch error.code {
        case AVErr.noMemory?: self = .allocationFailed
        case AVErr.again?: self = .threadStartFailed
        default: self = .input
        }
    }
}

/// What a transcode reads: a file by path, or bytes a reader gives (a source channel from the
/// worker, for an object in a bucket). Sealed or plain is decided from the bytes either way.
public enum TranscodeInput {
    case path(String)
    /// `name` is what messages call the input (an `s3://` URL); nothing is ever opened by it.
    case bytes(any RandomAccessBytes, name: String)

    /// The input as messages name it.
    public var name: String {
        switch self {
        case .path(let path): path
        case .bytes(_, let name): name
        }
    }
}

/// Transcodes one input into an encrypted HLS ladder and publishes it atomically.
///
/// The source is demuxed and decoded once; every decoded picture is converted and encoded for each
/// rung, and the audio is encoded once and muxed into every rendition. Segments are cut at the same
/// instants on every rendition (IDR frames forced on shared timestamps), encrypted in memory and
/// written to a staging folder; playlists and wrapped keys follow; then the asset is published in one
/// rename. On any failure nothing is visible, and a staging folder the transcode made is removed.
public final class Transcoder {
    private let store: AssetStore
    private let keyring: Keyring

    public init(store: AssetStore, keyring: Keyring) {
        self.store = store
        self.keyring = keyring
        FFmpegLog.install()
    }

    /// Runs a transcode of `input`, a path or given bytes, on the calling thread (it blocks for the
    /// whole transcode). Only a path gets `checkReadable` first (its clearest messages are about
    /// files); bytes go straight to the demuxer.
    /// - Parameters:
    ///   - progress: called at most every `progressInterval` seconds, and once at the end.
    ///   - isCancelled: polled between packets; returning true abandons the transcode.
    ///   - publisher: who publishes (a job's id), when the transcode publishes itself: recorded in
    ///     the version (``StagingArea/publish(requiredFiles:publisher:)``).
    ///   - staging: a staging folder someone else owns (a worker, for the attempt it runs), adopted
    ///     with ``AssetStore/adoptStaging(_:for:)``: written, never published nor removed here (the
    ///     worker publishes it through its store). When nil, the transcode stages in a folder of its
    ///     own, publishes it, and removes it on failure.
    ///   - growing: write the playlists as the version grows (``LadderPlaylists``), so its owner can
    ///     show it before it is whole; `onPlayable` is told once every rendition has a segment and
    ///     the multivariant playlist is written.
    ///   - posterTime: the instant of the poster, seconds from the start (nil: a tenth in, at most 10 s).
    ///   - part: one part of a split transcode (``TranscodePart``), into an adopted staging
    ///     folder: its summary carries the part's manifest, and no playlist is written.
    ///   - onStage: told each stage the transcode measured (``TranscodeStage``): the probe once the
    ///     input is open, the others when it ends, however it ends.
    /// - Throws: ``StoreError`` when the store fails (full, unwritable): the input is not to blame,
    ///   and another try may succeed; ``TranscodeError`` for everything about the input.
    public func transcode(
        input: TranscodeInput,
        profile: Profile,
        assetID: AssetID,
        limits: InputLimits = InputLimits(),
        progressInterval: Double = 0.25,
        progress: ((TranscodeProgress) -> Void)? = nil,
        isCancelled: @escaping () -> Bool = { false },
        publisher: String? = nil,
        staging adopted: StagingArea? = nil,
        growing: Bool = false,
        onPlayable: (() -> Void)? = nil,
        posterTime: Double? = nil,
        part: TranscodePart = .whole,
        onStage: ((TranscodeStage) -> Void)? = nil
    ) throws -> TranscodeSummary {
        if case .path(let path) = input { try Transcoder.checkReadable(path) }
        let started = Date()
        // discard() below removes only a folder this transcode staged; an adopted one stays for its owner.
        let staging = try adopted ?? store.stage(assetID)
        do {
            var probe = StageClock()
            let job = try probe.measure {
                try TranscodeJob(
                    input: input, profile: profile, assetID: assetID, staging: staging, keyring: keyring, limits: limits,
                    progressInterval: progressInterval, progress: progress, isCancelled: isCancelled, started: started,
                    growing: growing && part == .whole, onPlayable: onPlayable, posterTime: posterTime, part: part
                )
            }
            if let onStage {
                probe.stage(.probe).map(onStage)
            }
            defer { if let onStage { job.stages.forEach(onStage) } }
            var summary = try job.run()
            if adopted == nil, part == .whole {
                summary.version = try staging.publish(requiredFiles: PublishedVersion.requiredFiles, publisher: publisher).version
            }
            summary.wallSeconds = Date().timeIntervalSince(started)
            return summary
        } catch let error as TranscodeError {
            staging.discard()
            throw error
        } catch let error as StoreError {
            // A full or unwritable store is not bad input: the caller must be able to tell.
            staging.discard()
            throw error
        } catch let error as MediaError {
            staging.discard()
            throw TranscodeError(file: input.name, reason: "\(error)", kind: .init(error))
        } catch {
            staging.discard()
            throw TranscodeError(file: input.name, reason: "\(error)")
        }
    }

    /// The checks that give the clearest message for the commonest mistakes, before FFmpeg sees
    /// the file.
    static func checkReadable(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw TranscodeError(file: path, reason: String(cString: strerror(errno)).lowercased())
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            throw TranscodeError(file: path, reason: "is a directory, not a media file")
        }
        if info.st_mode & S_IFMT == S_IFREG, info.st_size == 0 {
            throw TranscodeError(file: path, reason: "file is empty (0 bytes)")
        }
        guard access(path, R_OK) == 0 else {
            throw TranscodeError(file: path, reason: String(cString: strerror(errno)).lowercased())
        }
    }
}
