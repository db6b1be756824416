/// A profile that cannot be loaded, with the file, line and column of the offending key or value.
public struct ProfileError: Error, CustomStringConvertible, Sendable {
    /// The file as it was named to ``Profile/load(path:)`` or ``Profile/parse(yaml:file:)``.
    public let file: String
    /// 1-based line, when the problem has a place in the file.
    public let line: Int?
    /// 1-based column, when the problem has a place in the file.
    public let column: Int?
    /// What is wrong.
    public let message: String

    public init(file: String, line: Int?, column: Int?, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// `profiles/x.yaml:12:5: unknown key 'bitrat' in rung '720p' (expected one of: …)`, the
    /// form compilers use, so editors can jump to the place.
    public var description: String {
        var place = file
        if let line {
            place += ":\(line)"
            if let column { place += ":\(column)" }
        }
        return "\(place): \(message)"
    }
}
