"""Small previews of photos and signatures, made once and cached beside the attachments.

A phone's JPEG may be large and a PNG can claim billions of pixels in a few kilobytes, so nothing
is ever fully decoded past a pixel budget: JPEGs are decoded already scaled down (`draft`, 1/2 to
1/8 in the decoder), the rest are refused when their size says they would exceed the budget, and
the final shrink uses `reduce` steps before resampling (`thumbnail(reducing_gap=...)`).
"""

import os
import warnings

from PIL import Image, ImageOps

from server.core.files import atomic_file
from server.core.images import ImageRefused, check_decode_cost, draft_size

BOX = 480                     # the longest side of a preview, in pixels
# What a preview may decode at most: 12 MP is ~48 MB as RGBA (sixteen previews of 24 MP PNGs at
# once took the server from 58 MB to 1.2 GB). Phones send 2-3 MP photos and small signatures.
MAX_DECODE_PIXELS = 12_000_000


class TooLarge(ValueError):
    """The image would need more than the budget to decode."""


class TooComplex(ValueError):
    """A JPEG that would cost more than a photo to decode (see server/core/images.py)."""


def path_for(files_dir, sub_uuid, name, box=BOX):
    return os.path.join(files_dir, "thumbs", str(box), sub_uuid, f"{name}.jpg")


def cached(dest):
    """The preview is there already (an empty one, from a power cut, is not)."""
    try:
        return os.stat(dest).st_size > 0
    except FileNotFoundError:
        return False


def make(source, dest, box=BOX, budget=MAX_DECODE_PIXELS):
    """Write a JPEG preview of `source` to `dest` (atomically) unless it is there already. An empty
    one is made again: previews are written without fsync, and a power cut can leave one empty."""
    if cached(dest):
        return dest
    if not os.path.exists(source):
        raise FileNotFoundError(source)
    try:
        check_decode_cost(source)   # scans counted from the markers, before any decode
    except ImageRefused as e:
        if e.reason == "too_complex":
            raise TooComplex(str(e)) from None
        if e.reason == "too_large":
            raise TooLarge(str(e)) from None
        raise OSError(str(e)) from None
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(source) as im:
                im.draft("RGB", draft_size(im.size, box))  # JPEG: the smallest scale covering box
                if im.width * im.height > budget:
                    raise TooLarge(f"{im.width}x{im.height}")
                im = ImageOps.exif_transpose(im)
                im.thumbnail((box, box), Image.Resampling.LANCZOS, reducing_gap=2.0)
                if im.mode in ("RGBA", "LA", "P"):
                    im = im.convert("RGBA")
                    flat = Image.new("RGB", im.size, "white")  # signatures: ink on white
                    flat.paste(im, mask=im.getchannel("A"))
                    im = flat
                elif im.mode != "RGB":
                    im = im.convert("RGB")
                with atomic_file(dest, durable=False) as f:
                    im.save(f, "JPEG", quality=80, optimize=True)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise TooLarge(str(e)) from None
    return dest
