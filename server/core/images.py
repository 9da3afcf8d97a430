"""Photos and signatures from phones, read without trusting their headers' promises.

A 13000×13000 PNG fits in 657 KB and takes 500 MB to decode, so nothing here decodes an image
whole before its pixel count is known: Pillow's `Image.open` reads the header only; past
`MAX_PIXELS` an image is refused (on upload) or printed as a placeholder (in a profile). A JPEG
must also be cheap to decode whatever its pixel count: at most MAX_SCANS scans, and progressive
ones no larger than MAX_PROGRESSIVE_PIXELS (counted from the markers, before any decode). Within the
budget a JPEG is decoded at 1/2–1/8 scale by `draft()`, so a print costs the printed size, not the
photo's. Phones downscale photos before upload, so the budget only ever stops abuse. Nothing here
knows Flask.
"""

import io
import math
import warnings

MAX_PIXELS = 40_000_000   # about a 7700×5200 photo; phones send 2–3 megapixels
# A progressive JPEG is decoded once per scan over the whole image (libjpeg keeps every
# coefficient of the picture in memory and revisits every block each scan): 1,000 empty scans of
# 7680×5200 fit in 152 KB and took 6-10 s of one core to read. Encoders write 10 scans (libjpeg,
# mozjpeg) or a few more; phones write baseline (1). Past the limits below a JPEG is refused.
MAX_SCANS = 20
MAX_PROGRESSIVE_PIXELS = 12_000_000   # ~72 MB of coefficients at 4:4:4; phones never send these
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}


class ImageRefused(Exception):
    """`reason` is "too_large" (pixel count past the budget), "too_complex" (a JPEG with more
    scans, or more pixels in progressive mode, than its decode may cost) or "unreadable"."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _open(source):
    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
    except Image.DecompressionBombError as e:  # past twice Pillow's own limit: too large for us too
        raise ImageRefused("too_large", str(e)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageRefused("unreadable", str(e)) from None


def _check_pixels(im, max_pixels):
    width, height = im.size
    if width <= 0 or height <= 0:
        raise ImageRefused("unreadable", "no pixels")
    if width * height > max_pixels:
        raise ImageRefused("too_large", f"{width}x{height}")


def jpeg_scans(data, limit=MAX_SCANS):
    """How many scans (SOS segments) a JPEG stream holds, counted by walking its markers without
    decoding anything; stops counting at `limit + 1`. Costs one pass over the bytes with
    `bytes.find`, so a 10 MB photo is walked in milliseconds."""
    data = memoryview(data).tobytes() if not isinstance(data, bytes) else data
    n, i, size = 0, 2, len(data)
    while i + 4 <= size and n <= limit:
        if data[i] != 0xFF:                    # stray bytes: libjpeg skips them to the next marker
            i = data.find(b"\xff", i)
            if i < 0:
                break
            continue
        marker = data[i + 1]
        if marker == 0xFF:                     # fill byte before a marker
            i += 1
            continue
        if marker == 0xD9:                     # EOI
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker != 0xDA:
            continue
        n += 1
        # entropy-coded data up to the next marker that is not a stuffed 0xFF00 or a restart
        while True:
            i = data.find(b"\xff", i)
            if i < 0 or i + 1 >= size:
                return n
            nxt = data[i + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                i += 2
            elif nxt == 0xFF:
                i += 1
            else:
                break
    return n


def _check_jpeg_cost(im, source):
    """Refuse (too_complex) a JPEG whose decode would cost more than a photo's: too many scans, or
    a progressive one past MAX_PROGRESSIVE_PIXELS (draft() cannot shrink its coefficient buffer)."""
    if im.format != "JPEG":
        return
    if im.info.get("progressive") or im.info.get("progression"):
        if im.size[0] * im.size[1] > MAX_PROGRESSIVE_PIXELS:
            raise ImageRefused("too_complex", f"progressive {im.size[0]}x{im.size[1]}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = source
    else:
        with open(source, "rb") as f:
            data = f.read()
    scans = jpeg_scans(data)
    if scans > MAX_SCANS:
        raise ImageRefused("too_complex", f"more than {MAX_SCANS} scans")


def check_decode_cost(source):
    """The checks a file needs before any decode (preview, print): pixel budget left to callers,
    scan count and progressive size here. Raises ImageRefused."""
    im = _open(source)
    try:
        _check_jpeg_cost(im, source)
    finally:
        im.close()


def draft_size(size, max_side):
    """What `draft()` must be asked for so a JPEG decodes at the smallest scale still covering a
    `max_side` box. Not (max_side, max_side): draft keeps both sides at least as large as asked, so a
    square request decoded a 4:3 photo whole (960 < 2 x 520), at four times the pixels needed."""
    width, height = size
    scale = min(1.0, max_side / max(width, height, 1))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def pixel_size(source):
    """(width, height) from the header alone."""
    im = _open(source)
    try:
        return im.size
    finally:
        im.close()


def check_upload(data, declared_type, max_pixels=MAX_PIXELS):
    """Refuse (ImageRefused) an upload that is not a readable image of the declared type within the
    pixel budget. Costs the header, plus for a JPEG a decode at 1/8 scale (its scan data is read
    through, so a truncated file is caught) and for a PNG the chunk checksums up to IEND."""
    im = _open(data)
    try:
        if im.format != FORMATS.get(declared_type):
            raise ImageRefused("unreadable", f"{im.format} is not {declared_type}")
        _check_pixels(im, max_pixels)
        _check_jpeg_cost(im, data)
        try:
            if im.format == "JPEG":
                im.draft(im.mode if im.mode in ("L", "RGB") else "RGB",
                         (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
                im.load()
            else:
                im.verify()
        except Exception as e:  # Pillow's decoders raise many kinds for broken data
            raise ImageRefused("unreadable", str(e)) from None
    finally:
        im.close()


def thumbnail(path, max_side, max_pixels=MAX_PIXELS):
    """The image at `path` no larger than max_side×max_side, upright (EXIF), in RGB or RGBA.
    Raises ImageRefused past the pixel budget or when it cannot be decoded."""
    from PIL import Image, ImageOps
    im = _open(path)
    try:
        _check_pixels(im, max_pixels)
        _check_jpeg_cost(im, path)
        try:
            if im.format == "JPEG":
                im.draft("RGB", draft_size(im.size, max_side))  # decoded at 1/2..1/8 scale
            im.load()
            out = ImageOps.exif_transpose(im)
            # Bilinear: Pillow filters over the whole shrink, so a 1.5x step prints as well as
            # bicubic at half its cost (a village print resizes hundreds of photos).
            out.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
            if out.mode not in ("RGB", "RGBA"):
                out = out.convert("RGBA" if "A" in out.getbands() or "transparency" in out.info
                                  else "RGB")
            return out
        except ImageRefused:
            raise
        except Exception as e:
            raise ImageRefused("unreadable", str(e)) from None
    finally:
        im.close()
