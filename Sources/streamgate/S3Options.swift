import ArgumentParser
import Foundation
import S3
import Store

/// How to reach a bucket store: the endpoint, region, addressing and credentials, each else from
/// the environment AWS's own tools read.
struct S3Options: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The S3 endpoint (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS in the region).", valueName: "url"
    ))
    var s3Endpoint: String?

    @Option(help: ArgumentHelp("The S3 region (default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1).", valueName: "region"))
    var s3Region: String?

    @Option(help: ArgumentHelp(
        "How the bucket is named in requests: path (https://host/bucket/key) or virtual-hosted (https://bucket.host/key); default: path with an endpoint, virtual-hosted on AWS.",
        valueName: "path|virtual-hosted"
    ))
    var s3Addressing: String?

    @Option(help: ArgumentHelp(
        "A shared credentials file (INI, profile $AWS_PROFILE or default); default: $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY ($AWS_SESSION_TOKEN), else ~/.aws/credentials.",
        valueName: "file"
    ))
    var s3CredentialsFile: String?

    /// The bucket store `name`/`prefix` on this service.
    func bucketStore(name: String, prefix: String) throws -> BucketStore {
        BucketStore(client: S3Client(configuration: try s3Configuration()), bucket: name, prefix: prefix)
    }

    /// The S3 settings: these options first, then the environment AWS's own tools read.
    func s3Configuration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Configuration {
        func setting(_ names: String...) -> String? {
            names.lazy.compactMap { environment[$0] }.first { !$0.isEmpty }
        }
        let credentials = try s3CredentialsFile.map { try S3Credentials.fromFile($0, profile: setting("AWS_PROFILE") ?? "default") }
            ?? S3Credentials.resolve(environment)
        let region = s3Region ?? setting("AWS_REGION", "AWS_DEFAULT_REGION") ?? "us-east-1"
        let endpoint = s3Endpoint ?? setting("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        let addressing: S3Configuration.Addressing
        switch s3Addressing {
        case nil: addressing = endpoint == nil ? .virtualHosted : .path
        case "path"?: addressing = .path
        case "virtual-hosted"?, "virtual"?: addressing = .virtualHosted
        case let other?: throw ValidationError("--s3-addressing must be path or virtual-hosted, not '\(other)'")
        }
        return try S3Configuration(
            endpoint: endpoint ?? "https://s3.\(region).amazonaws.com", region: region, addressing: addressing, credentials: credentials
        )
    }

    /// The options as given, for a child process.
    var arguments: [String] {
        var list: [String] = []
        if let s3Endpoint { list += ["--s3-endpoint", s3Endpoint] }
        if let s3Region { list += ["--s3-region", s3Region] }
        if let s3Addressing { list += ["--s3-addressing", s3Addressing] }
        if let s3CredentialsFile { list += ["--s3-credentials-file", s3CredentialsFile] }
        return list
    }
}
