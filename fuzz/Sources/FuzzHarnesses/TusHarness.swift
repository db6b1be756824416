import Foundation
import Origin

/// What a tus client sends with a resumable upload: the header values of `Upload-Metadata`,
/// `Upload-Offset` / `Upload-Length`, `Upload-Checksum` and `Tus-Resumable`.
enum TusHarness {
    /// The input as each header's value: whatever is accepted keeps to the grammar and, written
    /// back the canonical way, reads back the same.
    static let harness = Harness("tus-headers", maxLength: 4200, "TusHeaders.parseMetadata, parseSize, parseChecksum, checkResumable") { bytes in
        let text = bytes.text
        if let pairs = try? TusHeaders.parseMetadata(text) {
            require(pairs.count <= TusHeaders.maximumMetadataPairs, "\(pairs.count) pairs kept")
            for key in pairs.keys {
                require(!key.isEmpty && key.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ",") }, "key \(key.debugDescription)")
            }
            let written = pairs.sorted { $0.key < $1.key }
                .map { $0.value.isEmpty ? $0.key : $0.key + " " + Data($0.value.utf8).base64EncodedString() }.joined(separator: ",")
            if written.utf8.count <= TusHeaders.maximumMetadataBytes {
                require((try? TusHeaders.parseMetadata(written)) == pairs, "metadata written as \(written.debugDescription) reads back differently")
            }
        }
        if let size = try? TusHeaders.parseSize(text, header: "Upload-Offset") {
            require(size >= 0, "a negative size \(size)")
            let digits = text.drop { $0 == "0" }
            require(String(size) == (digits.isEmpty ? "0" : String(digits)), "\(text.debugDescription) read as \(size)")
        }
        if let checksum = try? TusHeaders.parseChecksum(text) {
            require(TusHeaders.checksumAlgorithms.contains(checksum.algorithm), "algorithm \(checksum.algorithm)")
            require(checksum.digest.count == (checksum.algorithm == "sha1" ? 20 : 32), "a digest of \(checksum.digest.count) bytes")
            require(text == checksum.algorithm + " " + Data(checksum.digest).base64EncodedString(), "\(text.debugDescription) is not the canonical form of what it read")
        }
        if (try? TusHeaders.checkResumable(text)) != nil {
            require(text == TusHeaders.version, "Tus-Resumable \(text.debugDescription) accepted")
        }
    }
}
