"""bench/hostile/generator/h264.py: raw H.264 with a hand-written SPS declaring huge
pictures, and an MP4 whose avcC carries such an SPS.
"""

import struct

from .mp4 import mp4_find, mp4_parse, mp4_replace_payload


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
