import HTTPTypes
import Hummingbird
import NIOCore
import Origin
import Vault

/// The web console: static pages served from the binary, which sign in to the job API
/// (`POST /v1/session`) and work through it like any other client; nothing here reads Redis or
/// the store.
///
/// - `/console/`: the console (upload, jobs, assets, farm, health), behind sign-in.
/// - `/watch/{asset}`: the viewer's page, public: it plays the asset, signing in with an
///   Ethereum wallet first when the asset is gated.
public struct ConsoleRoutes: ServerRoutes {
    public init() {}

    public func register(on router: Router<OriginRequestContext>) {
        // The router takes `/console` and `/console/` as one path; the pages use absolute URLs.
        router.get("/console") { request, _ in Self.serve(ConsoleFile.console, request) }
        router.get("/console/{file}") { request, context in
            guard let file = ConsoleFile.named[context.parameters.get("file") ?? ""] else { return Response(status: .notFound) }
            return Self.serve(file, request)
        }
        router.get("/watch/{asset}") { request, _ in Self.serve(ConsoleFile.watch, request) }
    }

    /// Every answer revalidates (`no-cache` with an ETag): a new release is seen at once, and an
    /// unchanged file costs a 304. The policy keeps every script to these files.
    static func serve(_ file: ConsoleFile, _ request: Request) -> Response {
        // Text goes gzipped to a browser that takes it (compressed once, when first served).
        let gzipped = HTTPSemantics.acceptsGzip(request.headers[.acceptEncoding]) ? file.gzipped : nil
        let etag = gzipped == nil ? file.etag : file.gzipEtag
        var headers: HTTPFields = [
            .contentType: file.contentType, .cacheControl: "no-cache", .eTag: etag, .vary: "Accept-Encoding",
            .contentSecurityPolicy: "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                + "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "same-origin",
        ]
        if let tags = request.headers[.ifNoneMatch], HTTPSemantics.matches(tags, eTag: etag) { return Response(status: .notModified, headers: headers) }
        let bytes = gzipped ?? file.bytes
        if gzipped != nil { headers[.contentEncoding] = "gzip" }
        headers[.contentLength] = String(bytes.count)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// One of the console's files, built into the binary (`Files/`, embedded by SwiftPM).
struct ConsoleFile: Sendable {
    let bytes: [UInt8]
    /// The gzip form, for text; nil for what does not shrink.
    let gzipped: [UInt8]?
    let contentType: String
    let etag: String
    /// Another representation, another tag.
    var gzipEtag: String { String(etag.dropLast()) + "-gz\"" }

    init(_ bytes: [UInt8], _ contentType: String) {
        self.bytes = bytes
        self.contentType = contentType
        etag = "\"" + Digest.hex(Digest.sha256(bytes).prefix(12)) + "\""
        gzipped = Gzip.compress(bytes).flatMap { $0.count < bytes.count ? $0 : nil }
    }

    static let console = ConsoleFile(PackageResources.console_html, "text/html; charset=utf-8")
    static let watch = ConsoleFile(PackageResources.watch_html, "text/html; charset=utf-8")
    /// The files pages load by name, under `/console/`.
    static let named: [String: ConsoleFile] = [
        "console.css": ConsoleFile(PackageResources.console_css, "text/css; charset=utf-8"),
        "console.js": ConsoleFile(PackageResources.console_js, "text/javascript; charset=utf-8"),
        "charts.js": ConsoleFile(PackageResources.charts_js, "text/javascript; charset=utf-8"),
        "tus.js": ConsoleFile(PackageResources.tus_js, "text/javascript; charset=utf-8"),
        "watch.js": ConsoleFile(PackageResources.watch_js, "text/javascript; charset=utf-8"),
        "ethereum.js": ConsoleFile(PackageResources.ethereum_js, "text/javascript; charset=utf-8"),
        "icon.svg": ConsoleFile(PackageResources.icon_svg, "image/svg+xml"),
    ]
}
