import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An element of an S3 answer: its name, its text (character data directly inside it, trimmed)
/// and its child elements in order. Attributes and namespaces are not kept: no S3 answer StreamGate
/// reads carries meaning in them.
public struct S3XMLElement: Sendable, Equatable {
    public var name: String
    public var text: String
    public var children: [S3XMLElement]

    /// The first child named `name`.
    public func child(_ name: String) -> S3XMLElement? { children.first { $0.name == name } }
    /// Every child named `name`.
    public func children(_ name: String) -> [S3XMLElement] { children.filter { $0.name == name } }
    /// The text of the first child named `name`.
    public func text(of name: String) -> String? { child(name)?.text }
}

/// Why an XML answer was refused.
public enum S3XMLError: Error, Equatable, CustomStringConvertible {
    case tooLarge(bytes: Int, limit: Int)
    case malformed(line: Int, column: Int, reason: String)
    case declarationRefused
    case notUTF8
    case processingInstructionRefused
    case tooDeep(limit: Int)
    case tooManyElements(limit: Int)
    case unexpectedRoot(expected: String, found: String)
    case missing(element: String, in: String)
    case invalid(element: String, value: String)

    public var description: String {
        switch self {
        case .tooLarge(let bytes, let limit): "XML answer of \(bytes) bytes is over the limit of \(limit)"
        case .malformed(let line, let column, let reason): "malformed XML at \(line):\(column): \(reason)"
        case .declarationRefused: "XML with a DOCTYPE or entity declaration is refused"
        case .notUTF8: "XML that is not UTF-8 is refused"
        case .processingInstructionRefused: "XML with a processing instruction, or an XML declaration naming another encoding, is refused"
        case .tooDeep(let limit): "XML nested deeper than \(limit) elements"
        case .tooManyElements(let limit): "XML with more than \(limit) elements"
        case .unexpectedRoot(let expected, let found): "expected an XML <\(expected)>, found <\(found)>"
        case .missing(let element, let parent): "<\(parent)> lacks <\(element)>"
        case .invalid(let element, let value): "<\(element)> holds \(value.debugDescription)"
        }
    }
}

/// A small strict reader of S3's XML answers: the whole body in memory (bounded), parsed by
/// FoundationXML's `XMLParser` without external entities, into ``S3XMLElement``s.
///
/// Refused, with an ``S3XMLError``: a body over `maxBytes`; bytes that are not UTF-8; any DOCTYPE
/// or entity declaration (no entity expansion, so no "billion laughs"); any processing instruction
/// but a leading UTF-8 XML declaration; nesting over `maxDepth`; more than `maxElements` elements;
/// anything the parser reports as an error; text outside the root element.
///
/// UTF-8 and processing instructions are checked before the parser runs: FoundationXML traps
/// (a crash, not an error) on a processing instruction whose target is not UTF-8 (found by the
/// `s3-xml` fuzz harness; `fuzz/crashes/s3-xml/`).
public enum S3XMLDocument {
    public static let defaultMaxDepth = 16
    public static let defaultMaxElements = 200_000

    public static func parse(
        _ bytes: some Collection<UInt8>, maxBytes: Int = 4 << 20, maxDepth: Int = defaultMaxDepth, maxElements: Int = defaultMaxElements
    ) throws(S3XMLError) -> S3XMLElement {
        guard bytes.count <= maxBytes else { throw .tooLarge(bytes: bytes.count, limit: maxBytes) }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .notUTF8 }
        let data = Data(bytes)
        if containsDeclaration(data) { throw .declarationRefused }
        guard let body = withoutDeclaration(data) else { throw .processingInstructionRefused }
        let builder = TreeBuilder(maxDepth: maxDepth, maxElements: maxElements)
        let parser = XMLParser(data: body)
        parser.shouldResolveExternalEntities = false
        parser.shouldProcessNamespaces = false
        parser.shouldReportNamespacePrefixes = false
        parser.delegate = builder
        let parsed = parser.parse()
        if let refusal = builder.refusal { throw refusal }
        // FoundationXML's parse() may return true after an error (a second root, a mismatched
        // tag, text after the root): any error reported at all refuses the document.
        if let error = builder.parseError ?? parser.parserError {
            throw .malformed(line: builder.errorLine ?? parser.lineNumber, column: builder.errorColumn ?? parser.columnNumber, reason: "XMLParser error \((error as NSError).code)")
        }
        guard parsed, let root = builder.root else {
            let reason = parser.parserError.map { String(describing: $0) } ?? "no root element"
            throw .malformed(line: parser.lineNumber, column: parser.columnNumber, reason: reason)
        }
        return root
    }

    /// Parses and checks the root element's name.
    public static func parse(_ bytes: some Collection<UInt8>, root expected: String, maxBytes: Int = 4 << 20) throws(S3XMLError) -> S3XMLElement {
        let root = try parse(bytes, maxBytes: maxBytes)
        guard root.name == expected else { throw .unexpectedRoot(expected: expected, found: root.name) }
        return root
    }

    /// `<!DOCTYPE` or `<!ENTITY` anywhere (case-insensitively): refused before the parser sees them.
    private static func containsDeclaration(_ data: Data) -> Bool {
        let bang = Array("<!".utf8)
        var index = data.startIndex
        while let found = data[index...].firstRange(of: bang) {
            let word = data[found.upperBound...].prefix(7).map { $0 | 0x20 }
            if word.starts(with: Array("doctype".utf8)) || word.starts(with: Array("entity".utf8)) { return true }
            index = found.upperBound
        }
        return false
    }

    /// The document without its XML declaration, when every `<?` is that declaration at the very
    /// start (after a byte-order mark) naming no encoding but UTF-8; nil otherwise. The parser never
    /// sees a `<?`: FoundationXML traps on some (`<?xml?>` among them, found by the fuzz harness).
    private static func withoutDeclaration(_ data: Data) -> Data? {
        let open = Array("<?".utf8)
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let start = data.starts(with: bom) ? data.startIndex + 3 : data.startIndex
        guard let first = data.firstRange(of: open) else { return data }
        guard first.lowerBound == start, let end = data[first.upperBound...].firstRange(of: Array("?>".utf8)) else { return nil }
        let declaration = String(decoding: data[first.upperBound..<end.lowerBound], as: UTF8.self).lowercased()
        guard declaration.hasPrefix("xml ") || declaration == "xml" else { return nil }
        if let encoding = declaration.range(of: "encoding") {
            let value = declaration[encoding.upperBound...].drop { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "'" }
            guard value.hasPrefix("utf-8") || value.hasPrefix("utf8") else { return nil }
        }
        let rest = data[end.upperBound...]
        guard rest.firstRange(of: open) == nil else { return nil }
        return Data(rest)
    }

    /// Builds the tree from the parser's callbacks and stops the parser at the first limit broken.
    private final class TreeBuilder: NSObject, XMLParserDelegate {
        let maxDepth: Int
        let maxElements: Int
        var stack: [S3XMLElement] = []
        var root: S3XMLElement?
        var elements = 0
        var refusal: S3XMLError?
        var parseError: (any Error)?
        var errorLine: Int?
        var errorColumn: Int?

        init(maxDepth: Int, maxElements: Int) {
            self.maxDepth = maxDepth
            self.maxElements = maxElements
        }

        private func refuse(_ error: S3XMLError, _ parser: XMLParser) {
            if refusal == nil { refusal = error }
            parser.abortParsing()
        }

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            guard refusal == nil else { return }
            elements += 1
            if elements > maxElements { return refuse(.tooManyElements(limit: maxElements), parser) }
            if stack.count >= maxDepth { return refuse(.tooDeep(limit: maxDepth), parser) }
            if root != nil && stack.isEmpty {
                return refuse(.malformed(line: parser.lineNumber, column: parser.columnNumber, reason: "a second root element"), parser)
            }
            stack.append(S3XMLElement(name: name, text: "", children: []))
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            guard refusal == nil, var element = stack.popLast() else { return }
            element.text = element.text.trimmingCharacters(in: .whitespacesAndNewlines)
            if stack.isEmpty {
                root = element
            } else {
                stack[stack.count - 1].children.append(element)
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard refusal == nil else { return }
            if stack.isEmpty {
                if !string.allSatisfy(\.isWhitespace) {
                    refuse(.malformed(line: parser.lineNumber, column: parser.columnNumber, reason: "text outside the root element"), parser)
                }
                return
            }
            stack[stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, foundCDATA block: Data) {
            guard refusal == nil, !stack.isEmpty else { return }
            stack[stack.count - 1].text += String(decoding: block, as: UTF8.self)
        }

        func parser(_ parser: XMLParser, parseErrorOccurred error: any Error) {
            guard parseError == nil else { return }
            parseError = error
            errorLine = parser.lineNumber
            errorColumn = parser.columnNumber
        }

        func parser(_ parser: XMLParser, foundInternalEntityDeclarationWithName name: String, value: String?) {
            refuse(.declarationRefused, parser)
        }

        func parser(_ parser: XMLParser, foundExternalEntityDeclarationWithName name: String, publicID: String?, systemID: String?) {
            refuse(.declarationRefused, parser)
        }
    }
}
