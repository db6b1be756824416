"""bench/hostile/generator/crafted.py: files that name other files or URLs (HLS media and
master playlists, DASH manifests, ffconcat lists, SDP, MP4 data references) and images (single
pictures and sequences).
"""

import base64
import struct
import zlib
from pathlib import Path

from .base import ffmpeg_once
from .mp4 import mp4_all, mp4_find, mp4_parse, mp4_rebuilt


def crafted(w, bases, canary_dir, port):
    canary_ts = str(Path(canary_dir) / "canary.ts")
    canary_mp4 = str(Path(canary_dir) / "canary.mp4")
    url = "http://127.0.0.1:%d" % port

    def media(*segments, head=""):
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4", "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
        if head:
            lines.append(head)
        for segment in segments:
            lines += ["#EXTINF:3.0,", segment]
        return "\n".join(lines + ["#EXT-X-ENDLIST", ""])

    def add(kind, detail, ext, text):
        w.add(kind, detail, ext, text.encode() if isinstance(text, str) else text, "not-accepted", names_others=True)

    kind = "hls-media"
    add(kind, "file-uri", "m3u8", media("file:" + canary_ts))
    add(kind, "absolute-path", "m3u8", media(canary_ts))
    add(kind, "http-loopback", "m3u8", media(url + "/segment0.ts"))
    add(kind, "relative-path", "m3u8", media("../../../../../../../.." + canary_ts))
    add(kind, "key-uri-http", "m3u8", media("file:" + canary_ts, head='#EXT-X-KEY:METHOD=AES-128,URI="%s/key",IV=0x0' % url))
    add(kind, "map-uri-file", "m3u8", media("file:" + canary_mp4, head='#EXT-X-MAP:URI="file:%s"' % canary_mp4).replace("VERSION:3", "VERSION:7"))
    add(kind, "byterange", "m3u8", media(canary_ts, head="#EXT-X-BYTERANGE:18800@0"))
    add(kind, "crlf", "m3u8", media("file:" + canary_ts, url + "/segment1.ts").replace("\n", "\r\n"))
    add(kind, "concat-protocol", "m3u8", media("concat:%s|%s" % (canary_ts, canary_ts)))
    add(kind, "subfile-protocol", "m3u8", media("subfile,,start,0,end,0,,:" + canary_ts))
    add(kind, "crypto-protocol", "m3u8", media("crypto+file:" + canary_ts))
    add(kind, "cache-http", "m3u8", media("cache:%s/segment2.ts" % url))

    kind = "hls-master"
    add(kind, "variant-http", "m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x240\n%s/v0.m3u8\n" % url)
    add(kind, "variant-file", "m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nfile:%s\n" % canary_ts)
    add(kind, "media-audio-http", "m3u8",
        '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="x",DEFAULT=YES,URI="%s/a.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO="a"\nfile:%s\n' % (url, canary_ts))
    add(kind, "iframe-stream-http", "m3u8",
        '#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="%s/i.m3u8"\n#EXT-X-STREAM-INF:BANDWIDTH=1\n%s/v.m3u8\n' % (url, url))

    kind = "hls-data-uri"
    inner = media("file:" + canary_ts, url + "/segment3.ts")
    add(kind, "master-variant-data-uri", "m3u8",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\ndata:application/vnd.apple.mpegurl;base64,%s\n" % base64.b64encode(inner.encode()).decode())
    # The canary clip's own bytes as a data: segment: read, it would publish.
    add(kind, "media-segment-data-uri", "m3u8", media("data:video/mp2t;base64," + base64.b64encode(bases["ts"]).decode()))
    nested = media("data:video/mp2t;base64," + base64.b64encode(bases["ts"][:188 * 200]).decode())
    add(kind, "master-data-media-data-segment", "m3u8",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\ndata:application/x-mpegurl;base64,%s\n" % base64.b64encode(nested.encode()).decode())

    kind = "dash"
    mpd = ('<?xml version="1.0" encoding="utf-8"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
           'profiles="urn:mpeg:dash:profile:isoff-live:2011" mediaPresentationDuration="PT3S" minBufferTime="PT1S">\n%s\n'
           '<Period id="0"><AdaptationSet mimeType="video/mp4" segmentAlignment="true">%s</AdaptationSet></Period></MPD>\n')
    add(kind, "baseurl-http", "mpd", mpd % ("<BaseURL>%s/</BaseURL>" % url,
        '<Representation id="v" bandwidth="1" codecs="avc1.42c00d" width="320" height="240"><SegmentBase indexRange="0-100"/></Representation>'))
    add(kind, "template-file", "mpd", mpd % ("", '<SegmentTemplate timescale="1" duration="3" startNumber="1" initialization="file:%s" '
        'media="file:%s"/><Representation id="v" bandwidth="1" codecs="avc1.42c00d" width="320" height="240"/>' % (canary_mp4, canary_ts)))
    add(kind, "segmentlist-http", "mpd", mpd % ("", '<Representation id="v" bandwidth="1" codecs="avc1.42c00d" width="320" height="240">'
        '<SegmentList duration="3" timescale="1"><Initialization sourceURL="%s/init.mp4"/><SegmentURL media="%s/s1.m4s"/></SegmentList>'
        '</Representation>' % (url, url)))
    add(kind, "baseurl-file-folder", "mpd", mpd % ("<BaseURL>file://%s/</BaseURL>" % canary_dir,
        '<Representation id="v" bandwidth="1" codecs="avc1.42c00d"><BaseURL>canary.mp4</BaseURL><SegmentBase/></Representation>'))
    add(kind, "no-profile", "mpd", ('<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'profiles="urn:mpeg:dash:profile:full:2011" mediaPresentationDuration="PT3S"><BaseURL>%s/</BaseURL><Period><AdaptationSet>'
        '<Representation id="1" bandwidth="1"><BaseURL>file:%s</BaseURL></Representation></AdaptationSet></Period></MPD>\n' % (url, canary_ts)))

    kind = "ffconcat"
    add(kind, "file-path", "ffconcat", "ffconcat version 1.0\nfile %s\n" % canary_ts)
    add(kind, "file-uri", "ffconcat", "ffconcat version 1.0\nfile 'file:%s'\nduration 3\n" % canary_mp4)
    add(kind, "http", "ffconcat", "ffconcat version 1.0\nfile %s/a.ts\nfile %s\n" % (url, canary_ts))
    add(kind, "directives", "ffconcat", "ffconcat version 1.0\nstream\nexact_stream_id 0x100\nfile %s\ninpoint 0\noutpoint 2\n"
        "file_packet_metadata key=value\noption safe 0\n" % canary_ts)

    kind = "sdp"
    sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=hostile\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n%s"
    add(kind, "rtp-h264-loopback", "sdp", sdp % ("m=video %d RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n" % port))
    add(kind, "rtp-pcmu-loopback", "sdp", sdp % ("m=audio %d RTP/AVP 0\r\n" % port))
    add(kind, "control-rtsp", "sdp", sdp % ("a=control:rtsp://127.0.0.1:%d/x\r\nm=video %d RTP/AVP 96\r\na=rtpmap:96 MP4V-ES/90000\r\n" % (port, port)))

    # A real container naming another file: MP4 data references (dref 'url ') to the canary copy of
    # the same clip, with this file's own samples zeroed. Followed, the reference would publish.
    kind = "mp4-dref"
    for label, target in [("file-uri", "file://" + canary_mp4), ("absolute-path", canary_mp4), ("http", url + "/canary.mp4"),
                          ("relative", "../../../../../../.." + canary_mp4)]:
        boxes = mp4_parse(bases["mp4"])
        for url_box in [b for b in mp4_all(boxes) if b.kind == b"url "]:
            url_box.payload = b"\0\0\0\0" + target.encode() + b"\0"
        out = bytearray(mp4_rebuilt(boxes))
        mdat = mp4_find(boxes, b"mdat")
        out[mdat.start + 8:mdat.start + mdat.size] = bytes(mdat.size - 8)
        w.add(kind, label, "mp4", bytes(out), "fail", names_others=True)


def images(w, work):
    kind_expect = "not-accepted"
    source = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=5:duration=2"]
    made = {}
    for label, ext, args in [
        ("png", "png", ["-frames:v", "1", "-f", "image2", "-c:v", "png"]),
        ("jpeg", "jpg", ["-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "-pix_fmt", "yuvj420p"]),
        ("png-sequence", "png", ["-frames:v", "8", "-f", "image2pipe", "-c:v", "png"]),
        ("mjpeg-sequence", "mjpeg", ["-frames:v", "8", "-f", "mjpeg", "-pix_fmt", "yuvj420p"]),
        ("gif", "gif", ["-frames:v", "8", "-f", "gif"]),
        ("bmp", "bmp", ["-frames:v", "1", "-f", "image2", "-c:v", "bmp"]),
        ("webp", "webp", ["-frames:v", "1", "-f", "webp"]),
        ("tiff", "tiff", ["-frames:v", "1", "-f", "image2", "-c:v", "tiff"]),
    ]:
        target = work / ("image." + label + "." + ext)
        made[label] = ffmpeg_once(target, *source, *args, "-fflags", "+bitexact", "-flags:v", "+bitexact", "-threads", "1")
        w.add("image", label, ext, made[label], kind_expect)
    # A PNG whose IHDR declares 30000x30000 (the CRC fixed, so only the size is wrong).
    png = bytearray(made["png"])
    struct.pack_into(">II", png, 16, 30000, 30000)
    struct.pack_into(">I", png, 29, zlib.crc32(bytes(png[12:29])) & 0xFFFFFFFF)
    w.add("image", "png-ihdr-30000x30000", "png", bytes(png), kind_expect)
