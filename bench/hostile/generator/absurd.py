"""bench/hostile/generator/absurd.py: deep pictures (FFV1 16-bit 4:4:4 at 8K, or declared far
larger by the container), absurd durations and frame rates, thousands of streams, zero-byte and
one-byte files.
"""

import struct

from .base import BITEXACT, ffmpeg_once, patch
from .mp4 import mp4_find, mp4_parse, mp4_replace_payload
from .ebml import ebml_all, ebml_find, ebml_parse, ebml_set_value, mkv_many_audio_streams
from .riff import riff_find, riff_parse
from .flv import flv_tags
from .mp3 import mp3_frames


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
