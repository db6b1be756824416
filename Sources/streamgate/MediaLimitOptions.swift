import ArgumentParser
import Media

/// What an input may be and cause: `transcode`'s options, which a worker passes to each child.
struct MediaLimitOptions: ParsableArguments {
    @Option(help: "The largest picture accepted, in pixels (width × height; 8K is 35389440).")
    var maxPixels: Int = InputLimits().maxPixels

    @Option(help: ArgumentHelp("The longest input accepted (declared or decoded).", valueName: "duration"))
    var maxDuration = DurationValue(seconds: Int(InputLimits().maxDurationSeconds))

    @Option(help: "The most streams an input may have.")
    var maxStreams: Int = InputLimits().maxStreams

    @Option(help: ArgumentHelp("The most one transcode may write.", valueName: "size"))
    var maxOutputBytes = ByteCount(InputLimits().maxOutputBytes)

    func limits() throws -> InputLimits {
        guard maxPixels > 0, maxDuration.nanoseconds > 0, maxStreams > 0, maxOutputBytes.bytes > 0 else {
            throw ValidationError("--max-pixels, --max-duration, --max-streams and --max-output-bytes must be positive")
        }
        return InputLimits(
            maxPixels: maxPixels, maxDurationSeconds: maxDuration.seconds, maxStreams: maxStreams, maxOutputBytes: maxOutputBytes.bytes
        )
    }

    /// The same options, for a child's command line (sizes and durations in forms that read back exactly).
    var arguments: [String] {
        [
            "--max-pixels", String(maxPixels), "--max-duration", maxDuration.description, "--max-streams", String(maxStreams),
            "--max-output-bytes", maxOutputBytes.description,
        ]
    }
}
