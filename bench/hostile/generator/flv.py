"""bench/hostile/generator/flv.py: FLV tags and their mutations: tag and previous-tag sizes,
the header offset, codec ids, sequence headers, onMetaData numbers.
"""

import math
import struct

from .base import patch


class Tag:
    def __init__(self, start, kind, size):
        self.start, self.kind, self.size = start, kind, size


def flv_tags(data):
    offset = struct.unpack(">I", data[5:9])[0] + 4
    tags = []
    while offset + 11 <= len(data):
        kind = data[offset]
        size = int.from_bytes(data[offset + 1:offset + 4], "big")
        tags.append(Tag(offset, kind, size))
        offset += 11 + size + 4
    return tags


def flv_mutations(w, data):
    tags = flv_tags(data)
    script = [t for t in tags if t.kind == 18]
    video = [t for t in tags if t.kind == 9]
    audio = [t for t in tags if t.kind == 8]
    kind = "flv-tag-size"
    rng = w.rng(kind)
    targets = [("script", script[0]), ("video-seqhdr", video[0]), ("audio-seqhdr", audio[0]), ("video-n", rng.choice(video[1:])),
               ("audio-n", rng.choice(audio[1:]))]
    for label, tag in targets:
        for value in rng.sample([0, 1, 0xFFFFFF, tag.size + 1, tag.size - 1, 0x800000], 4):
            out = bytearray(data)
            out[tag.start + 1:tag.start + 4] = value.to_bytes(3, "big")
            w.add(kind, "%s-datasize-%#x" % (label, value), "flv", bytes(out), "any")
        previous = tag.start + 11 + tag.size
        for value in (0, 0xFFFFFFFF):
            w.add(kind, "%s-prevtagsize-%#x" % (label, value), "flv", patch(data, previous, ">I", value), "any")
    for value in (0, 8, 0xFFFFFFFF, 100000):
        w.add(kind, "header-dataoffset-%#x" % value, "flv", patch(data, 5, ">I", value), "any")

    kind = "flv-tag-field"
    v0, a0 = video[0].start + 11, audio[0].start + 11
    for label, offset, value in [
        ("video-seqhdr-codec-15", v0, (data[v0] & 0xF0) | 0x0F), ("video-seqhdr-codec-hevc", v0, (data[v0] & 0xF0) | 12),
        ("video-seqhdr-packettype-5", v0 + 1, 5), ("video-seqhdr-avcc-sps-count-31", v0 + 5 + 5, 0xFF),
        ("video-seqhdr-avcc-version-0", v0 + 5, 0),
        ("audio-seqhdr-format-15", a0, (data[a0] & 0x0F) | 0xF0), ("audio-seqhdr-format-pcm", a0, data[a0] & 0x0F),
        ("audio-seqhdr-asc-rate-index-15", a0 + 2, (data[a0 + 2] & 0xF8) | 0x07),
        ("audio-seqhdr-asc-object-0", a0 + 2, data[a0 + 2] & 0x07),
        ("tag-type-255", video[1].start, 0xFF), ("tag-streamid-1", video[1].start + 8, 1),
    ]:
        out = bytearray(data)
        out[offset] = value
        if label == "audio-seqhdr-asc-rate-index-15":
            out[offset + 1] = (out[offset + 1] & 0x7F) | 0x80
        w.add(kind, label, "flv", bytes(out), "any")
    # onMetaData numbers (AMF0 doubles after each key).
    body = data[script[0].start + 11:script[0].start + 11 + script[0].size]
    for key in (b"width", b"height", b"duration", b"framerate", b"videodatarate", b"audiosamplerate", b"filesize"):
        at = body.find(struct.pack(">H", len(key)) + key)
        if at < 0 or body[at + 2 + len(key)] != 0:
            continue
        offset = script[0].start + 11 + at + 2 + len(key) + 1
        for label, number in [("1e300", 1e300), ("negative", -1.0), ("nan", math.nan), ("inf", math.inf)]:
            w.add(kind, "meta-%s-%s" % (key.decode(), label), "flv", patch(data, offset, ">d", number), "any")
    return tags
