// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "StreamGate",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "streamgate", targets: ["streamgate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // Traces: the Tracing API in the libraries, swift-otel's OTLP/HTTP exporter in the executable
        // (its gRPC exporter is left out: it would bring a second HTTP/2 stack for nothing).
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C libraries, through pkg-config; SwiftPM names the Debian packages when one is missing.
        .systemLibrary(
            name: "CFFmpeg",
            pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CSecp256k1",
            pkgConfig: "libsecp256k1",
            providers: [.apt(["libsecp256k1-dev"])]
        ),

        // Linux and glibc calls the Glibc module leaves out (splice, vmsplice, SO_COOKIE, mallopt).
        .target(name: "CLinux"),

        // Envelope encryption: master key -> per-asset content keys; AES-128-CBC for segments.
        // Also the random-access reading every source goes through (files, sealed sources, channels).
        .target(name: "Vault", dependencies: ["COpenSSL", .product(name: "NIOCore", package: "swift-nio")]),
        // Playlists: model, writer, parser.
        .target(name: "HLS"),
        // Ladder profiles (YAML), validated with line numbers.
        .target(name: "Profiles", dependencies: [.product(name: "Yams", package: "Yams")]),
        // Where assets live: one storage interface, a folder backend and a bucket backend (S3);
        // staging, atomic publish, reading published assets.
        .target(
            name: "Store",
            dependencies: [
                "S3",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Disaster recovery: backups of the store and Redis into a folder, restores checked before
        // anything is written, and master-key rotation.
        .target(name: "Recovery", dependencies: ["Store", "Redis", "Vault", "S3", .product(name: "NIOCore", package: "swift-nio")]),
        // FFmpeg wrappers and the transcode pipeline.
        .target(
            name: "Media",
            dependencies: ["CFFmpeg", "CLinux", "HLS", "Vault", "Store", "Profiles", .product(name: "Logging", package: "swift-log")]
        ),
        // How StreamGate traces: which work gets spans, and a trace's W3C context as it travels
        // between processes. The exporter is chosen by the executable.
        .target(
            name: "Traces",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Child processes: only the descriptors given, default signals, dead with their parent,
        // optionally sandboxed.
        .target(name: "Processes", dependencies: ["CLinux"]),
        // The Redis client (hiredis, off the event loops), scripts, the keyspace, and the
        // redis-server child of `dev` and the tests.
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis", "Processes", "Vault",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // The job queue on Redis Streams, and the worker's protocol with its transcode child.
        .target(
            name: "Jobs",
            dependencies: [
                "Redis", "Processes", "Vault", "Store", "Traces",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The worker loop (each transcode in a child process) and the farm supervisor.
        .target(
            name: "Farm",
            dependencies: [
                "Jobs", "Redis", "Processes", "Store", "Vault", "S3", "HLS", "Traces",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Ethereum's primitives: Keccak-256, secp256k1 recovery and signing, EIP-191, addresses,
        // hex, 256-bit integers, the contract ABI, JSON values.
        .target(name: "Ethereum", dependencies: ["CSecp256k1"]),
        // NFT gating: Sign-In With Ethereum, the JSON-RPC client, ownership policies, playback tokens.
        .target(
            name: "Gate",
            dependencies: [
                "Ethereum", "Vault", "Redis", "Traces",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Object storage: an S3 client (Signature Version 4, objects, listings, multipart) on
        // AsyncHTTPClient, with Vault's OpenSSL digests for the signatures.
        .target(
            name: "S3",
            dependencies: [
                "Vault",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // A local EVM (fixtures/chain) served over JSON-RPC: `dev`'s chain and the tests', never a
        // production dependency of the gate.
        .target(
            name: "LocalChain",
            dependencies: [
                "Gate", "Ethereum", "Processes",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // CPU profiles of a running process: `perf script` output folded into stacks
        // (stackcollapse-perf's format, Swift names demangled) and drawn as a flame graph SVG.
        .target(name: "Profiling"),
        // The HTTP origin.
        .target(
            name: "Origin",
            dependencies: [
                "Store", "Vault", "Redis", "Jobs", "Ethereum", "Gate", "CZlib", "CLinux", "Traces",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The web console: pages built into the binary (no build step, no network), served beside
        // the origin's routes; they reach StreamGate only through the job API.
        .target(
            name: "Console",
            dependencies: ["Origin", "Vault", .product(name: "Hummingbird", package: "hummingbird")],
            resources: [
                .embedInCode("Files/console.html"), .embedInCode("Files/console.css"), .embedInCode("Files/console.js"),
                .embedInCode("Files/charts.js"), .embedInCode("Files/tus.js"), .embedInCode("Files/watch.html"),
                .embedInCode("Files/watch.js"), .embedInCode("Files/ethereum.js"), .embedInCode("Files/icon.svg"),
            ]
        ),
        .executableTarget(
            name: "streamgate",
            dependencies: [
                "Console", "Media", "Origin", "Store", "Vault", "Profiles", "Redis", "Processes", "Jobs", "Farm", "Ethereum", "LocalChain", "CLinux", "Traces", "Recovery",
                "Profiling",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),

        // Fuzzing (fuzz/README.md): every parser of untrusted bytes as a plain function in a table
        // by name. A library, so the regression tests replay the corpus through the same functions
        // libFuzzer drives; the executable runs them under libFuzzer when built with -D FUZZING and
        // -sanitize=fuzzer (fuzz/run.sh), and replays files through them otherwise.
        .target(
            name: "FuzzHarnesses",
            dependencies: ["Origin", "Gate", "Ethereum", "Vault", "HLS", "Profiles", "Redis", "Jobs", "S3", "Store"],
            path: "fuzz/Sources/FuzzHarnesses"
        ),
        .systemLibrary(name: "CLibFuzzer", path: "fuzz/Sources/CLibFuzzer"),
        .executableTarget(
            name: "StreamGateFuzz",
            dependencies: ["FuzzHarnesses", "CLibFuzzer"],
            path: "fuzz/Sources/StreamGateFuzz"
        ),

        // What the test targets share: running blocking work off Swift's pool, loopback ports, and
        // the scoped fixtures (a redis-server, an origin on a real socket, an S3 server) that end
        // whatever a test did.
        .target(
            name: "TestSupport",
            dependencies: [
                "Redis", "Processes", "Jobs", "Origin", "S3",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "VaultTests", dependencies: ["Vault"]),
        .testTarget(name: "HLSTests", dependencies: ["HLS"]),
        .testTarget(name: "ProfilesTests", dependencies: ["Profiles"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "S3", "TestSupport"]),
        .testTarget(name: "JobsTests", dependencies: ["Jobs", "Redis", "Processes", "Store", "Traces", "TestSupport"]),
        .testTarget(
            name: "GateTests",
            dependencies: ["Gate", "Ethereum", "LocalChain", "Vault", "Redis", "TestSupport", .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        .testTarget(
            name: "OriginTests",
            dependencies: [
                "Origin", "Store", "Vault", "Redis", "Processes", "Jobs", "Ethereum", "LocalChain", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzHarnesses"]),
        .testTarget(
            name: "S3Tests",
            dependencies: [
                "S3", "TestSupport", "Vault",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        // Fixtures are read from their files, beside the tests.
        .testTarget(name: "ProfilingTests", dependencies: ["Profiling"], exclude: ["Fixtures"]),
        .testTarget(name: "MediaTests", dependencies: ["Media", "Profiles", "Vault", "Store", "HLS", "TestSupport"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "streamgate", "Media", "Vault", "Store", "HLS", "Redis", "Processes", "Jobs", "Ethereum", "Gate", "LocalChain", "Farm", "TestSupport", "S3",
                "Profiling",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
