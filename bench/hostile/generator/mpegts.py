"""bench/hostile/generator/mpegts.py: MPEG-TS packets and their mutations: PAT/PMT
sections and lengths, stream types and PIDs (with the CRC fixed or not), PES headers, adaptation
fields, sync, scrambling and continuity counters.
"""

import struct


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
