import Foundation
import Origin
import Testing

/// The tus header grammar: what is accepted, and that each refusal names the header.
@Suite("tus headers")
struct TusHeadersTests {
    @Test("Upload-Metadata: pairs, empty values, client keys; strict base64 and UTF-8")
    func metadata() throws {
        let pairs = try TusHeaders.parseMetadata("profile ZmFzdA==, asset_id dXBsb2FkZWQ=,keep_source,filename dmlkZW8ubXA0")
        #expect(pairs == ["profile": "fast", "asset_id": "uploaded", "keep_source": "", "filename": "video.mp4"])
        #expect(try TusHeaders.parseMetadata("") == [:])
        for bad in ["profile ZmFzdA", "profile ZmFzdA=", "profile Zm=zdA==", "profile ZmFzdB==", "a YQ==,a Yg==", ",", "a b c", "k\u{7f} YQ==", "k /w=="] {
            #expect(throws: TusHeaderError.self, "\(bad.debugDescription)") { try TusHeaders.parseMetadata(bad) }
            #expect((try? TusHeaders.parseMetadata(bad)) == nil)
        }
        do throws(TusHeaderError) {
            _ = try TusHeaders.parseMetadata("a YQ==,a Yg==")
        } catch {
            #expect(error.header == "Upload-Metadata" && error.reason.contains("twice"))
        }
        let many = (0...TusHeaders.maximumMetadataPairs).map { "k\($0)" }.joined(separator: ",")
        #expect(throws: TusHeaderError.self) { try TusHeaders.parseMetadata(many) }
    }

    @Test("Upload-Offset and Upload-Length: digits only, at most 18")
    func sizes() throws {
        #expect(try TusHeaders.parseSize("0", header: "Upload-Offset") == 0)
        #expect(try TusHeaders.parseSize("5242880", header: "Upload-Offset") == 5_242_880)
        #expect(try TusHeaders.parseSize("999999999999999999", header: "Upload-Length") == 999_999_999_999_999_999)
        for bad in ["", "-1", "+1", " 1", "1 ", "1.0", "0x10", "1000000000000000000", "１"] {
            #expect(throws: TusHeaderError("Upload-Length", "must be a non-negative whole number of at most 18 digits, got '\(bad)'")) {
                try TusHeaders.parseSize(bad, header: "Upload-Length")
            }
        }
        #expect(throws: TusHeaderError("Upload-Offset", "is required")) { try TusHeaders.parseSize(nil, header: "Upload-Offset") }
    }

    @Test("Upload-Checksum: sha1 and sha256 with digests of their length; Tus-Resumable is 1.0.0")
    func checksumAndVersion() throws {
        let sha1 = try TusHeaders.parseChecksum("sha1 " + Data(repeating: 1, count: 20).base64EncodedString())
        #expect(sha1.algorithm == "sha1" && sha1.digest == [UInt8](repeating: 1, count: 20))
        #expect(try TusHeaders.parseChecksum("sha256 " + Data(repeating: 2, count: 32).base64EncodedString()).digest.count == 32)
        for bad in ["md5 " + Data(repeating: 1, count: 16).base64EncodedString(), "sha1 " + Data(repeating: 1, count: 32).base64EncodedString(), "sha1", "sha1  AAAA"] {
            #expect(throws: TusHeaderError.self) { try TusHeaders.parseChecksum(bad) }
        }
        try TusHeaders.checkResumable("1.0.0")
        #expect(throws: TusHeaderError("Tus-Resumable", "is required (1.0.0)")) { try TusHeaders.checkResumable(nil) }
        #expect(throws: TusHeaderError.self) { try TusHeaders.checkResumable("1.0") }
    }
}
