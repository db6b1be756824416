"""bench/hostile/generator/base.py: the base clips and the output.

The valid clips every mutation starts from, made once with the ffmpeg CLI (cached by recipe and
ffmpeg version); the Writer that names, writes and lists every file; patch(); and the mutations
every container gets: bit flips and truncations.
"""

import hashlib
import json
import random
import shutil
import struct
import subprocess
import sys
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
