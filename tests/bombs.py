"""Hostile images built in code, for the tests and bench/abuse_bench.py: a PNG that claims 169
megapixels in a few hundred KB, and a progressive JPEG whose last scan repeats a thousand times."""

import functools
import io
import struct
import zlib

from PIL import Image


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=None)
def png_bomb(width=13000, height=13000):
    """A real, complete PNG: every pixel black, so it compresses ~1000:1."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    block = row * 500
    parts = [comp.compress(block) for _ in range(height // 500)]
    parts.append(comp.compress(row * (height % 500)))
    parts.append(comp.flush())
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b""))


def _jpeg_segments(data):
    """(marker, start, end) of each segment; a scan's end includes its entropy-coded data."""
    i, out = 2, []
    while i < len(data):
        marker = data[i + 1]
        if marker == 0xD9:
            out.append((marker, i, i + 2))
            break
        end = i + 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker == 0xDA:
            while not (data[end] == 0xFF and data[end + 1] != 0 and not 0xD0 <= data[end + 1] <= 0xD7):
                end += 1
        out.append((marker, i, end))
        i = end
    return out


@functools.lru_cache(maxsize=None)
def scan_bomb(size=(1600, 1200), extra=1000):
    """A real progressive JPEG (Pillow writes 10 scans) with its last scan, an AC refinement that
    is a few bytes of end-of-band runs, repeated `extra` times: libjpeg warns and decodes every one
    of them over the whole picture (the attack's file was 7680×5200 with 1,000 scans in 152 KB)."""
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "JPEG", progressive=True, quality=50)
    data = out.getvalue()
    _m, start, end = [s for s in _jpeg_segments(data) if s[0] == 0xDA][-1]
    return data[:end] + data[start:end] * extra + data[end:]
