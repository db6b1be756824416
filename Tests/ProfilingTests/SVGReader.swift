import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A flame graph read back with Foundation's XMLParser: parsing fails on anything that is not
/// well-formed XML, and every frame's tooltip, rectangle and label are collected.
final class SVGReader: NSObject, XMLParserDelegate {
    struct Frame {
        var title = ""
        var x = 0.0
        var y = 0.0
        var width = 0.0
        var label: String?

        /// The frame's name and samples, from its tooltip `NAME (N samples, P%)`.
        var name: String { title.range(of: " (", options: .backwards).map { String(title[..<$0.lowerBound]) } ?? title }
        var samples: Int {
            guard let open = title.range(of: " (", options: .backwards) else { return -1 }
            return Int(title[open.upperBound...].prefix { $0.isNumber }) ?? -1
        }
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    private(set) var frames: [Frame] = []
    /// Text outside the frames: the title and the note.
    private(set) var headings: [String] = []
    private var current: Frame?
    private var collecting: String?
    private var text = ""

    static func read(_ svg: String) throws -> SVGReader {
        let reader = SVGReader()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = reader
        guard parser.parse() else {
            throw Malformed(description: "not well-formed at line \(parser.lineNumber): \(parser.parserError.map { "\($0)" } ?? "unknown error")")
        }
        return reader
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        switch name {
        case "g": current = Frame()
        case "title", "text":
            collecting = name
            text = ""
        case "rect" where current != nil:
            current?.x = Double(attributes["x"] ?? "") ?? .nan
            current?.y = Double(attributes["y"] ?? "") ?? .nan
            current?.width = Double(attributes["width"] ?? "") ?? .nan
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if collecting != nil { text += string }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        switch name {
        case "title": current?.title = text
        case "text": if current != nil { current?.label = text } else { headings.append(text) }
        case "g":
            if let frame = current { frames.append(frame) }
            current = nil
        default: break
        }
        if name == "title" || name == "text" { collecting = nil }
    }
}
