"""bench/hostile/generator/mp4.py: MP4 (ISO BMFF) parsed into boxes and rebuilt, and its
mutations: box sizes, table counts and entries, header fields.
"""

import struct

from .base import SIZE_VALUES_32, patch


MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta", b"mvex", b"moof", b"traf"}
# Bytes between a box's header and its child boxes.
MP4_PREFIX = {b"stsd": 8, b"dref": 8, b"meta": 4, b"avc1": 78, b"hvc1": 78, b"hev1": 78, b"mp4v": 78, b"mp4a": 28}


class Box:
    def __init__(self, kind, start, size, path):
        self.kind, self.start, self.size, self.path = kind, start, size, path
        self.prefix = b""
        self.children = None
        self.payload = b""

    def walk(self):
        yield self
        for child in self.children or []:
            yield from child.walk()

    def serialize(self):
        body = self.prefix + b"".join(c.serialize() for c in self.children) if self.children is not None else self.payload
        return struct.pack(">I", 8 + len(body)) + self.kind + body


def mp4_parse(data, start=0, end=None, path=""):
    end = len(data) if end is None else end
    boxes, offset = [], start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size < 8 or offset + size > end:
            break
        box = Box(kind, offset, size, path + "/" + kind.decode("latin-1"))
        if kind in MP4_CONTAINERS or kind in MP4_PREFIX:
            skip = MP4_PREFIX.get(kind, 0)
            box.prefix = data[offset + 8:offset + 8 + skip]
            box.children = mp4_parse(data, offset + 8 + skip, offset + size, box.path)
        else:
            box.payload = data[offset + 8:offset + size]
        boxes.append(box)
        offset += size
    return boxes


def mp4_all(boxes):
    for box in boxes:
        yield from box.walk()


def mp4_find(boxes, kind, nth=0):
    found = [b for b in mp4_all(boxes) if b.kind == kind]
    return found[nth] if nth < len(found) else None


def mp4_rebuilt(boxes):
    """The file again from the tree (sizes recomputed); boxes after moov keep their offsets only
    when moov is last, which is how ffmpeg writes (mdat first)."""
    return b"".join(b.serialize() for b in boxes)


def mp4_mutations(w, data):
    boxes = mp4_parse(data)
    assert mp4_rebuilt(boxes) == data, "the MP4 tree does not round-trip"

    # Box sizes: the 32-bit size of a structural box set to what a parser must not trust.
    kind = "mp4-box-size"
    rng = w.rng(kind)
    targets = [b"ftyp", b"mdat", b"moov", b"mvhd", b"trak", b"tkhd", b"edts", b"elst", b"mdia", b"mdhd", b"hdlr", b"minf",
               b"dinf", b"dref", b"stbl", b"stsd", b"avc1", b"avcC", b"mp4a", b"esds", b"stts", b"stss", b"stsc", b"stsz", b"stco",
               b"udta"]
    for target in targets:
        for nth in (0, 1):
            box = mp4_find(boxes, target, nth)
            if box is None:
                continue
            values = SIZE_VALUES_32 + [box.size - 1, box.size + 1, box.size * 16, len(data)]
            for value in rng.sample(values, 2 if target not in (b"moov", b"trak", b"stsz", b"stco") else 4):
                w.add(kind, "%s%d-size-%#x" % (target.decode(), nth, value), "mp4", patch(data, box.start, ">I", value), "any")

    # Table counts and entries: stsz/stco/stts/stsc/stss/elst/stsd/dref.
    kind = "mp4-table-count"
    rng = w.rng(kind)
    fields = [
        (b"stsz", 12, "sample_size"), (b"stsz", 16, "sample_count"), (b"stco", 12, "entry_count"), (b"stco", 16, "chunk_offset"),
        (b"stts", 12, "entry_count"), (b"stts", 16, "sample_count"), (b"stts", 20, "sample_delta"), (b"stsc", 12, "entry_count"),
        (b"stsc", 16, "first_chunk"), (b"stsc", 20, "samples_per_chunk"), (b"stsc", 24, "description_index"),
        (b"stss", 12, "entry_count"), (b"stss", 16, "sync_sample"), (b"elst", 12, "entry_count"), (b"stsd", 12, "entry_count"),
        (b"dref", 12, "entry_count"),
    ]
    for box_kind, offset, name in fields:
        for nth in (0, 1):
            box = mp4_find(boxes, box_kind, nth)
            if box is None or offset + 4 > box.size:
                continue
            original = struct.unpack(">I", data[box.start + offset:box.start + offset + 4])[0]
            values = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x00FFFFFF, original + 1, original * 1000 + 1]
            for value in rng.sample(values, 3):
                w.add(kind, "%s%d-%s-%#x" % (box_kind.decode(), nth, name, value), "mp4",
                      patch(data, box.start + offset, ">I", value & 0xFFFFFFFF), "any")

    # Header fields a decoder or scaler sizes things by.
    kind = "mp4-header-field"
    tkhd, avc1, mp4a, mdhd_audio = mp4_find(boxes, b"tkhd"), mp4_find(boxes, b"avc1"), mp4_find(boxes, b"mp4a"), mp4_find(boxes, b"mdhd", 1)
    for detail, offset, fmt, value in [
        ("tkhd-width-65535", tkhd.start + 84, ">I", 0xFFFF0000), ("tkhd-height-65535", tkhd.start + 88, ">I", 0xFFFF0000),
        ("tkhd-width-0", tkhd.start + 84, ">I", 0),
        ("avc1-width-65535", avc1.start + 32, ">H", 0xFFFF), ("avc1-height-65535", avc1.start + 34, ">H", 0xFFFF),
        ("avc1-width-0", avc1.start + 32, ">H", 0), ("avc1-depth-65535", avc1.start + 82, ">H", 0xFFFF),
        ("mp4a-channels-0", mp4a.start + 24, ">H", 0), ("mp4a-channels-65535", mp4a.start + 24, ">H", 0xFFFF),
        ("mp4a-samplesize-65535", mp4a.start + 26, ">H", 0xFFFF), ("mp4a-samplerate-0", mp4a.start + 32, ">I", 0),
        ("mvhd-timescale-0", mp4_find(boxes, b"mvhd").start + 20, ">I", 0),
        ("mdhd-video-timescale-0", mp4_find(boxes, b"mdhd").start + 20, ">I", 0),
        ("mdhd-audio-timescale-1", mdhd_audio.start + 20, ">I", 1),
        ("mdhd-audio-timescale-max", mdhd_audio.start + 20, ">I", 0xFFFFFFFF),
        ("hdlr-video-is-sound", mp4_find(boxes, b"hdlr").start + 16, ">4s", b"soun"),
        ("hdlr-audio-is-video", mp4_find(boxes, b"hdlr", 1).start + 16, ">4s", b"vide"),
        ("avc1-is-hvc1", avc1.start + 4, ">4s", b"hvc1"), ("mp4a-is-ac-3", mp4a.start + 4, ">4s", b"ac-3"),
    ]:
        w.add(kind, detail, "mp4", patch(data, offset, fmt, value), "any")
    # avcC: the parameter sets' lengths and counts.
    avcc = mp4_find(boxes, b"avcC")
    for detail, offset, fmt, value in [
        ("avcC-nal-length-size-1", avcc.start + 12, ">B", 0xFC), ("avcC-sps-count-31", avcc.start + 13, ">B", 0xFF),
        ("avcC-sps-length-65535", avcc.start + 14, ">H", 0xFFFF), ("avcC-sps-length-0", avcc.start + 14, ">H", 0),
        ("avcC-version-0", avcc.start + 8, ">B", 0),
    ]:
        w.add(kind, detail, "mp4", patch(data, offset, fmt, value), "any")
    return boxes


def mp4_replace_payload(data, kind, nth, payload):
    boxes = mp4_parse(data)
    box = mp4_find(boxes, kind, nth)
    box.payload = payload
    return mp4_rebuilt(boxes)
