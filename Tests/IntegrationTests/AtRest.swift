import Foundation
import TestSupport
import Testing

/// Checks on what a transcode left on disk: no plaintext media, no unwrapped key.
enum AtRest {
    static func verify(store: String, tempFolder: String, server: OriginServer, assetID: String) async throws {
        let files = try allFiles(under: tempFolder) + (store.hasPrefix(tempFolder) ? [] : try allFiles(under: store))
        let segments = files.filter { $0.hasSuffix(".ts") }
        #expect(!segments.isEmpty, "the store holds segments")
        for segment in segments {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
            #expect(!showsTransportStreamSync(bytes), "\(segment) looks like plaintext MPEG-TS")
            #expect(bytes.count % 16 == 0, "\(segment): AES-128-CBC output is whole blocks")
            // Random bytes are sometimes sniffed as some format (a text subtitle, raw H.263); what must
            // never be found in ciphertext is what the plaintext was: MPEG-TS carrying H.264 or AAC.
            let probe = try await run("/usr/bin/ffprobe", ["-v", "error", "-show_format", "-show_streams", segment])
            let media = probe.stdout.contains("format_name=mpegts") || probe.stdout.contains("codec_name=h264")
                || probe.stdout.contains("codec_name=aac")
            #expect(probe.status != 0 || !media, "ffprobe found the segment's media in \(segment) at rest: \(probe.stdout)")
        }

        // Every key the playlists name, as the origin hands it out; none may be on disk in the clear.
        let keyURIs = try files.filter { $0.hasSuffix("index.m3u8") }.flatMap { playlist -> [String] in
            let text = try String(contentsOfFile: playlist, encoding: .utf8)
            return text.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("#EXT-X-KEY:"), let start = line.range(of: "URI=\"") else { return nil }
                let rest = line[start.upperBound...]
                return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
            }
        }
        let keyIDs = Set(keyURIs.map { URL(fileURLWithPath: $0).lastPathComponent })
        #expect(!keyIDs.isEmpty, "the playlists name their keys")
        for keyID in keyIDs {
            let (status, key) = try await server.get("/v/\(assetID)/keys/\(keyID)")
            #expect(status == 200 && key.count == 16, "key \(keyID) is served as 16 bytes")
            let keyBytes = [UInt8](key)
            let keyHex = keyBytes.map { String(format: "%02x", $0) }.joined()
            for file in files {
                let content = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
                #expect(!contains(content, keyBytes), "\(file) holds key \(keyID) unwrapped")
                #expect(!contains(content, Array(keyHex.utf8)), "\(file) holds key \(keyID) as hex")
                #expect(!contains(content, Array(Data(keyBytes).base64EncodedString().utf8)), "\(file) holds key \(keyID) as base64")
            }
        }
    }

    /// True when some offset has 0x47 every 188 bytes for the first packets: plaintext MPEG-TS.
    static func showsTransportStreamSync(_ bytes: [UInt8]) -> Bool {
        let packets = min(bytes.count / 188, 16)
        guard packets >= 2 else { return false }
        return (0..<188).contains { offset in
            (0..<packets).allSatisfy { offset + $0 * 188 < bytes.count && bytes[offset + $0 * 188] == 0x47 }
        }
    }

    static func allFiles(under root: String) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let path = root + "/" + relative
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(path)
            }
        }
        return files
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        let first = needle[0]
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first, Array(haystack[index..<(index + needle.count)]) == needle { return true }
            index += 1
        }
        return false
    }
}
