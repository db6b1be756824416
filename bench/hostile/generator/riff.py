"""bench/hostile/generator/riff.py: RIFF chunks parsed, and the mutations of AVI (chunk
sizes, avih/strh/strf/idx1 fields) and WAV (RIFF/fmt/data sizes, every fmt field).
"""

import struct

from .base import SIZE_VALUES_32, patch


class Chunk:
    def __init__(self, fourcc, start, size, form, path):
        self.fourcc, self.start, self.size, self.form, self.path = fourcc, start, size, form, path
        self.children = []

    @property
    def data_start(self):
        return self.start + 8

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


def riff_parse(data, start=0, end=None, path=""):
    end = len(data) if end is None else end
    chunks, offset = [], start
    while offset + 8 <= end:
        fourcc, size = struct.unpack("<4sI", data[offset:offset + 8])
        form = data[offset + 8:offset + 12] if fourcc in (b"RIFF", b"LIST") else None
        label = (form or fourcc).decode("latin-1").strip()
        chunk = Chunk(fourcc, offset, size, form, path + "/" + label)
        if form is not None:
            chunk.children = riff_parse(data, offset + 12, min(end, offset + 8 + size), chunk.path)
        chunks.append(chunk)
        offset += 8 + size + (size & 1)
    return chunks


def riff_all(chunks):
    for chunk in chunks:
        yield from chunk.walk()


def riff_find(chunks, label, nth=0):
    found = [c for c in riff_all(chunks) if (c.form or c.fourcc) == label]
    return found[nth] if nth < len(found) else None


def avi_mutations(w, data):
    chunks = riff_parse(data)
    kind = "avi-chunk-size"
    rng = w.rng(kind)
    movi = riff_find(chunks, b"movi")
    frames = [c for c in movi.children if c.fourcc.endswith(b"dc")]
    sounds = [c for c in movi.children if c.fourcc.endswith(b"wb")]
    targets = [("RIFF", riff_find(chunks, b"AVI ")), ("hdrl", riff_find(chunks, b"hdrl")), ("avih", riff_find(chunks, b"avih")),
               ("strl0", riff_find(chunks, b"strl")), ("strh0", riff_find(chunks, b"strh")), ("strf0", riff_find(chunks, b"strf")),
               ("strl1", riff_find(chunks, b"strl", 1)), ("strh1", riff_find(chunks, b"strh", 1)), ("strf1", riff_find(chunks, b"strf", 1)),
               ("movi", movi), ("frame0", frames[0]), ("frame-n", rng.choice(frames[1:])), ("sound0", sounds[0]),
               ("sound-n", rng.choice(sounds[1:])), ("idx1", riff_find(chunks, b"idx1")), ("INFO", riff_find(chunks, b"INFO")),
               ("JUNK", riff_find(chunks, b"JUNK"))]
    for label, chunk in targets:
        if chunk is None:
            continue
        values = SIZE_VALUES_32 + [chunk.size + 1, chunk.size - 1, chunk.size * 16]
        for value in rng.sample(values, 2):
            w.add(kind, "%s-size-%#x" % (label, value & 0xFFFFFFFF), "avi", patch(data, chunk.start + 4, "<I", value & 0xFFFFFFFF), "any")

    kind = "avi-header-field"
    avih = riff_find(chunks, b"avih").data_start
    strh_v, strf_v = riff_find(chunks, b"strh").data_start, riff_find(chunks, b"strf").data_start
    strh_a, strf_a = riff_find(chunks, b"strh", 1).data_start, riff_find(chunks, b"strf", 1).data_start
    idx1 = riff_find(chunks, b"idx1")
    for label, offset, fmt, value in [
        ("avih-usec_per_frame-0", avih, "<I", 0), ("avih-total_frames-max", avih + 16, "<I", 0xFFFFFFFF),
        ("avih-streams-0", avih + 24, "<I", 0), ("avih-streams-2000", avih + 24, "<I", 2000), ("avih-streams-max", avih + 24, "<I", 0xFFFFFFFF),
        ("avih-buffer-max", avih + 28, "<I", 0xFFFFFFFF), ("avih-width-max", avih + 32, "<I", 0x7FFFFFFF), ("avih-height-max", avih + 36, "<I", 0x7FFFFFFF),
        ("strh-video-type-auds", strh_v, "<4s", b"auds"), ("strh-video-scale-0", strh_v + 20, "<I", 0), ("strh-video-rate-0", strh_v + 24, "<I", 0),
        ("strh-video-start-max", strh_v + 28, "<I", 0xFFFFFFFF), ("strh-video-length-max", strh_v + 32, "<I", 0xFFFFFFFF),
        ("strh-video-buffer-max", strh_v + 36, "<I", 0xFFFFFFFF), ("strh-video-samplesize-max", strh_v + 44, "<I", 0xFFFFFFFF),
        ("strh-audio-scale-0", strh_a + 20, "<I", 0), ("strh-audio-rate-max", strh_a + 24, "<I", 0xFFFFFFFF),
        ("strh-audio-samplesize-max", strh_a + 44, "<I", 0xFFFFFFFF), ("strh-audio-type-vids", strh_a, "<4s", b"vids"),
        ("strf-video-width-30000", strf_v + 4, "<i", 30000), ("strf-video-height-30000", strf_v + 8, "<i", 30000),
        ("strf-video-width-negative", strf_v + 4, "<i", -320), ("strf-video-height-min", strf_v + 8, "<i", -0x80000000),
        ("strf-video-bitcount-max", strf_v + 14, "<H", 0xFFFF), ("strf-video-compression-h264", strf_v + 16, "<4s", b"H264"),
        ("strf-video-compression-unknown", strf_v + 16, "<4s", b"XQZW"), ("strf-video-size-max", strf_v + 20, "<I", 0xFFFFFFFF),
        ("strf-video-bisize-max", strf_v, "<I", 0xFFFFFFFF),
        ("strf-audio-tag-extensible", strf_a, "<H", 0xFFFE), ("strf-audio-channels-0", strf_a + 2, "<H", 0),
        ("strf-audio-channels-max", strf_a + 2, "<H", 0xFFFF), ("strf-audio-rate-0", strf_a + 4, "<I", 0),
        ("strf-audio-rate-max", strf_a + 4, "<I", 0xFFFFFFFF), ("strf-audio-align-0", strf_a + 12, "<H", 0),
        ("strf-audio-bits-max", strf_a + 14, "<H", 0xFFFF), ("strf-audio-cbsize-max", strf_a + 16, "<H", 0xFFFF),
        ("idx1-first-offset-max", idx1.data_start + 8, "<I", 0xFFFFFFFF), ("idx1-first-size-max", idx1.data_start + 12, "<I", 0xFFFFFFFF),
    ]:
        out = patch(data, offset, fmt, value)
        if out is not None:
            w.add(kind, label, "avi", out, "any")


def wav_mutations(w, data):
    chunks = riff_parse(data)
    fmt = riff_find(chunks, b"fmt ")
    body = riff_find(chunks, b"data")
    kind = "wav-header"
    f = fmt.data_start
    for label, offset, form, value in (
        [("riff-size-%#x" % v, 4, "<I", v) for v in (0, 4, 0xFFFFFFFF, 0x7FFFFFFF)]
        + [("fmt-size-%#x" % v, fmt.start + 4, "<I", v) for v in (0, 2, 14, 40, 0xFFFFFFFF)]
        + [("format-%#x" % v, f, "<H", v) for v in (0, 0xFFFE, 0x0055, 0x0002, 0x0011, 0x0003)]
        + [("channels-%d" % v, f + 2, "<H", v) for v in (0, 255, 0xFFFF)]
        + [("rate-%#x" % v, f + 4, "<I", v) for v in (0, 1, 0x7FFFFFFF, 0xFFFFFFFF)]
        + [("byterate-%#x" % v, f + 8, "<I", v) for v in (0, 1, 0xFFFFFFFF)]
        + [("align-%d" % v, f + 12, "<H", v) for v in (0, 1, 3, 0xFFFF)]
        + [("bits-%d" % v, f + 14, "<H", v) for v in (0, 1, 7, 64, 0xFFFF)]
        + [("data-size-%#x" % v, body.start + 4, "<I", v) for v in (0, 1, 3, 0x7FFFFFFF, 0xFFFFFFFF)]
    ):
        w.add(kind, label, "wav", patch(data, offset, form, value), "any")
    # Structure: RF64 without ds64, a huge chunk before data, the fmt chunk missing.
    w.add(kind, "rf64-without-ds64", "wav", b"RF64" + data[4:], "any")
    w.add(kind, "huge-chunk-before-data", "wav", data[:body.start] + b"LIST" + struct.pack("<I", 0xFFFFFFF0) + data[body.start:], "any")
    w.add(kind, "no-fmt-chunk", "wav", data[:fmt.start] + data[fmt.start + 8 + fmt.size:], "any")
    w.add(kind, "two-fmt-chunks-second-bad", "wav",
          data[:body.start] + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 0, 0, 0, 0, 0) + data[body.start:], "any")
