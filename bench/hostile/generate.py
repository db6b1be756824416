#!/usr/bin/env python3
"""bench/hostile/generate.py: hostile media files for StreamGate's farm (bench/hostile/run.sh).

Starts from small valid clips made once with the ffmpeg CLI (3 s, 320x240, with sound, in mp4, mkv,
webm, ts, avi, flv, mp3 and wav; cached in OUT/base/), then writes, deterministically from --seed:

- mutations of each clip: random bit flips, truncations at many points, and corruptions aimed at
  each container's structure: MP4 box sizes and table counts (moov/trak/stsz/stco/stts/stsc…),
  Matroska/WebM EBML element sizes and values, MPEG-TS PES and PAT/PMT lengths, AVI RIFF chunk sizes
  and header fields, WAV fmt/data fields, FLV tag sizes and fields, MP3 frame headers, ID3 and Xing;
- crafted files: HLS media and master playlists (one through a data: URI), DASH manifests, ffconcat
  lists, SDP files and MP4 data references that name the canary file (--canary-dir, outside the
  store) or the canary listener (http://127.0.0.1:--canary-port/); single images and image
  sequences; raw H.264 whose SPS declares 30000x30000; 16-bit 4:4:4 pictures at 8K (FFV1) and
  declared far larger (FFV1 takes its size from the container); absurd durations (timestamps near
  2^62 µs, declared durations of years); frame rates of 2^31 a second or one a day; files with
  thousands of streams (Matroska written here, since the ffmpeg CLI stops at 1,000); zero-byte and
  one-byte files.

Each file is named KIND--DETAIL--NNNN.EXT, so outcomes can be grouped by KIND, and listed in
OUT/files/manifest.json with its kind, what is expected of it and its SHA-256. With the same seed,
canary folder and port (and the same ffmpeg), the files are byte for byte the same; the last line
printed is `generated files=N kinds=K digest=…`.

Usage: generate.py --out bench/.work/hostile --seed 1 --canary-dir DIR --canary-port PORT
"""
import argparse
import base64
import hashlib
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

RECIPE = 1  # bump when a base clip's recipe changes

# What is expected of each file, checked by the runner:
#   succeed       a valid clip (the control)
#   not-accepted  refused by what it is ("… which is not accepted"): playlists, manifests, lists,
#                 SDP, images; a success would mean something it names was read
#   fail          must not publish (a cap applies, or it names a file through a real container)
#   any           a damaged file: any clean end (published or one-line failure) is fine
# and whether its success would mean a file or URL named inside it was read (names_others).


# ------------------------------------------------------------------------------------------------
# Base clips


def ffmpeg(*args, cwd=None):
    command = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("generate: ffmpeg failed: %s\n%s" % (" ".join(command), result.stderr.strip()))


BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1", "-threads", "1"]
VIDEO_IN = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3"]
AUDIO_IN = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3"]

BASES = {
    "mp4": VIDEO_IN + AUDIO_IN + ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "250k", "-g", "25", "-pix_fmt", "yuv420p",
                                  "-c:a", "aac", "-b:a", "64k", "-ac", "2"],
    "mkv": VIDEO_IN + AUDIO_IN + ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:pools=none:frame-threads=1",
                                  "-b:v", "200k", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "libopus", "-b:a", "48k"],
    "webm": VIDEO_IN + AUDIO_IN + ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k", "-g", "25",
                                   "-pix_fmt", "yuv420p", "-c:a", "libvorbis", "-b:a", "64k"],
    "ts": VIDEO_IN + AUDIO_IN + ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "250k", "-g", "25", "-pix_fmt", "yuv420p",
                                 "-c:a", "aac", "-b:a", "64k", "-f", "mpegts"],
    "avi": VIDEO_IN + AUDIO_IN + ["-c:v", "mpeg4", "-q:v", "6", "-g", "25", "-c:a", "libmp3lame", "-b:a", "64k"],
    "flv": VIDEO_IN + AUDIO_IN + ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "250k", "-g", "25", "-pix_fmt", "yuv420p",
                                  "-c:a", "aac", "-b:a", "64k", "-ar", "44100"],
    "mp3": AUDIO_IN + ["-c:a", "libmp3lame", "-b:a", "64k", "-ac", "1", "-ar", "44100"],
    "wav": ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=2", "-c:a", "pcm_s16le", "-ac", "1"],
}


def ffmpeg_once(target: Path, *args):
    """Runs ffmpeg writing `target` unless it exists; a failed run leaves nothing behind."""
    if target.exists():
        return target.read_bytes()
    partial = target.with_name("partial-" + target.name)
    ffmpeg(*args, str(partial))
    partial.rename(target)
    return target.read_bytes()


def ffmpeg_version():
    out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def make_bases(base_dir: Path):
    """The valid clips, made once per recipe and ffmpeg version."""
    key = hashlib.sha256(json.dumps([RECIPE, ffmpeg_version(), BASES, BITEXACT]).encode()).hexdigest()[:12]
    folder = base_dir / key
    if not (folder / "complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        print("generate: making the base clips once in %s" % folder, file=sys.stderr)
        for ext, args in BASES.items():
            ffmpeg(*args, *BITEXACT, str(folder / ("base." + ext)))
        (folder / "complete").write_text(ffmpeg_version() + "\n")
    return {ext: (folder / ("base." + ext)).read_bytes() for ext in BASES}, folder


# ------------------------------------------------------------------------------------------------
# Output


class Writer:
    def __init__(self, folder: Path, seed: int):
        self.folder = folder
        self.seed = seed
        self.entries = []
        self.counters = {}

    def rng(self, kind):
        return random.Random("%d:%s" % (self.seed, kind))

    def add(self, kind, detail, ext, data, expect=None, names_others=False):
        n = self.counters.get(kind, 0)
        self.counters[kind] = n + 1
        safe = "".join(c if c.isalnum() or c in "-_.^" else "_" for c in detail)[:80]
        name = "%s--%s--%04d.%s" % (kind, safe, n, ext)
        (self.folder / name).write_bytes(data)
        self.entries.append({
            "file": name, "kind": kind, "detail": detail, "bytes": len(data), "expect": expect or "any",
            "names_others": names_others, "sha256": hashlib.sha256(data).hexdigest(),
        })


def patch(data, offset, fmt, value):
    out = bytearray(data)
    if offset < 0 or offset + struct.calcsize(fmt) > len(out):
        return None
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


# ------------------------------------------------------------------------------------------------
# Generic mutations


def bit_flips(w, ext, data):
    kind = ext + "-bitflip"
    rng = w.rng(kind)
    for i in range(34):
        flips = rng.choice([1, 1, 2, 4, 8, 16, 64, 256])
        # Half the files are hit only in their first 4 KiB, where the headers are.
        region = 4096 if i % 2 == 0 else len(data)
        out = bytearray(data)
        for _ in range(flips):
            position = rng.randrange(min(region, len(out)))
            out[position] ^= 1 << rng.randrange(8)
        w.add(kind, "%d-flips-%s" % (flips, "head" if region == 4096 else "anywhere"), ext, bytes(out), "any")


def truncations(w, ext, data):
    kind = ext + "-truncate"
    rng = w.rng(kind)
    points = [1, 2, 4, 8, 12, 16, 32, 64, 128, 188, 256, 512, 1024, 4096]
    points += sorted(rng.randrange(4096, len(data)) for _ in range(14))
    points.append(len(data) - 1)
    for point in points[:30]:
        w.add(kind, "at-%d" % point, ext, data[:point], "any")


SIZE_VALUES_32 = [0, 1, 7, 8, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x10000]


# ------------------------------------------------------------------------------------------------
# MP4 (ISO BMFF)

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


# ------------------------------------------------------------------------------------------------
# Matroska / WebM (EBML)

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


# ------------------------------------------------------------------------------------------------
# MPEG-TS


def crc32_mpeg(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


class TSPacket:
    def __init__(self, data, offset):
        self.offset = offset
        b1, b2, b3 = data[offset + 1], data[offset + 2], data[offset + 3]
        self.pusi = bool(b1 & 0x40)
        self.pid = ((b1 & 0x1F) << 8) | b2
        control = (b3 >> 4) & 3
        payload = offset + 4
        if control & 2:
            payload += 1 + data[offset + 4]
        self.payload = payload if control & 1 and payload < offset + 188 else None


def ts_packets(data):
    return [TSPacket(data, o) for o in range(0, len(data) - 187, 188) if data[o] == 0x47]


def ts_mutations(w, data):
    packets = ts_packets(data)
    pat = [p for p in packets if p.pid == 0 and p.pusi and p.payload]
    first = data[pat[0].payload + 1 + data[pat[0].payload]:]
    pmt_pid = ((first[10] & 0x1F) << 8) | first[11]
    pmt = [p for p in packets if p.pid == pmt_pid and p.pusi and p.payload]
    pes_pids = sorted({p.pid for p in packets if p.pusi and p.payload and data[p.payload:p.payload + 3] == b"\0\0\1"})
    pes = {pid: [p for p in packets if p.pid == pid and p.pusi and p.payload and data[p.payload:p.payload + 3] == b"\0\0\1"] for pid in pes_pids}

    def edit_sections(source, chosen, edit, fix_crc):
        out = bytearray(source)
        for packet in chosen:
            section = packet.payload + 1 + out[packet.payload]
            old_length = ((out[section + 1] & 0x0F) << 8) | out[section + 2]
            edit(out, section)
            if fix_crc:
                length = ((out[section + 1] & 0x0F) << 8) | out[section + 2]
                end = section + 3 + length
                if 4 <= length and end <= packet.offset + 188:
                    struct.pack_into(">I", out, end - 4, crc32_mpeg(bytes(out[section:end - 4])))
            del old_length
        return bytes(out)

    def set12(offset, value):
        def edit(out, section):
            out[section + offset] = (out[section + offset] & 0xF0) | ((value >> 8) & 0x0F)
            out[section + offset + 1] = value & 0xFF
        return edit

    def set_byte(offset, value):
        def edit(out, section):
            out[section + offset] = value
        return edit

    def set13(offset, value):
        def edit(out, section):
            out[section + offset] = (out[section + offset] & 0xE0) | ((value >> 8) & 0x1F)
            out[section + offset + 1] = value & 0xFF
        return edit

    kind = "ts-psi-length"
    rng = w.rng(kind)
    # PMT layout after the 8-byte section header: PCR PID (2), program_info_length (2), then per
    # stream: stream_type (1), PID (2), ES_info_length (2).
    pmt_section = data[pmt[0].payload + 1 + data[pmt[0].payload]:]
    program_info = ((pmt_section[10] & 0x0F) << 8) | pmt_section[11]
    es1 = 12 + program_info
    es1_info = ((pmt_section[es1 + 3] & 0x0F) << 8) | pmt_section[es1 + 4]
    es2 = es1 + 5 + es1_info
    edits = [
        ("pat-section_length-0", pat, set12(1, 0)), ("pat-section_length-1", pat, set12(1, 1)),
        ("pat-section_length-1021", pat, set12(1, 1021)), ("pat-section_length-4095", pat, set12(1, 0xFFF)),
        ("pat-pmt_pid-0", pat, set13(10, 0)), ("pat-pmt_pid-8191", pat, set13(10, 0x1FFF)),
        ("pat-pmt_pid-is-video", pat, set13(10, pes_pids[0])), ("pat-pointer-255", pat, None),
        ("pmt-section_length-0", pmt, set12(1, 0)), ("pmt-section_length-1021", pmt, set12(1, 1021)),
        ("pmt-section_length-4095", pmt, set12(1, 0xFFF)), ("pmt-section_length-13", pmt, set12(1, 13)),
        ("pmt-program_info_length-4095", pmt, set12(10, 0xFFF)), ("pmt-program_info_length-1", pmt, set12(10, 1)),
        ("pmt-es1_info_length-4095", pmt, set12(es1 + 3, 0xFFF)), ("pmt-es1_info_length-1021", pmt, set12(es1 + 3, 1021)),
        ("pmt-es2_info_length-4095", pmt, set12(es2 + 3, 0xFFF)), ("pmt-es1_type-0", pmt, set_byte(es1, 0)),
        ("pmt-es1_type-255", pmt, set_byte(es1, 0xFF)), ("pmt-es1_type-hevc", pmt, set_byte(es1, 0x24)),
        ("pmt-es1_type-aac", pmt, set_byte(es1, 0x0F)), ("pmt-es2_type-h264", pmt, set_byte(es2, 0x1B)),
        ("pmt-es1_pid-0", pmt, set13(es1 + 1, 0)), ("pmt-es1_pid-8191", pmt, set13(es1 + 1, 0x1FFF)),
        ("pmt-es1_pid-is-es2", pmt, set13(es1 + 1, pes_pids[-1])), ("pmt-pcr_pid-8191", pmt, set13(8, 0x1FFF)),
    ]
    for label, chosen, edit in edits:
        if edit is None:
            out = bytearray(data)
            for packet in chosen:
                out[packet.payload] = 0xFF
            w.add(kind, label + "-all", "ts", bytes(out), "any")
            continue
        for scope in ("all", "first"):
            which = chosen if scope == "all" else chosen[:1]
            fix = rng.random() < 0.7
            w.add(kind, "%s-%s%s" % (label, scope, "-crc" if fix else ""), "ts", edit_sections(data, which, edit, fix), "any")

    kind = "ts-pes-length"
    rng = w.rng(kind)

    def pes_edit(label, pids, scope, edit):
        out = bytearray(data)
        for pid in pids:
            chosen = pes[pid]
            if scope == "first":
                chosen = chosen[:1]
            elif scope == "some":
                chosen = rng.sample(chosen, max(1, len(chosen) // 4))
            for packet in chosen:
                edit(out, packet.payload)
        w.add(kind, "%s-%s-%s" % (label, "+".join("%#x" % p for p in pids), scope), "ts", bytes(out), "any")

    def pes_length(value):
        return lambda out, p: struct.pack_into(">H", out, p + 4, value)

    def header_length(value):
        return lambda out, p: out.__setitem__(p + 8, value)

    def pts_max(out, p):
        out[p + 9:p + 14] = bytes([0x21 | 0x0E, 0xFF, 0xFF, 0xFF, 0xFF])

    def pts_flags_forbidden(out, p):
        out[p + 7] = (out[p + 7] & 0x3F) | 0x40

    def stream_id(value):
        return lambda out, p: out.__setitem__(p + 3, value)

    def start_code(out, p):
        out[p + 2] = 2

    for pids in ([pes_pids[0]], [pes_pids[-1]], pes_pids):
        for label, edit in [("pes_length-65535", pes_length(0xFFFF)), ("pes_length-1", pes_length(1)), ("pes_length-3", pes_length(3)),
                            ("header_length-255", header_length(0xFF)), ("header_length-0", header_length(0)), ("pts-max", pts_max),
                            ("pts_dts_flags-forbidden", pts_flags_forbidden), ("stream_id-private", stream_id(0xBD)),
                            ("stream_id-padding", stream_id(0xBE)), ("start_code-broken", start_code)]:
            scope = rng.choice(["first", "some", "all"])
            pes_edit(label, pids, scope, edit)
    # Packet-level damage.
    kind = "ts-packet-header"
    rng = w.rng(kind)
    for label in ["adaptation_length-183", "adaptation_length-255", "sync-lost", "scrambled", "cc-scrambled", "tei-set"]:
        for pid in (pes_pids[0], pes_pids[-1], 0):
            out = bytearray(data)
            chosen = [p for p in packets if p.pid == pid]
            chosen = rng.sample(chosen, max(1, len(chosen) // 3))
            for packet in chosen:
                o = packet.offset
                if label.startswith("adaptation"):
                    out[o + 3] |= 0x20
                    out[o + 4] = 183 if label.endswith("183") else 255
                elif label == "sync-lost":
                    out[o] = 0x00
                elif label == "scrambled":
                    out[o + 3] |= 0xC0
                elif label == "cc-scrambled":
                    out[o + 3] = (out[o + 3] & 0xF0) | rng.randrange(16)
                else:
                    out[o + 1] |= 0x80
            w.add(kind, "%s-pid%#x" % (label, pid), "ts", bytes(out), "any")


# ------------------------------------------------------------------------------------------------
# RIFF: AVI and WAV


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


# ------------------------------------------------------------------------------------------------
# FLV


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


# ------------------------------------------------------------------------------------------------
# MP3

MP3_BITRATES_V1_L3 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0]
MP3_RATES_V1 = [44100, 48000, 32000, 0]


def mp3_frames(data):
    offset = 0
    if data[:3] == b"ID3":
        size = 0
        for byte in data[6:10]:
            size = (size << 7) | (byte & 0x7F)
        offset = 10 + size
    frames = []
    while offset + 4 <= len(data):
        header = struct.unpack(">I", data[offset:offset + 4])[0]
        if header >> 21 != 0x7FF:
            break
        bitrate = MP3_BITRATES_V1_L3[(header >> 12) & 0xF] * 1000
        rate = MP3_RATES_V1[(header >> 10) & 3]
        if not bitrate or not rate:
            break
        length = 144 * bitrate // rate + ((header >> 9) & 1)
        frames.append((offset, length))
        offset += length
    return frames


def mp3_mutations(w, data):
    frames = mp3_frames(data)
    kind = "mp3-frame-header"
    rng = w.rng(kind)
    edits = [("bitrate-bad", lambda h: h | 0xF000), ("bitrate-free", lambda h: h & ~0xF000), ("rate-reserved", lambda h: h | 0x0C00),
             ("layer-reserved", lambda h: h & ~0x60000), ("version-reserved", lambda h: (h & ~0x180000) | 0x080000),
             ("layer-1", lambda h: h | 0x60000), ("crc-expected", lambda h: h & ~0x10000), ("emphasis-reserved", lambda h: (h & ~3) | 2),
             ("mode-changed", lambda h: h ^ 0xC0), ("sync-broken", lambda h: h & ~0x00E00000)]
    for label, edit in edits:
        for scope in ("first", "second", "some", "all"):
            chosen = {"first": frames[:1], "second": frames[1:2], "all": frames,
                      "some": rng.sample(frames, max(1, len(frames) // 5))}[scope]
            if scope in ("second", "some") and rng.random() < 0.5:
                continue
            out = bytearray(data)
            for offset, _ in chosen:
                header = struct.unpack(">I", out[offset:offset + 4])[0]
                struct.pack_into(">I", out, offset, edit(header) & 0xFFFFFFFF)
            w.add(kind, "%s-%s" % (label, scope), "mp3", bytes(out), "any")
    kind = "mp3-tag"
    if data[:3] == b"ID3":
        for label, raw in [("id3-size-max", b"\x7f\x7f\x7f\x7f"), ("id3-size-0", b"\0\0\0\0"), ("id3-size-not-syncsafe", b"\xff\xff\xff\xff")]:
            out = bytearray(data)
            out[6:10] = raw
            w.add(kind, label, "mp3", bytes(out), "any")
        w.add(kind, "id3-version-255", "mp3", data[:3] + b"\xff" + data[4:], "any")
        w.add(kind, "id3-extended-header-flag", "mp3", data[:5] + bytes([data[5] | 0x40]) + data[6:], "any")
    # A picture frame declaring 256 MiB, and a second ID3 tag in the middle.
    apic = b"APIC" + b"\x0f\xff\xff\xff" + b"\0\0" + b"\0image/png\0\x03\0" + b"\x89PNG"
    tag = b"ID3\x04\0\0" + bytes([0, 0, 0, len(apic)]) + apic
    w.add(kind, "id3-apic-256MiB", "mp3", tag + data, "any")
    middle = frames[len(frames) // 2][0]
    w.add(kind, "id3-in-the-middle", "mp3", data[:middle] + b"ID3\x04\0\0\x7f\x7f\x7f\x7f" + data[middle:], "any")
    # Xing/Info in the first frame: frame count, byte count, flags.
    first, length = frames[0]
    body = data[first:first + length]
    at = max(body.find(b"Xing"), body.find(b"Info"))
    if at >= 0:
        x = first + at
        for label, offset, value in [("xing-flags-max", x + 4, 0xFFFFFFFF), ("xing-frames-0", x + 8, 0), ("xing-bytes-max", x + 12, 0xFFFFFFFF),
                                     ("xing-bytes-0", x + 12, 0)]:
            w.add(kind, label, "mp3", patch(data, offset, ">I", value), "any")
    return frames


# ------------------------------------------------------------------------------------------------
# Crafted: files that name other files or URLs


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


# ------------------------------------------------------------------------------------------------
# Raw H.264 with a hand-written SPS


class Bits:
    def __init__(self):
        self.bits = []

    def u(self, n, value):
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value):
        value += 1
        length = value.bit_length()
        self.bits += [0] * (length - 1)
        self.u(length, value)

    def se(self, value):
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def rbsp(self):
        bits = self.bits + [1]
        bits += [0] * (-len(bits) % 8)
        raw = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))
        out, zeros = bytearray(), 0
        for byte in raw:  # emulation prevention
            if zeros >= 2 and byte <= 3:
                out.append(3)
                zeros = 0
            out.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return bytes(out)


def h264_sps(width, height, profile=66, chroma=1, bit_depth=8, level=51):
    b = Bits()
    b.u(8, profile)
    b.u(8, 0)
    b.u(8, level)
    b.ue(0)  # seq_parameter_set_id
    if profile in (100, 110, 122, 244):
        b.ue(chroma)
        if chroma == 3:
            b.u(1, 0)
        b.ue(bit_depth - 8)
        b.ue(bit_depth - 8)
        b.u(1, 0)
        b.u(1, 0)  # no scaling matrices
    b.ue(0)  # log2_max_frame_num - 4
    b.ue(2)  # pic_order_cnt_type
    b.ue(1)  # max_num_ref_frames
    b.u(1, 0)
    mbs_w, mbs_h = (width + 15) // 16, (height + 15) // 16
    b.ue(mbs_w - 1)
    b.ue(mbs_h - 1)
    b.u(1, 1)  # frame_mbs_only
    b.u(1, 1)  # direct_8x8_inference
    crop_r, crop_b = (mbs_w * 16 - width) // 2, (mbs_h * 16 - height) // 2
    if crop_r or crop_b:
        b.u(1, 1)
        b.ue(0)
        b.ue(crop_r)
        b.ue(0)
        b.ue(crop_b)
    else:
        b.u(1, 0)
    b.u(1, 0)  # vui
    return b"\x67" + b.rbsp()


def h264_pps():
    b = Bits()
    b.ue(0)
    b.ue(0)
    b.u(1, 0)  # entropy_coding_mode: CAVLC
    b.u(1, 0)
    b.ue(0)  # num_slice_groups - 1
    b.ue(0)
    b.ue(0)
    b.u(1, 0)
    b.u(2, 0)
    b.se(0)
    b.se(0)
    b.se(0)
    b.u(1, 1)  # deblocking_filter_control_present
    b.u(1, 0)
    b.u(1, 0)
    return b"\x68" + b.rbsp()


def h264_idr(rng, frame):
    b = Bits()
    b.ue(0)  # first_mb_in_slice
    b.ue(7)  # I slice
    b.ue(0)  # pps id
    b.u(4, 0)  # frame_num
    b.ue(frame)  # idr_pic_id
    b.u(1, 0)
    b.u(1, 0)  # dec_ref_pic_marking
    b.se(0)  # slice_qp_delta
    b.ue(1)  # disable_deblocking_filter_idc
    for _ in range(2000):
        b.u(8, rng.randrange(256))
    return b"\x65" + b.rbsp()


def raw_h264(rng, sps, frames=4):
    start = b"\0\0\0\1"
    out = b""
    for frame in range(frames):
        out += start + sps + start + h264_pps() + start + h264_idr(rng, frame)
    return out


def h264_huge(w, bases):
    kind = "h264-huge-sps"
    rng = w.rng(kind)
    for label, width, height, profile, chroma, depth, expect in [
        ("30000x30000", 30000, 30000, 66, 1, 8, "fail"), ("16384x16384", 16384, 16384, 66, 1, 8, "fail"),
        ("8192x8192", 8192, 8192, 66, 1, 8, "fail"), ("30000x16-thin", 30000, 16, 66, 1, 8, "any"),
        ("7680x4320-444-high", 7680, 4320, 244, 3, 8, "any"), ("7680x4320-444-14bit", 7680, 4320, 244, 3, 14, "any"),
    ]:
        w.add(kind, label, "h264", raw_h264(rng, h264_sps(width, height, profile, chroma, depth)), expect)
    # The same SPS inside an MP4's avcC, the rest of the clip unchanged.
    boxes = mp4_parse(bases["mp4"])
    avcc = mp4_find(boxes, b"avcC").payload
    sps_length = struct.unpack(">H", avcc[6:8])[0]
    for label, width, height in [("mp4-avcC-30000x30000", 30000, 30000), ("mp4-avcC-8192x8192", 8192, 8192)]:
        sps = h264_sps(width, height, 66)
        payload = avcc[:6] + struct.pack(">H", len(sps)) + sps + avcc[8 + sps_length:]
        w.add(kind, label, "mp4", mp4_replace_payload(bases["mp4"], b"avcC", 0, payload), "fail")


# ------------------------------------------------------------------------------------------------
# Deep pictures, durations, streams


def deep_pictures(w, work):
    kind = "deep16-444"
    for label, size, pix, frames, expect in [
        ("ffv1-yuv444p16-7680x4320", "7680x4320", "yuv444p16le", 2, "any"),
        ("ffv1-gray16-7680x4320", "7680x4320", "gray16le", 2, "any"),
        ("ffv1-yuv444p16-8200x4320-over-cap", "8200x4320", "yuv444p16le", 1, "fail"),
    ]:
        target = work / ("deep.%s.mkv" % label)
        data = ffmpeg_once(target, "-f", "lavfi", "-i", "color=c=gray:size=%s:rate=2" % size, "-frames:v", str(frames),
                           "-vf", "format=" + pix, "-c:v", "ffv1", "-level", "3", *BITEXACT)
        w.add(kind, label, "mkv", data, expect)
    # FFV1 keeps no picture size of its own: the container's is the one decoded. A 320x320 16-bit
    # 4:4:4 clip whose Matroska PixelWidth/PixelHeight declare far more.
    target = work / "deep.ffv1-320.mkv"
    small = ffmpeg_once(target, "-f", "lavfi", "-i", "testsrc2=size=320x320:rate=5", "-frames:v", "2", "-vf", "format=yuv444p16le",
                        "-c:v", "ffv1", "-level", "3", *BITEXACT)
    elements = ebml_parse(small)
    width, height = ebml_find(elements, 0xB0), ebml_find(elements, 0xBA)
    for (x, y), expect in [((30000, 30000), "fail"), ((65535, 65535), "fail"), ((8192, 4352), "fail"), ((7680, 4320), "any")]:
        out = ebml_set_value(small, width, x.to_bytes(width.size, "big"))
        out = ebml_set_value(out, height, y.to_bytes(height.size, "big"))
        w.add(kind, "ffv1-yuv444p16-320x320-declares-%dx%d" % (x, y), "mkv", out, expect)


def durations(w, bases, work):
    kind = "duration-absurd"
    boxes = mp4_parse(bases["mp4"])
    data = bases["mp4"]
    mvhd, mdhd, stts, elst = mp4_find(boxes, b"mvhd"), mp4_find(boxes, b"mdhd"), mp4_find(boxes, b"stts"), mp4_find(boxes, b"elst")
    out = patch(patch(data, mvhd.start + 20, ">I", 1), mvhd.start + 24, ">I", 0xFFFFFFFF)
    w.add(kind, "mp4-mvhd-136-years", "mp4", out, "fail")
    out = patch(patch(data, mdhd.start + 20, ">I", 1), mdhd.start + 24, ">I", 0xFFFFFFFF)
    w.add(kind, "mp4-mdhd-136-years", "mp4", out, "any")  # the track's own duration; mvhd says 3 s
    # libavformat keeps one picture of such a track (and the 3 s of sound): nothing to cap.
    w.add(kind, "mp4-stts-delta-2^31", "mp4", patch(data, stts.start + 20, ">I", 0x7FFFFFFF), "any")
    if elst is not None:
        w.add(kind, "mp4-elst-duration-max", "mp4", patch(data, elst.start + 16, ">I", 0xFFFFFFFF), "any")
        w.add(kind, "mp4-elst-media-time-max", "mp4", patch(data, elst.start + 20, ">i", 0x7FFFFFFF), "any")
    # mvhd version 1: a 64-bit duration of 2^62 ticks.
    v1 = struct.pack(">B3xQQIQ", 1, 0, 0, 1000, 1 << 62) + mvhd.payload[20:]
    w.add(kind, "mp4-mvhd-v1-2^62", "mp4", mp4_replace_payload(data, b"mvhd", 0, v1), "any")  # overflows: libavformat drops it
    # Timestamps near 2^62 µs, written by ffmpeg itself (Matroska, NUT, MP4).
    for ext in ("mkv", "nut", "mp4"):
        target = work / ("duration.offset.%s" % ext)
        shifted = ffmpeg_once(target, "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2", "-c:v", "libx264",
                              "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-output_ts_offset", "4611686018000", *BITEXACT)
        w.add(kind, "%s-timestamps-near-2^62us" % ext, ext, shifted, "fail")
    # Matroska: the declared duration huge while the timestamps are not, and the other way round.
    elements = ebml_parse(bases["mkv"])
    duration = ebml_find(elements, 0x4489)
    w.add(kind, "mkv-info-duration-1e18ms", "mkv", ebml_set_value(bases["mkv"], duration, struct.pack(">d", 1e18)), "any")
    shifted = (work / "duration.offset.mkv").read_bytes()
    duration = ebml_find(ebml_parse(shifted), 0x4489)
    # Timestamps are taken from the file's start: 2 s that start near 2^62 µs are 2 s of media.
    w.add(kind, "mkv-timestamps-2^62us-declares-2s", "mkv", ebml_set_value(shifted, duration, struct.pack(">d", 2000.0)), "any")
    clusters = [e for e in ebml_all(ebml_parse(bases["mkv"])) if e.ident == 0xE7]
    out = bases["mkv"]
    for timecode in clusters[1:]:
        out = ebml_set_value(out, timecode, b"\xff" * timecode.size)
    w.add(kind, "mkv-cluster-timecode-jumps", "mkv", out, "any")
    # FLV: the extended timestamp byte makes every later tag 2^31 ms (24.8 days) on.
    tags = flv_tags(bases["flv"])
    out = bytearray(bases["flv"])
    for tag in tags[len(tags) // 2:]:
        out[tag.start + 7] = 0x7F
    w.add(kind, "flv-timestamps-24-days", "flv", bytes(out), "fail")
    # WAV: a data chunk declaring 4 GiB at one byte a second (136 years).
    chunks = riff_parse(bases["wav"])
    fmt, body = riff_find(chunks, b"fmt "), riff_find(chunks, b"data")
    out = patch(patch(patch(bases["wav"], fmt.data_start + 4, "<I", 1), fmt.data_start + 8, "<I", 2), body.start + 4, "<I", 0xFFFFFFFF)
    w.add(kind, "wav-declares-136-years", "wav", out, "any")
    # MP3: a Xing header counting 2^32-1 frames (3.4 years at 44.1 kHz).
    frames = mp3_frames(bases["mp3"])
    first, length = frames[0]
    at = max(bases["mp3"][first:first + length].find(b"Xing"), bases["mp3"][first:first + length].find(b"Info"))
    if at >= 0:
        w.add(kind, "mp3-xing-frames-max", "mp3", patch(bases["mp3"], first + at + 8, ">I", 0xFFFFFFFF), "any")
    # AVI: a second a frame, 2^32-1 frames.
    chunks = riff_parse(bases["avi"])
    avih, strh = riff_find(chunks, b"avih").data_start, riff_find(chunks, b"strh").data_start
    out = patch(patch(patch(bases["avi"], avih, "<I", 1000000), avih + 16, "<I", 0xFFFFFFFF), strh + 32, "<I", 0xFFFFFFFF)
    out = patch(patch(out, strh + 20, "<I", 1), strh + 24, "<I", 1)
    w.add(kind, "avi-declares-136-years", "avi", out, "any")


def frame_rates(w, bases):
    """Frame rates a container declares that no video has: libavformat guesses them from time
    scales and frame durations."""
    kind = "framerate-absurd"
    data = bases["mp4"]
    boxes = mp4_parse(data)
    mdhd, stts = mp4_find(boxes, b"mdhd"), mp4_find(boxes, b"stts")
    out = patch(patch(data, mdhd.start + 20, ">I", 0x7FFFFFFF), stts.start + 20, ">I", 1)
    w.add(kind, "mp4-2^31-fps", "mp4", out, "any")
    out = patch(patch(data, mdhd.start + 20, ">I", 1), stts.start + 20, ">I", 100000)
    w.add(kind, "mp4-one-frame-a-day", "mp4", out, "any")
    elements = ebml_parse(bases["mkv"])
    default = ebml_find(elements, 0x23E383)
    if default is not None:
        w.add(kind, "mkv-default-duration-1ns", "mkv", ebml_set_value(bases["mkv"], default, (1).to_bytes(default.size, "big")), "any")
    scale = ebml_find(elements, 0x2AD7B1)
    w.add(kind, "mkv-timecode-scale-1ns", "mkv", ebml_set_value(bases["mkv"], scale, (1).to_bytes(scale.size, "big")), "any")


def many_streams(w, work):
    kind = "streams-many"
    for count, expect in [(2000, "fail"), (20000, "fail"), (65, "fail"), (64, "any")]:
        w.add(kind, "mkv-%d-audio-written-here" % count, "mkv", mkv_many_audio_streams(count), expect)
    tiny = work / "streams.tiny.wav"
    ffmpeg_once(tiny, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=0.2", "-c:a", "pcm_s16le", "-ac", "1", *BITEXACT)
    tiny_aac = work / "streams.tiny.m4a"
    ffmpeg_once(tiny_aac, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=0.2", "-c:a", "aac", "-b:a", "16k", *BITEXACT)
    for ext, count, source in [("mkv", 999, tiny), ("nut", 999, tiny), ("mp4", 300, tiny_aac), ("ts", 300, tiny_aac)]:
        target = work / ("streams.%d.%s" % (count, ext))
        data = ffmpeg_once(target, "-i", str(source), *(["-map", "0:a"] * count), "-c", "copy", *BITEXACT)
        w.add(kind, "%s-%d-audio-by-ffmpeg" % (ext, count), ext, data, "fail")


def tiny_files(w):
    w.add("empty", "zero-bytes", "mp4", b"", "fail")
    w.add("empty", "zero-bytes", "m3u8", b"", "fail")
    for byte in (0x00, 0x47, 0x23, 0x1A, 0xFF, 0x52, 0x46, 0x0A):
        w.add("one-byte", "%#04x" % byte, "bin", bytes([byte]), "fail")


# ------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench/.work/hostile", help="work folder: base/, files/ (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--canary-dir", required=True, help="folder of the canary files (canary.ts, canary.mp4), outside the store")
    parser.add_argument("--canary-port", type=int, required=True, help="port of the canary listener on 127.0.0.1")
    args = parser.parse_args()

    out = Path(args.out)
    bases, base_folder = make_bases(out / "base")
    canary = Path(args.canary_dir)
    canary.mkdir(parents=True, exist_ok=True)
    # The canaries are valid clips: any job that read one would publish.
    (canary / "canary.ts").write_bytes(bases["ts"])
    (canary / "canary.mp4").write_bytes(bases["mp4"])

    files = out / "files"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    work = base_folder / "extra"
    work.mkdir(exist_ok=True)

    w = Writer(files, args.seed)
    for ext, data in bases.items():
        w.add("valid", ext, ext, data, "succeed")
    for ext, data in bases.items():
        bit_flips(w, ext, data)
        truncations(w, ext, data)
    mp4_mutations(w, bases["mp4"])
    ebml_mutations(w, "mkv", bases["mkv"])
    ebml_mutations(w, "webm", bases["webm"])
    ts_mutations(w, bases["ts"])
    avi_mutations(w, bases["avi"])
    wav_mutations(w, bases["wav"])
    flv_mutations(w, bases["flv"])
    mp3_mutations(w, bases["mp3"])
    crafted(w, bases, str(canary.resolve()), args.canary_port)
    images(w, work)
    h264_huge(w, bases)
    deep_pictures(w, work)
    durations(w, bases, work)
    frame_rates(w, bases)
    many_streams(w, work)
    tiny_files(w)

    digest = hashlib.sha256("".join(e["file"] + e["sha256"] for e in w.entries).encode()).hexdigest()[:16]
    manifest = {"seed": args.seed, "canary_dir": str(canary.resolve()), "canary_port": args.canary_port, "digest": digest,
                "ffmpeg": ffmpeg_version(), "files": w.entries}
    (files / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print("generated files=%d kinds=%d digest=%s" % (len(w.entries), len({e["kind"] for e in w.entries}), digest))


if __name__ == "__main__":
    main()
