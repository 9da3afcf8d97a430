"""The print font: Noto Sans CJK SC cut down to the characters profiles use, built once at install.

WeasyPrint subsets every embedded font with its glyph ids retained, so what a profile carries and
what it costs to cut grow with the highest glyph id used. Common hanzi sit all over Noto Sans CJK's
65,535 glyphs, so each profile embedded a ~180 KB program and spent ~40 ms cutting it. This font
holds GB2312 (every hanzi of it, and its symbols), ASCII, Latin-1, general punctuation, CJK
punctuation and full-width forms, with every layout feature and metric of the original:
14,272 glyphs, the same outlines and widths. Text outside it (a rare name character) falls back to
Noto Sans CJK SC by the CSS font list, so nothing prints as a missing glyph.

    .venv/bin/python -m server.printing.print_font [DEST]      (make does this; about 20 s)

Without the file, profiles print in Noto Sans CJK SC as before. The cut font is under Noto's own
licence (SIL OFL 1.1, kept in its name table) and renamed, as the licence asks of modified versions.
"""

import functools
import logging
import os
import sys

from server.core.files import atomic_file
from server.printing import fonts

log = logging.getLogger(__name__)

FAMILY = "Jiedui Print Sans"
POSTSCRIPT_NAME = "JieduiPrintSans-Regular"
SOURCE_FAMILY = "Noto Sans CJK SC"
DEFAULT_PATH = os.path.join(sys.prefix, "share", "jiedui", POSTSCRIPT_NAME + ".otf")
_RANGES = ((0x20, 0x7E), (0xA0, 0xFF), (0x2000, 0x206F), (0x3000, 0x303F), (0xFF00, 0xFFEF))


def path():
    """The built font file, or None (then Noto Sans CJK SC prints alone)."""
    found = os.environ.get("JIEDUI_PRINT_FONT") or DEFAULT_PATH
    return found if os.path.isfile(found) else None


def characters():
    """Every character of GB2312, plus the ranges above."""
    chars = {c for first, last in _RANGES for c in range(first, last + 1)}
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                chars.add(ord(bytes((high, low)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return chars


def build(dest=DEFAULT_PATH):
    """Cut the print font from the Noto Sans CJK SC that fontconfig finds, and write it to dest."""
    from fontTools import subset
    from fontTools.ttLib import TTFont
    found = fonts.locate_font(SOURCE_FAMILY, "Regular")
    if not found:
        raise FileNotFoundError(f"{SOURCE_FAMILY} is not installed (Debian: fonts-noto-cjk)")
    options = subset.Options()
    options.layout_features = ["*"]   # vertical forms, locl, punctuation widths: as the original
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False           # WeasyPrint drops hinting when it embeds
    options.desubroutinize = False    # WeasyPrint desubroutinizes what it embeds
    font = TTFont(found[0], fontNumber=found[1])
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=characters())
    subsetter.subset(font)
    for record in font["name"].names:
        if record.nameID in (1, 4, 16):
            record.string = FAMILY
        elif record.nameID == 6:
            record.string = POSTSCRIPT_NAME
    with atomic_file(dest) as f:  # makes the folder too; durable: made once, at install
        font.save(f)
    return dest, font["maxp"].numGlyphs


@functools.lru_cache(maxsize=1)
def identity():
    """Size and change time of the font in use (part of the profile cache key), or ''."""
    found = path()
    if not found:
        return ""
    st = os.stat(found)
    return f"{found}:{st.st_size}:{st.st_mtime_ns}"


def register(font_config):
    """Make the print font known to one WeasyPrint FontConfiguration (its own fontconfig set)."""
    found = path()
    if not found:
        return False
    from weasyprint.text.ffi import ffi, fontconfig, pangoft2
    config = font_config._config  # WeasyPrint 70 (pinned): what its own @font-face code uses
    if not fontconfig.FcConfigAppFontAddFile(config, found.encode()):
        log.warning("print font %s could not be loaded; printing in %s", found, SOURCE_FAMILY)
        return False
    pangoft2.pango_fc_font_map_config_changed(ffi.cast("PangoFcFontMap *", font_config.font_map))
    return True


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PATH
    try:
        written, glyphs = build(target)
    except FileNotFoundError as e:  # no CJK font yet: profiles still print, in Noto when it comes
        print(f"print font not built: {e}")
    else:
        print(f"print font: {written} ({glyphs} glyphs)")
