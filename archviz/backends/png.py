"""PNG (RFC 2083) in pure Python: write 8-bit RGB, read what Graphviz writes, and a file's
size from its header. zlib + struct only (no Pillow)."""
from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PNGError(ValueError):
    """Not a PNG, a damaged one, or one of a kind this reader does not decode."""


def png_bytes(w: int, h: int, rgb: bytes) -> bytes:
    """An 8-bit RGB PNG (RFC 2083): signature, IHDR, one zlib IDAT (filter 0 per row), IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))
    return (SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def png_decode(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, RGB) of an 8-bit, non-interlaced PNG (grey, RGB, palette, grey+alpha or
    RGBA, as Graphviz writes), composited on white; all five row filters (RFC 2083, 6)."""
    if data[:8] != SIGNATURE:
        raise PNGError("not a PNG")
    try:
        return _decode(data)
    except (struct.error, zlib.error, IndexError, TypeError) as e:   # truncated or damaged
        raise PNGError(f"damaged PNG ({type(e).__name__}: {e})") from None


def _decode(data: bytes) -> tuple[int, int, bytes]:
    pos, idat, plte, trns, head = 8, [], b"", b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"PLTE":
            plte = body
        elif kind == b"tRNS":
            trns = body
        pos += 12 + n
    if head is None:
        raise PNGError("a PNG without its IHDR chunk")
    w, h, depth, ctype, _, _, interlace = head
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or interlace or bpp is None:
        raise PNGError(f"unsupported PNG (bit depth {depth}, colour type {ctype}, interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    prev = bytearray(stride)
    out = bytearray()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    rgb = bytearray(w * h * 3)
    for k in range(w * h):
        px = out[k * bpp:(k + 1) * bpp]
        if ctype == 3:
            c, a = plte[3 * px[0]:3 * px[0] + 3], (trns[px[0]] if px[0] < len(trns) else 255)
        else:
            c = px[:3] if ctype in (2, 6) else px[:1] * 3
            a = px[-1] if ctype in (4, 6) else 255
        rgb[3 * k:3 * k + 3] = bytes((v * a + 255 * (255 - a) + 127) // 255 for v in c)
    return w, h, bytes(rgb)


def png_size(path: str):
    """(width, height) from a PNG file's IHDR chunk (bytes 16..24), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != SIGNATURE or head[12:16] != b"IHDR":
        return None
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return (w, h) if w > 0 and h > 0 else None
