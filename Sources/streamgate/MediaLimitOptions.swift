import ArgumentParser
import Media

/// What an input may be and cause: `transcode`'s options, which a worker passes to each child.
struct MediaLimitOptions: ParsableArguments {
    @Option(help: "The largest picture accepted, in pixels (width × height; 8K is 35389440).")
    var maxPixels: Int = InputLimits().maxPixels

    @Option(help: "The longest input accepted, seconds (declared or decoded).")
    var maxDuration: Double = InputLimits().maxDurationSeconds

    @Option(help: "The most streams an input may have.")
    var maxStreams: Int = InputLimits().maxStreams

    @Option(help: "The most bytes one transcode may write.")
    var maxOutputBytes: Int = InputLimits().maxOutputBytes

    func limits() throws -> InputLimits {
        guard maxPixels > 0, maxDuration > 0, maxStreams > 0, maxOutputBytes > 0 else {
            throw ValidationError("--max-pixels, --max-duration, --max-streams and --max-output-bytes must be positive")
        }
        return InputLimits(maxPixels: maxPixels, maxDurationSeconds: maxDuration, maxStreams: maxStreams, maxOutputBytes: maxOutputBytes)
    }

    /// The same options, for a child's command line.
    var arguments: [String] {
        [
            "--max-pixels", String(maxPixels), "--max-duration", String(maxDuration), "--max-streams", String(maxStreams),
            "--max-output-bytes", String(maxOutputBytes),
        ]
    }
}
