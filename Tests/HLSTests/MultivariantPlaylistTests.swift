import Testing
@testable import HLS

private func parseError(_ text: String) -> HLSParseError? {
    do {
        _ = try MultivariantPlaylist.parse(text)
        return nil
    } catch {
        return error as? HLSParseError
    }
}

private let ladder = MultivariantPlaylist(
    independentSegments: true,
    renditions: [
        Rendition(type: .audio, groupID: "aac", name: "English", language: "en", isDefault: true, autoselect: true, uri: "audio/index.m3u8", channels: "2"),
        Rendition(type: .closedCaptions, groupID: "cc", name: "CC1", instreamID: "CC1"),
    ],
    variants: [
        VariantStream(uri: "1080p/index.m3u8", bandwidth: 6_600_000, averageBandwidth: 6_128_000, codecs: ["avc1.64002a", "mp4a.40.2"],
                      resolution: Resolution(width: 1920, height: 1080), frameRate: 29.97, audioGroup: "aac"),
        VariantStream(uri: "360p/index.m3u8", bandwidth: 400_000, codecs: ["avc1.4d401e"], resolution: Resolution(width: 640, height: 360), frameRate: 25),
    ])

@Test func rendersMultivariantPlaylist() {
    let expected = """
        #EXTM3U
        #EXT-X-VERSION:1
        #EXT-X-INDEPENDENT-SEGMENTS
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"
        #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",DEFAULT=NO,AUTOSELECT=NO,INSTREAM-ID="CC1"
        #EXT-X-STREAM-INF:BANDWIDTH=6600000,AVERAGE-BANDWIDTH=6128000,CODECS="avc1.64002a,mp4a.40.2",RESOLUTION=1920x1080,FRAME-RATE=29.970,AUDIO="aac"
        1080p/index.m3u8
        #EXT-X-STREAM-INF:BANDWIDTH=400000,CODECS="avc1.4d401e",RESOLUTION=640x360,FRAME-RATE=25.000
        360p/index.m3u8

        """
    #expect(ladder.render() == expected)
}

@Test func multivariantRoundTrip() throws {
    var original = ladder
    original.version = 6
    let parsed = try MultivariantPlaylist.parse(original.render())
    #expect(parsed == original)
}

@Test func quotedCommasInAttributeLists() throws {
    let text = """
        #EXTM3U
        #EXT-X-STREAM-INF:CODECS="avc1.4d401f,mp4a.40.2",BANDWIDTH=1280000,RESOLUTION=1280x720,X-UNKNOWN="a,b=c"
        low/index.m3u8
        """
    let playlist = try MultivariantPlaylist.parse(text)
    #expect(playlist.variants.count == 1)
    #expect(playlist.variants[0].codecs == ["avc1.4d401f", "mp4a.40.2"])
    #expect(playlist.variants[0].bandwidth == 1_280_000)
    #expect(playlist.variants[0].resolution == Resolution(width: 1280, height: 720))
    #expect(playlist.variants[0].uri == "low/index.m3u8")
}

@Test(arguments: [
    ("#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", 1, "playlist must start with #EXTM3U"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=lots\nv.m3u8\n", 2, "BANDWIDTH 'lots' is not a decimal integer"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=-5\nv.m3u8\n", 2, "BANDWIDTH '-5' is not a decimal integer"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\nv.m3u8\n", 2, "missing required attribute BANDWIDTH"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,BANDWIDTH=2\nv.m3u8\n", 2, "attribute BANDWIDTH appears twice"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920\nv.m3u8\n", 2, "RESOLUTION '1920' is not <width>x<height>"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,FRAME-RATE=fast\nv.m3u8\n", 2, "FRAME-RATE 'fast' is not a number"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=avc1\nv.m3u8\n", 2, "CODECS must be a quoted string"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,\nv.m3u8\n", 2, "attribute list ends with a comma"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n\n# comment\n", 2, "EXT-X-STREAM-INF is not followed by a URI"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\nv.m3u8\n", 2, "EXT-X-STREAM-INF is not followed by a URI"),
    ("#EXTM3U\nv.m3u8\n", 2, "URI 'v.m3u8' is not preceded by EXT-X-STREAM-INF"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud\"\nv.m3u8\n", 2, "AUDIO group 'aud' has no EXT-X-MEDIA with TYPE=AUDIO"),
    ("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"x\"\n", 2, "missing required attribute GROUP-ID"),
    ("#EXTM3U\n#EXT-X-MEDIA:TYPE=MUSIC,GROUP-ID=\"a\",NAME=\"x\"\n", 2, "EXT-X-MEDIA TYPE 'MUSIC' is not AUDIO, VIDEO, SUBTITLES or CLOSED-CAPTIONS"),
    ("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",DEFAULT=YES,AUTOSELECT=NO\n", 2, "EXT-X-MEDIA with DEFAULT=YES must have AUTOSELECT=YES"),
    ("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",DEFAULT=maybe\n", 2, "DEFAULT must be YES or NO, got 'maybe'"),
    ("#EXTM3U\n#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"c\",NAME=\"x\",INSTREAM-ID=\"CC1\",URI=\"c.m3u8\"\n", 2,
     "EXT-X-MEDIA with TYPE=CLOSED-CAPTIONS must not have a URI"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n", 2, "EXT-X-TARGETDURATION belongs in a media playlist, not a multivariant playlist"),
])
func multivariantParseErrors(text: String, line: Int, message: String) {
    let error = parseError(text)
    #expect(error?.line == line)
    #expect(error?.message == message)
}
