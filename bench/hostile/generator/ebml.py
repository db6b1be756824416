"""bench/hostile/generator/ebml.py: Matroska and WebM (EBML) elements parsed, their
mutations (element sizes and values), and a Matroska file with thousands of audio tracks written
here (the ffmpeg CLI stops at 1,000).
"""

import math
import struct


EBML_MASTERS = {
    0x1A45DFA3, 0x18538067, 0x114D9B74, 0x4DBB, 0x1549A966, 0x1654AE6B, 0xAE, 0xE0, 0xE1, 0x6D80, 0x6240, 0x1F43B675, 0xA0,
    0x1C53BB6B, 0xBB, 0xB7, 0x1254C367, 0x7373, 0x63C0, 0x67C8, 0x1043A770, 0x1941A469, 0x55B0,
}
EBML_NAMES = {
    0x1A45DFA3: "EBML", 0x4282: "DocType", 0x18538067: "Segment", 0x114D9B74: "SeekHead", 0x4DBB: "Seek", 0x53AC: "SeekPosition",
    0x1549A966: "Info", 0x2AD7B1: "TimecodeScale", 0x4489: "Duration", 0x1654AE6B: "Tracks", 0xAE: "TrackEntry", 0xD7: "TrackNumber",
    0x83: "TrackType", 0x86: "CodecID", 0x63A2: "CodecPrivate", 0xE0: "Video", 0xB0: "PixelWidth", 0xBA: "PixelHeight", 0xE1: "Audio",
    0xB5: "SamplingFrequency", 0x9F: "Channels", 0x6264: "BitDepth", 0x23E383: "DefaultDuration", 0x56AA: "CodecDelay", 0x56BB: "SeekPreRoll",
    0x1F43B675: "Cluster", 0xE7: "Timecode", 0xA3: "SimpleBlock", 0xA0: "BlockGroup", 0xA1: "Block", 0x1C53BB6B: "Cues", 0xBB: "CuePoint",
    0xB3: "CueTime", 0xB7: "CueTrackPositions", 0xF1: "CueClusterPosition", 0x1254C367: "Tags", 0x7373: "Tag", 0xEC: "Void",
}


def vint_length(first):
    for length in range(1, 9):
        if first & (0x80 >> (length - 1)):
            return length
    return 0


def vint_encode(value, length):
    return ((1 << (7 * length)) | value).to_bytes(length, "big")


class Element:
    def __init__(self, ident, start, id_len, size_len, size, data_start):
        self.ident, self.start, self.id_len, self.size_len, self.size, self.data_start = ident, start, id_len, size_len, size, data_start
        self.children = None

    @property
    def name(self):
        return EBML_NAMES.get(self.ident, "%X" % self.ident)

    def walk(self):
        yield self
        for child in self.children or []:
            yield from child.walk()


def ebml_parse(data, start=0, end=None):
    end = len(data) if end is None else end
    elements, offset = [], start
    while offset < end:
        id_len = vint_length(data[offset])
        if id_len == 0 or id_len > 4 or offset + id_len >= end:
            break
        ident = int.from_bytes(data[offset:offset + id_len], "big")
        size_len = vint_length(data[offset + id_len])
        if size_len == 0 or offset + id_len + size_len > end:
            break
        raw = int.from_bytes(data[offset + id_len:offset + id_len + size_len], "big") & ((1 << (7 * size_len)) - 1)
        data_start = offset + id_len + size_len
        unknown = raw == (1 << (7 * size_len)) - 1
        size = end - data_start if unknown else raw
        element = Element(ident, offset, id_len, size_len, raw, data_start)
        if ident in EBML_MASTERS:
            element.children = ebml_parse(data, data_start, min(end, data_start + size))
        elements.append(element)
        offset = data_start + size
    return elements


def ebml_all(elements):
    for element in elements:
        yield from element.walk()


def ebml_find(elements, ident, nth=0):
    found = [e for e in ebml_all(elements) if e.ident == ident]
    return found[nth] if nth < len(found) else None


def ebml_set_size(data, element, value):
    out = bytearray(data)
    out[element.start + element.id_len:element.data_start] = vint_encode(value, element.size_len)
    return bytes(out)


def ebml_set_value(data, element, raw):
    """Replaces an element's value by `raw` bytes of the same length."""
    assert len(raw) == element.size
    out = bytearray(data)
    out[element.data_start:element.data_start + element.size] = raw
    return bytes(out)


def ebml_mutations(w, ext, data):
    elements = ebml_parse(data)
    kind = ext + "-ebml-size"
    rng = w.rng(kind)
    targets = [0x1A45DFA3, 0x4282, 0x18538067, 0x114D9B74, 0x1549A966, 0x2AD7B1, 0x4489, 0x1654AE6B, 0xAE, 0x86, 0x63A2, 0xE0, 0xB0, 0xE1,
               0x1F43B675, 0xE7, 0xA3, 0xA0, 0xA1, 0x1C53BB6B, 0xBB, 0x1254C367]
    for ident in targets:
        found = [e for e in ebml_all(elements) if e.ident == ident]
        if not found:
            continue
        instances = [found[0]] + ([rng.choice(found[1:])] if len(found) > 1 else [])
        for element in instances:
            top = (1 << (7 * element.size_len)) - 1
            values = {"unknown": top, "max": top - 1, "zero": 0, "plus1": min(element.size + 1, top - 1), "minus1": max(element.size - 1, 0),
                      "times4": min(element.size * 4, top - 1), "half-range": 1 << (7 * element.size_len - 1)}
            for label in rng.sample(sorted(values), 3 if ident in (0x18538067, 0x1F43B675, 0xA3, 0x1654AE6B) else 2):
                w.add(kind, "%s@%d-%s" % (element.name, element.start, label), ext, ebml_set_size(data, element, values[label]), "any")

    kind = ext + "-ebml-value"
    rng = w.rng(kind)

    def uint_values(element):
        top = (1 << (8 * element.size)) - 1
        return {"0": 0, "max": top, "1": 1}

    for ident in (0xB0, 0xBA, 0xD7, 0x83, 0x9F, 0x2AD7B1, 0xE7, 0x23E383, 0x56AA, 0x56BB, 0x6264):
        for nth in (0, 1):
            element = ebml_find(elements, ident, nth)
            if element is None or element.size == 0 or element.size > 8:
                continue
            values = uint_values(element)
            for label in sorted(values):
                w.add(kind, "%s%d-%s" % (element.name, nth, label), ext,
                      ebml_set_value(data, element, values[label].to_bytes(element.size, "big")), "any")
    for ident in (0xB5, 0x4489):
        element = ebml_find(elements, ident)
        if element is None or element.size not in (4, 8):
            continue
        fmt = ">f" if element.size == 4 else ">d"
        for label, value in [("0", 0.0), ("negative", -1.0), ("inf", math.inf), ("nan", math.nan), ("1e30", 1e30)]:
            w.add(kind, "%s-%s" % (element.name, label), ext, ebml_set_value(data, element, struct.pack(fmt, value)), "any")
    codec = ebml_find(elements, 0x86)
    for label, text in [("V_MS_VFW", b"V_MS/VFW/FOURCC"), ("S_TEXT", b"S_TEXT/UTF8"), ("A_PCM", b"A_PCM/INT/LIT"), ("empty", b"")]:
        raw = (text + b"\0" * codec.size)[:codec.size]
        w.add(kind, "CodecID-%s" % label, ext, ebml_set_value(data, codec, raw), "any")
    # A SimpleBlock's track number and relative timecode.
    blocks = [e for e in ebml_all(elements) if e.ident == 0xA3 and e.size > 4]
    for label, edit in [("track-0", lambda b: b"\x80" + b[1:]), ("track-127", lambda b: b"\xff" + b[1:]),
                        ("timecode-max", lambda b: b[:1] + b"\x7f\xff" + b[3:]), ("timecode-min", lambda b: b[:1] + b"\x80\x00" + b[3:]),
                        ("lacing-ebml", lambda b: b[:3] + bytes([b[3] | 0x06]) + b[4:])]:
        out = data
        for block in rng.sample(blocks, min(len(blocks), 8)):
            raw = out[block.data_start:block.data_start + block.size]
            out = ebml_set_value(out, block, edit(raw))
        w.add(kind, "SimpleBlock-%s" % label, ext, out, "any")
    return elements


# Matroska written here: the ffmpeg CLI cannot write more than 1,000 streams.
def ebml(ident, payload):
    id_bytes = ident.to_bytes((ident.bit_length() + 7) // 8, "big")
    return id_bytes + vint_encode(len(payload), 8) + payload


def ebml_uint(ident, value):
    return ebml(ident, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def mkv_many_audio_streams(count, samples=b"\0\0" * 80):
    header = ebml(0x1A45DFA3, ebml_uint(0x4286, 1) + ebml_uint(0x42F7, 1) + ebml_uint(0x42F2, 4) + ebml_uint(0x42F3, 8)
                  + ebml(0x4282, b"matroska") + ebml_uint(0x4287, 4) + ebml_uint(0x4285, 2))
    info = ebml(0x1549A966, ebml_uint(0x2AD7B1, 1000000) + ebml(0x4D80, b"hostile") + ebml(0x5741, b"hostile"))
    tracks = b"".join(
        ebml(0xAE, ebml_uint(0xD7, n) + ebml_uint(0x73C5, n) + ebml_uint(0x83, 2) + ebml(0x86, b"A_PCM/INT/LIT")
             + ebml(0xE1, ebml(0xB5, struct.pack(">d", 8000.0)) + ebml_uint(0x9F, 1) + ebml_uint(0x6264, 16)))
        for n in range(1, count + 1))
    blocks = b"".join(ebml(0xA3, vint_encode(n, 2) + b"\0\0\x80" + samples) for n in range(1, count + 1))
    cluster = ebml(0x1F43B675, ebml_uint(0xE7, 0) + blocks)
    return header + ebml(0x18538067, info + ebml(0x1654AE6B, tracks) + cluster)
