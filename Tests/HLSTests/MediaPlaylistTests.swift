import Foundation
import Testing
@testable import HLS

private func ivFor(_ n: UInt8) -> [UInt8] { [UInt8](repeating: 0, count: 15) + [n] }

private func parseError(_ text: String) -> HLSParseError? {
    do {
        _ = try MediaPlaylist.parse(text)
        return nil
    } catch let error as HLSParseError {
        return error
    } catch {
        Issue.record("unexpected error type \(error)")
        return nil
    }
}

@Test func rendersVODPlaylistWithPerSegmentKeysByteForByte() {
    let key = "keys/0123456789abcdef0123456789abcdef.key"
    let playlist = MediaPlaylist(
        playlistType: .vod, independentSegments: true, endList: true,
        segments: [
            MediaSegment(duration: 6.006, uri: "00000.ts", key: SegmentKey(method: .aes128, uri: key, iv: ivFor(0))),
            MediaSegment(duration: 6, uri: "00001.ts", key: SegmentKey(method: .aes128, uri: key, iv: ivFor(1))),
            MediaSegment(duration: 2.0416666667, uri: "00002.ts", key: SegmentKey(method: .aes128, uri: key, iv: ivFor(2))),
        ])
    let expected = """
        #EXTM3U
        #EXT-X-VERSION:3
        #EXT-X-TARGETDURATION:6
        #EXT-X-MEDIA-SEQUENCE:0
        #EXT-X-PLAYLIST-TYPE:VOD
        #EXT-X-INDEPENDENT-SEGMENTS
        #EXT-X-KEY:METHOD=AES-128,URI="\(key)",IV=0x00000000000000000000000000000000
        #EXTINF:6.006,
        00000.ts
        #EXT-X-KEY:METHOD=AES-128,URI="\(key)",IV=0x00000000000000000000000000000001
        #EXTINF:6.000,
        00001.ts
        #EXT-X-KEY:METHOD=AES-128,URI="\(key)",IV=0x00000000000000000000000000000002
        #EXTINF:2.041667,
        00002.ts
        #EXT-X-ENDLIST

        """
    #expect(playlist.render() == expected)
}

@Test func sharedKeyIsWrittenOnceAndClearedWithMethodNone() {
    let key = SegmentKey(method: .aes128, uri: "k.key")
    let playlist = MediaPlaylist(segments: [
        MediaSegment(duration: 4, uri: "a.ts", key: key),
        MediaSegment(duration: 4, uri: "b.ts", key: key),
        MediaSegment(duration: 4, uri: "c.ts", discontinuity: true),
    ])
    let text = playlist.render()
    #expect(text.split(separator: "\n").filter { $0.hasPrefix("#EXT-X-KEY") } == ["#EXT-X-KEY:METHOD=AES-128,URI=\"k.key\"", "#EXT-X-KEY:METHOD=NONE"])
    #expect(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:4.000,\nc.ts\n"))
    #expect(!text.contains("#EXT-X-ENDLIST"))
}

@Test func mediaPlaylistRoundTrip() throws {
    let key = SegmentKey(method: .aes128, uri: "keys/a.key", iv: ivFor(9), keyFormat: "identity")
    let original = MediaPlaylist(
        version: 5, targetDuration: 7, mediaSequence: 12, playlistType: .event, independentSegments: true, endList: true,
        segments: [
            MediaSegment(duration: 6.5, uri: "00012.ts", key: key, title: "first, with a comma"),
            MediaSegment(duration: 5.005, uri: "00013.ts", key: key, byteRange: ByteRange(length: 1000, offset: 0)),
            MediaSegment(duration: 1.25, uri: "00014.ts", byteRange: ByteRange(length: 500), discontinuity: true),
            MediaSegment(duration: 2, uri: "https://cdn.example/x.ts?a=1,b=2", key: SegmentKey(method: .aes128, uri: "keys/b.key")),
        ])
    let parsed = try MediaPlaylist.parse(original.render())
    #expect(parsed == original)
    #expect(parsed.render() == original.render())
}

@Test func parsesCRLFAndIgnoresCommentsAndUnknownTags() throws {
    let text = "#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r\n# a comment\r\n#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00Z\r\n#EXTINF:4,\r\n\r\na.ts\r\n"
    let playlist = try MediaPlaylist.parse(text)
    #expect(playlist.segments == [MediaSegment(duration: 4, uri: "a.ts")])
    #expect(playlist.version == nil && playlist.targetDuration == 4 && !playlist.endList)
}

@Test func segmentTagsBetweenEXTINFAndURIApplyToThatSegment() throws {
    let text = """
        #EXTM3U
        #EXT-X-VERSION:4
        #EXT-X-TARGETDURATION:4
        #EXTINF:4.0,
        #EXT-X-BITRATE:800
        #EXT-X-BYTERANGE:100@0
        #EXT-X-DISCONTINUITY
        a.ts
        #EXT-X-ENDLIST
        """
    let playlist = try MediaPlaylist.parse(text)
    #expect(playlist.segments == [MediaSegment(duration: 4, uri: "a.ts", byteRange: ByteRange(length: 100, offset: 0), discontinuity: true)])
    #expect(playlist.endList)
}

@Test(arguments: [
    ([6.0, 6.4, 2.1], 6),
    ([6.5], 7),
    ([6.49], 6),
    ([0.2], 1),
    ([], 1),
    ([10.0, 9.99], 10),
])
func computedTargetDuration(durations: [Double], expected: Int) {
    let playlist = MediaPlaylist(segments: durations.enumerated().map { MediaSegment(duration: $1, uri: "\($0).ts") })
    #expect(playlist.resolvedTargetDuration == expected)
    #expect(playlist.render().contains("#EXT-X-TARGETDURATION:\(expected)\n"))
}

@Test func explicitTargetDurationAndVersionWin() {
    let playlist = MediaPlaylist(version: 7, targetDuration: 10, segments: [MediaSegment(duration: 2, uri: "a.ts")])
    #expect(playlist.render().hasPrefix("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:10\n"))
}

@Test func versionComputation() {
    let plain = MediaSegment(duration: 6, uri: "a.ts")
    #expect(MediaPlaylist(segments: [plain]).resolvedVersion == 3)
    var withIV = plain
    withIV.key = SegmentKey(method: .aes128, uri: "k", iv: ivFor(1))
    #expect(MediaPlaylist(segments: [withIV]).resolvedVersion == 3)
    var ranged = plain
    ranged.byteRange = ByteRange(length: 10, offset: 0)
    #expect(MediaPlaylist(segments: [plain, ranged]).resolvedVersion == 4)
    var formatted = withIV
    formatted.key?.keyFormat = "identity"
    #expect(MediaPlaylist(segments: [ranged, formatted]).resolvedVersion == 5)
    #expect(MediaPlaylist(version: 6, segments: [plain]).resolvedVersion == 6)
}

/// Found by fuzzing (fuzz/crashes/media-playlist): a duration beyond Int trapped the check
/// against the target duration instead of failing it.
@Test func hugeEXTINFDurationIsRefusedNotTrapped() {
    let digits = String(repeating: "9", count: 400)
    for duration in ["3000000000000000000000000000000000000000000000000000000000000.5", "9223372036854775807", digits] {
        let error = parseError("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXTINF:\(duration),\nb.ts\n")
        #expect(error?.line == 4)
        #expect(error?.message.hasSuffix("rounds to \(Int.max), above EXT-X-TARGETDURATION 4") == true, "\(String(describing: error))")
    }
    let written = MediaPlaylist(segments: [MediaSegment(duration: 1e300, uri: "a.ts"), MediaSegment(duration: .infinity, uri: "b.ts")])
    #expect(written.resolvedTargetDuration == Int.max)
}

@Test(arguments: [
    ("#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n", 1, "playlist must start with #EXTM3U"),
    ("\n#EXTM3U\n", 1, "playlist must start with #EXTM3U"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\n#EXTINF:6,\nb.ts\n", 3, "EXTINF is not followed by a URI"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\n#EXT-X-ENDLIST\n", 3, "EXTINF is not followed by a URI"),
    ("#EXTM3U\n#EXT-X-VERSION:2\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\na.ts\n", 4,
     "a decimal EXTINF duration needs EXT-X-VERSION 3 or higher, the playlist declares 2"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\n", 3, "EXTINF is not followed by a URI"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\na.ts\n", 3, "URI 'a.ts' is not preceded by EXTINF"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:abc,\na.ts\n", 3, "EXTINF duration 'abc' is not a number"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:-1,\na.ts\n", 3, "EXTINF duration '-1' is not a number"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6\na.ts\n", 3, "EXTINF needs a comma after the duration"),
    ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x0102\n#EXTINF:6,\na.ts\n",
     4, "IV must be 16 bytes (32 hex digits), got 2"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0xZZ000000000000000000000000000000\n", 3,
     "IV '0xZZ000000000000000000000000000000' is not a hexadecimal sequence"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-KEY:METHOD=AES-128\n", 3, "missing required attribute URI"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k\"\n", 3, "unsupported EXT-X-KEY METHOD 'SAMPLE-AES'"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-KEY:METHOD=AES-128,URI=k\n", 3, "URI must be a quoted string"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\n", 3, "attribute URI has an unterminated quoted string"),
    ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.000,\na.ts\n#EXTINF:7.2,\nb.ts\n", 6,
     "EXTINF duration 7.200 rounds to 7, above EXT-X-TARGETDURATION 6"),
    ("#EXTM3U\n#EXTINF:6.5,\na.ts\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n", 2,
     "EXTINF duration 6.500 rounds to 7, above EXT-X-TARGETDURATION 6"),
    ("#EXTM3U\n#EXTINF:6,\na.ts\n", 3, "missing EXT-X-TARGETDURATION"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-TARGETDURATION:7\n", 3, "duplicate EXT-X-TARGETDURATION (first on line 2)"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:six\n", 2, "EXT-X-TARGETDURATION 'six' is not a decimal integer"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n#EXT-X-MEDIA-SEQUENCE:3\n", 5, "EXT-X-MEDIA-SEQUENCE must appear before the first segment"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:LIVE\n", 3, "EXT-X-PLAYLIST-TYPE must be VOD or EVENT, got 'LIVE'"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-BYTERANGE:10@x\n", 3, "EXT-X-BYTERANGE '10@x' is not <length>[@<offset>]"),
    ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-BYTERANGE:10@0\n#EXTINF:6,\na.ts\n", 4,
     "EXT-X-BYTERANGE needs EXT-X-VERSION 4 or higher, the playlist declares 3"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:5.5,\na.ts\n", 3,
     "a decimal EXTINF duration needs EXT-X-VERSION 3 or higher, the playlist has no EXT-X-VERSION (so version 1)"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", 2, "EXT-X-STREAM-INF belongs in a multivariant playlist, not a media playlist"),
])
func mediaParseErrors(text: String, line: Int, message: String) {
    let error = parseError(text)
    #expect(error?.line == line)
    #expect(error?.message == message)
    #expect(error?.description == "line \(line): \(message)")
}

@Test func parseErrorDescription() {
    #expect(HLSParseError(line: 7, message: "EXTINF duration 'abc' is not a number").description == "line 7: EXTINF duration 'abc' is not a number")
}

@Test func segmentNaming() {
    #expect(SegmentNaming.fileName(index: 0) == "00000.ts")
    #expect(SegmentNaming.fileName(index: 1) == "00001.ts")
    #expect(SegmentNaming.fileName(index: 99_999) == "99999.ts")
    #expect(SegmentNaming.fileName(index: 123_456) == "123456.ts")
    #expect(SegmentNaming.fileName(index: 7, extension: "m4s") == "00007.m4s")
}

@Test func startOffsetRoundTrips() throws {
    let playlist = MediaPlaylist(
        targetDuration: 6, playlistType: .event, independentSegments: true, startOffset: 0,
        segments: [MediaSegment(duration: 1, uri: "00000.ts")]
    )
    let text = playlist.render()
    #expect(text.contains("#EXT-X-START:TIME-OFFSET=0.000,PRECISE=YES\n"))
    #expect(!text.contains("#EXT-X-ENDLIST"))
    #expect(try MediaPlaylist.parse(text).startOffset == 0)
    #expect(try MediaPlaylist.parse(text.replacingOccurrences(of: "TIME-OFFSET=0.000", with: "TIME-OFFSET=-12.5")).startOffset == -12.5)
    #expect(parseError(text.replacingOccurrences(of: "TIME-OFFSET=0.000", with: "TIME-OFFSET=soon"))?.message.contains("TIME-OFFSET 'soon' is not a number") == true)
}
