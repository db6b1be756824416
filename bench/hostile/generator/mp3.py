"""bench/hostile/generator/mp3.py: MP3 frames and their mutations: frame headers on one,
some or every frame, ID3v2 sizes and flags, Xing counts.
"""

import struct

from .base import patch


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
