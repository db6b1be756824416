import Foundation

/// An access key pair, with the session token of temporary credentials.
public struct S3Credentials: Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`; nil unless both keys are set.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> S3Credentials? {
        guard let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty,
              let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
        else { return nil }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
    }

    /// One profile of a shared credentials file (`~/.aws/credentials`'s INI form:
    /// `[profile]` then `aws_access_key_id = …`, `aws_secret_access_key = …`,
    /// `aws_session_token = …`; `#` and `;` start comments).
    public static func fromFile(_ path: String, profile: String = "default") throws(S3ConfigurationError) -> S3Credentials {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path) }
        var section: String?
        var values: [String: String] = [:]
        for rawLine in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                section = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                continue
            }
            guard section == profile, let equals = line.firstIndex(of: "=") else { continue }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            values[name] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        guard let id = values["aws_access_key_id"], !id.isEmpty, let secret = values["aws_secret_access_key"], !secret.isEmpty else {
            throw .missingCredentials("\(path) has no aws_access_key_id and aws_secret_access_key in [\(profile)]")
        }
        return S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: values["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The environment's keys, else the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or
    /// `~/.aws/credentials`, profile `AWS_PROFILE` or `default`).
    public static func resolve(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(S3ConfigurationError) -> S3Credentials {
        if let fromEnvironment = fromEnvironment(environment) { return fromEnvironment }
        let path = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.aws/credentials")
        guard FileManager.default.fileExists(atPath: path) else {
            throw .missingCredentials("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write \(path)")
        }
        return try fromFile(path, profile: environment["AWS_PROFILE"] ?? "default")
    }
}

/// Why an S3 configuration could not be made.
public enum S3ConfigurationError: Error, Equatable, CustomStringConvertible {
    case missingCredentials(String)
    case unreadable(String)
    case invalidEndpoint(String)

    public var description: String {
        switch self {
        case .missingCredentials(let detail): "S3 credentials missing: \(detail)"
        case .unreadable(let path): "S3 credentials file \(path) cannot be read"
        case .invalidEndpoint(let endpoint): "S3 endpoint \(endpoint) is not an http or https URL with a host"
        }
    }
}
