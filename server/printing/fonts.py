"""One shared CJK font program for a merged batch PDF, instead of one per household.

WeasyPrint subsets Noto Sans CJK with glyph ids retained, so every profile embeds ~150 KB of font even
for a few hundred glyphs, and a village of 200 profiles carries 200 copies. Because the ids are
retained, one subset holding the union of all glyphs used can serve every profile: each font's /W
widths and ToUnicode stay as they are, only /FontFile3 points at the shared program. The union is
cut from the same font file with HarfBuzz and the same flags WeasyPrint uses, and checked (widths of
every profile, outlines of a sample) before anything is replaced; on any doubt the PDF is left alone.
"""

import functools
import io
import logging
import shutil
import subprocess
from collections import defaultdict

log = logging.getLogger(__name__)

_CDEF = """
typedef struct hb_blob_t hb_blob_t;
typedef struct hb_face_t hb_face_t;
typedef struct hb_set_t hb_set_t;
typedef struct hb_subset_input_t hb_subset_input_t;
typedef uint32_t hb_codepoint_t;
typedef uint32_t hb_tag_t;
hb_blob_t *hb_blob_create_from_file_or_fail(const char *file_name);
void hb_blob_destroy(hb_blob_t *blob);
const char *hb_blob_get_data(hb_blob_t *blob, unsigned int *length);
hb_face_t *hb_face_create(hb_blob_t *blob, unsigned int index);
void hb_face_destroy(hb_face_t *face);
hb_blob_t *hb_face_reference_blob(hb_face_t *face);
unsigned int hb_face_get_upem(const hb_face_t *face);
void hb_set_add(hb_set_t *set, hb_codepoint_t codepoint);
void hb_set_add_range(hb_set_t *set, hb_codepoint_t first, hb_codepoint_t last);
hb_tag_t hb_tag_from_string(const char *str, int len);
"""
_CDEF_SUBSET = """
hb_subset_input_t *hb_subset_input_create_or_fail(void);
void hb_subset_input_destroy(hb_subset_input_t *input);
hb_set_t *hb_subset_input_glyph_set(hb_subset_input_t *input);
hb_set_t *hb_subset_input_set(hb_subset_input_t *input, int set_type);
void hb_subset_input_set_flags(hb_subset_input_t *input, unsigned int value);
hb_face_t *hb_subset_or_fail(hb_face_t *source, const hb_subset_input_t *input);
"""
NO_HINTING, RETAIN_GIDS, DESUBROUTINIZE, PASSTHROUGH_UNRECOGNIZED = 0x1, 0x2, 0x4, 0x20
NOTDEF_OUTLINE = 0x40
SETS_DROP_TABLE_TAG = 3
DROPPED_TABLES = (b"BASE", b"DSIG", b"EBDT", b"EBLC", b"EBSC", b"GPOS", b"GSUB", b"JSTF", b"LTSH",
                  b"PCLT", b"SVG ")  # as WeasyPrint drops them


@functools.lru_cache(maxsize=1)
def _harfbuzz():
    from cffi import FFI
    ffi = FFI()
    ffi.cdef(_CDEF)
    ffi.cdef(_CDEF_SUBSET)
    hb = _dlopen(ffi, "libharfbuzz.so.0", "harfbuzz", "libharfbuzz.0.dylib")
    hb_subset = _dlopen(ffi, "libharfbuzz-subset.so.0", "harfbuzz-subset",
                        "libharfbuzz-subset.0.dylib")
    return ffi, hb, hb_subset


def _dlopen(ffi, *names):
    for name in names:
        try:
            return ffi.dlopen(name)
        except OSError:
            continue
    raise OSError(f"cannot load {names[0]}")


def _subset(ffi, hb, hbs, face, gids, flags, drop_tables=False):
    inp = ffi.gc(hbs.hb_subset_input_create_or_fail(), hbs.hb_subset_input_destroy)
    if inp == ffi.NULL:
        raise RuntimeError("hb_subset_input_create_or_fail")
    glyphs = hbs.hb_subset_input_glyph_set(inp)
    for g in gids:
        hb.hb_set_add(glyphs, g)
    hbs.hb_subset_input_set_flags(inp, flags)
    if drop_tables:
        drop = hbs.hb_subset_input_set(inp, SETS_DROP_TABLE_TAG)
        for tag in DROPPED_TABLES:
            hb.hb_set_add(drop, hb.hb_tag_from_string(tag, -1))
    out = hbs.hb_subset_or_fail(face, inp)
    if out == ffi.NULL:
        raise RuntimeError("hb_subset_or_fail")
    return ffi.gc(out, hb.hb_face_destroy)


def union_subset(path, index, gids):
    """The font at (path, index) cut down to `gids`, ids retained, as WeasyPrint cuts it."""
    ffi, hb, hbs = _harfbuzz()
    blob = hb.hb_blob_create_from_file_or_fail(path.encode())
    if blob == ffi.NULL:
        raise OSError(f"cannot read {path}")
    blob = ffi.gc(blob, hb.hb_blob_destroy)
    face = ffi.gc(hb.hb_face_create(blob, index), hb.hb_face_destroy)
    gids = sorted(set(gids) | {0})
    first = _subset(ffi, hb, hbs, face, gids,
                    RETAIN_GIDS | PASSTHROUGH_UNRECOGNIZED | DESUBROUTINIZE | NOTDEF_OUTLINE,
                    drop_tables=True)
    second = _subset(ffi, hb, hbs, first, range(gids[-1] + 1),
                     PASSTHROUGH_UNRECOGNIZED | DESUBROUTINIZE | NO_HINTING)
    out = ffi.gc(hb.hb_face_reference_blob(second), hb.hb_blob_destroy)
    length = ffi.new("unsigned int *")
    data = hb.hb_blob_get_data(out, length)
    return bytes(ffi.buffer(data, length[0]))


def locate_font(family, style):
    """(file, face index) that fontconfig (and so Pango) picks for family and style."""
    from server.printing import print_font
    if family == print_font.FAMILY:  # known to the printing processes only, not to fc-match
        found = print_font.path()
        return (found, 0) if found and style == "Regular" else None
    if not shutil.which("fc-match"):
        return None
    res = subprocess.run(["fc-match", "-f", "%{family}\t%{file}\t%{index}",
                          f"{family}:style={style}"], capture_output=True, text=True, timeout=10)
    parts = res.stdout.split("\t")
    if res.returncode or len(parts) != 3 or family not in parts[0].split(","):
        return None
    return parts[1], int(parts[2])


def _w_widths(w_array):
    """{gid: width} from a PDF /W array."""
    out, items, i = {}, [x.get_object() if hasattr(x, "get_object") else x for x in w_array], 0
    while i + 1 < len(items):
        first, nxt = int(items[i]), items[i + 1]
        if isinstance(nxt, list):
            for k, w in enumerate(nxt):
                out[first + k] = float(w.get_object() if hasattr(w, "get_object") else w)
            i += 2
        else:
            for g in range(first, int(nxt) + 1):
                out[g] = float(items[i + 2])
            i += 3
    return out


def _check_union(union, members, samples=1):
    """Every member's widths, and a sample of members' outlines, agree with the union program."""
    from fontTools.ttLib import TTFont
    font = TTFont(io.BytesIO(union), lazy=True)
    upem = font["head"].unitsPerEm
    hmtx = font["hmtx"].metrics
    order = font.getGlyphOrder()
    for widths, _ in members:
        for gid, width in widths.items():
            if gid >= len(order) or abs(hmtx[order[gid]][0] * 1000 / upem - width) > 1.01:
                return False
    cs = font["CFF "].cff.topDictIndex[0].CharStrings
    picks = list(dict.fromkeys([len(members) // 2, 0, len(members) - 1]))
    for k in picks[:samples]:  # each member's CFF costs fontTools ~0.3 s to read
        widths, fd = members[k]
        other = TTFont(io.BytesIO(fd["/FontFile3"].get_object().get_data()), lazy=True)
        other_cs = other["CFF "].cff.topDictIndex[0].CharStrings
        other_order = other.getGlyphOrder()
        for gid in widths:
            a, b = cs[order[gid]], other_cs[other_order[gid]]
            a.compile(), b.compile()
            if a.bytecode != b.bytecode:
                return False
    return True


def _page_fonts(writer):
    """The /Font dictionaries of every page, and of the Form XObjects they draw (the print stamp)."""
    seen = set()
    for page in writer.pages:
        resources = (page.get("/Resources") or {})
        resources = resources.get_object() if hasattr(resources, "get_object") else resources
        found = [resources]
        for x in (resources.get("/XObject") or {}).values():
            x = x.get_object()
            if x.get("/Subtype") == "/Form" and x.get("/Resources") is not None:
                found.append(x["/Resources"].get_object())
        for res in found:
            fonts = res.get("/Font")
            if fonts is not None and id(fonts.get_object()) not in seen:
                seen.add(id(fonts.get_object()))
                yield fonts.get_object()


def share_fonts(writer):
    """Point every Type0 CFF font of the same face at one union program. Returns a short report."""
    from pypdf.generic import DecodedStreamObject, IndirectObject, NameObject
    groups = defaultdict(dict)
    replaced = set()
    descriptors = []  # of every font, shared or not: what still uses a program afterwards
    for fonts in _page_fonts(writer):
        for font in fonts.values():
            font = font.get_object()
            for d in [d.get_object() for d in font.get("/DescendantFonts") or ()] or [font]:
                if d.get("/FontDescriptor") is not None:
                    descriptors.append(d["/FontDescriptor"].get_object())
            if font.get("/Subtype") != "/Type0":
                continue
            desc = font["/DescendantFonts"][0].get_object()
            fd = desc["/FontDescriptor"].get_object()
            ff = fd.get("/FontFile3")
            if ff is None or ff.get_object().get("/Subtype") != "/OpenType" or "/W" not in desc:
                continue
            name = str(fd["/FontName"]).lstrip("/").split("+", 1)[-1]
            family = str(fd.get("/FontFamily") or "")
            groups[(name, family)][id(fd)] = (desc, fd)
    report = {"fonts_before": sum(len(g) for g in groups.values()), "shared": 0, "skipped": []}
    for (name, family), items in groups.items():
        if len(items) < 2:
            continue
        style = name[len(family.replace(" ", "-")):].strip("-") if family else ""
        try:
            found = locate_font(family, style or "Regular") if family else None
            if not found:
                report["skipped"].append((name, "font file not found"))
                continue
            members = [(_w_widths(desc["/W"]), fd) for desc, fd in items.values()]
            gids = set().union(*(m[0] for m in members))
            union = union_subset(found[0], found[1], gids)
            if not _check_union(union, members):
                report["skipped"].append((name, "glyphs differ from the font file"))
                continue
        except Exception as e:  # the merged PDF is still right without sharing
            log.warning("font sharing for %s skipped: %s", name, e)
            report["skipped"].append((name, str(e)[:200]))
            continue
        stream = DecodedStreamObject()
        stream.set_data(union)
        stream[NameObject("/Subtype")] = NameObject("/OpenType")
        ref = writer._add_object(stream.flate_encode())
        for desc, fd in items.values():
            old = fd.raw_get("/FontFile3")
            if isinstance(old, IndirectObject):
                replaced.add(old.idnum)
            fd[NameObject("/FontFile3")] = ref
        report["shared"] += len(items)
    _drop_unused_programs(writer, replaced, descriptors)
    return report


def _drop_unused_programs(writer, idnums, descriptors):
    """Leave the replaced per-profile programs out of the file, unless one of the font
    `descriptors` (as they point now) still uses one. (pypdf's compress_identical_objects found
    them too, by hashing every object: 0.24 s a village.)"""
    from pypdf.generic import IndirectObject
    if not idnums:
        return
    for fd in descriptors:
        for key in ("/FontFile", "/FontFile2", "/FontFile3"):
            used = fd.raw_get(key) if key in fd else None
            if isinstance(used, IndirectObject):
                idnums.discard(used.idnum)
    for idnum in idnums:
        writer._objects[idnum - 1] = None
