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

The generators live in bench/hostile/generator/, a module per container or kind of file; this
script calls them in a fixed order and writes the manifest.
"""
import argparse
import hashlib
import json
import shutil
from pathlib import Path

from generator.base import Writer, bit_flips, ffmpeg_version, make_bases, truncations
from generator.mp4 import mp4_mutations
from generator.ebml import ebml_mutations
from generator.mpegts import ts_mutations
from generator.riff import avi_mutations, wav_mutations
from generator.flv import flv_mutations
from generator.mp3 import mp3_mutations
from generator.crafted import crafted, images
from generator.h264 import h264_huge
from generator.absurd import deep_pictures, durations, frame_rates, many_streams, tiny_files

# What is expected of each file, checked by the runner:
#   succeed       a valid clip (the control)
#   not-accepted  refused by what it is ("… which is not accepted"): playlists, manifests, lists,
#                 SDP, images; a success would mean something it names was read
#   fail          must not publish (a cap applies, or it names a file through a real container)
#   any           a damaged file: any clean end (published or one-line failure) is fine
# and whether its success would mean a file or URL named inside it was read (names_others).


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
