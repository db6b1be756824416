import Foundation

/// Where a job's source may be: a regular file under one of the configured roots (or, for a
/// worker, the store's uploads), judged on the path with every symbolic link resolved, so a link
/// inside a root cannot lead out of it. The API checks it when a job is posted and records the
/// resolved path; the worker checks again before it starts the transcode, which then opens that
/// path refusing any link (a link planted meanwhile fails the open instead of being followed).
public struct SourcePolicy: Sendable {
    /// The roots, resolved; empty accepts any folder.
    public let roots: [String]

    /// - Parameters:
    ///   - roots: folders sources may be under; empty: anywhere (only what the queue's writers,
    ///     who are trusted, put there).
    ///   - uploads: the store's uploads folder, always accepted when given with roots.
    public init(roots: [String], uploads: String? = nil) {
        let listed = roots.isEmpty ? [] : roots + (uploads.map { [$0] } ?? [])
        self.roots = listed.map { Self.realPath($0) ?? $0 }
    }

    /// The source with its links resolved, when it is a readable regular file under a root; else
    /// why not, in words that name no path but the one given.
    public func resolve(_ source: String) -> Result<String, SourceProblem> {
        guard source.hasPrefix("/") else { return .failure(SourceProblem("must be an absolute path")) }
        guard !source.utf8.contains(0) else { return .failure(SourceProblem("must not contain NUL")) }
        guard let resolved = Self.realPath(source) else {
            return .failure(SourceProblem("\(source): \(String(cString: strerror(errno)).lowercased())"))
        }
        guard roots.isEmpty || roots.contains(where: { resolved.hasPrefix($0 == "/" ? "/" : $0 + "/") }) else {
            return .failure(SourceProblem("\(source) is not under a source folder of this server"))
        }
        var info = stat()
        guard stat(resolved, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            return .failure(SourceProblem("\(source) is not a regular file"))
        }
        return .success(resolved)
    }

    /// nil when the source is acceptable, else why not.
    public func problem(with source: String) -> String? {
        if case .failure(let problem) = resolve(source) { return problem.reason }
        return nil
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// Why a source is refused.
public struct SourceProblem: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
