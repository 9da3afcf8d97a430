"""XLSX rosters that lie about their size (issue 9 #8): a sheet claiming a million rows, a
sharedStrings bomb, a part that unpacks past what its zip entry declares. Each is read in small,
bounded memory, or refused with one clear error."""

import io
import re
import tracemalloc
import zipfile

from server.services.roster import XLSX_MAX_COLUMNS, XLSX_MAX_TOTAL_BYTES, parse_roster
from tests.helpers import HEADER, xlsx_bytes


def small_roster():
    return xlsx_bytes([HEADER.split(","), ["张三", 3, 13800001234, "脱贫户", "1组", "一号", 1, None],
                       ["李四", 2, None, "监测户", "2组", "二号", 2, None]])


def rewrite(data, name, change):
    """A copy of the workbook with one part's text changed (all else byte for byte)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == name:
                body = change(body)
            dst.writestr(info.filename, body)
    return out.getvalue()


def with_shared_strings(data, strings):
    """The workbook with a sharedStrings part holding `strings` (bytes of <si> elements), as Excel
    writes one, and the first header cell taken from it."""
    sst = (b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
           b"<si><t>\xe6\x88\xb7\xe4\xb8\xbb\xe5\xa7\x93\xe5\x90\x8d</t></si>" + strings + b"</sst>")
    rel = (b'<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
           b'sharedStrings" Target="sharedStrings.xml" Id="rId9" /></Relationships>')
    kind = (b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
            b'officedocument.spreadsheetml.sharedStrings+xml" /></Types>')
    data = rewrite(data, "xl/_rels/workbook.xml.rels", lambda x: x.replace(b"</Relationships>", rel))
    data = rewrite(data, "[Content_Types].xml", lambda x: x.replace(b"</Types>", kind))
    data = rewrite(data, "xl/worksheets/sheet1.xml", lambda x: re.sub(
        rb'<c r="A1" t="inlineStr"><is><t>[^<]*</t></is></c>', b'<c r="A1" t="s"><v>0</v></c>', x))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        with zipfile.ZipFile(io.BytesIO(data)) as src:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info))
        dst.writestr("xl/sharedStrings.xml", sst)
    return out.getvalue()


def declare_size(data, name, size):
    """The zip with `name`'s declared unpacked size changed in its local header and the central
    directory: what a forger would do to slip a big part past a size check."""
    data = bytearray(data)
    for signature, size_at, name_len_at, name_at in ((b"PK\x03\x04", 22, 26, 30),
                                                     (b"PK\x01\x02", 24, 28, 46)):
        pos = data.find(signature)
        while pos >= 0:
            name_len = int.from_bytes(data[pos + name_len_at:pos + name_len_at + 2], "little")
            if bytes(data[pos + name_at:pos + name_at + name_len]) == name.encode():
                data[pos + size_at:pos + size_at + 4] = size.to_bytes(4, "little")
            pos = data.find(signature, pos + 4)
    return bytes(data)


def measured(fn):
    """fn()'s result and its peak Python memory in MB."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def sheet_rows_read(monkeypatch):
    """[width of each row] the read-only sheet reader hands back, as parse_roster runs."""
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet
    widths, real = [], ReadOnlyWorksheet.iter_rows

    def counted(self, *args, **kwargs):
        for row in real(self, *args, **kwargs):
            widths.append(len(row))
            yield row
    monkeypatch.setattr(ReadOnlyWorksheet, "iter_rows", counted)
    return widths


def parts_opened(monkeypatch):
    """[name of each zip part opened], as parse_roster runs."""
    names, real = [], zipfile.ZipFile.open

    def recorded(self, name, *args, **kwargs):
        names.append(getattr(name, "filename", name))
        return real(self, name, *args, **kwargs)
    monkeypatch.setattr(zipfile.ZipFile, "open", recorded)
    return names


def test_a_sheet_claiming_a_million_rows_and_every_column_reads_its_real_rows_only(monkeypatch):
    data = rewrite(small_roster(), "xl/worksheets/sheet1.xml",
                   lambda xml: re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:XFD1048576"/>', xml))
    assert b"XFD1048576" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    widths = sheet_rows_read(monkeypatch)
    (rows, errors), peak = measured(lambda: parse_roster("花名册.xlsx", data))
    assert errors == [] and [r["head_name"] for r in rows] == ["张三", "李四"]
    assert peak < 20, f"{peak:.0f} MB"
    assert len(widths) == 3 and max(widths) <= XLSX_MAX_COLUMNS  # the header and two rows, no more


def test_a_cell_a_million_rows_down_stops_at_the_row_cap_in_small_memory():
    """Read naively, every row in between comes back 16,384 cells wide: 650 MB for 5,000 rows."""
    def far_row(xml):
        xml = re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:XFD1048576"/>', xml)
        return xml.replace(b"</sheetData>",
                           b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
                           b"</sheetData>")
    data = rewrite(small_roster(), "xl/worksheets/sheet1.xml", far_row)
    (rows, errors), peak = measured(lambda: parse_roster("花名册.xlsx", data))
    assert rows == [] and len(errors) == 1 and "5000" in errors[0]["en"]   # too many rows, said once
    assert peak < 30, f"{peak:.0f} MB"


def test_shared_strings_are_read_when_they_are_of_a_sane_size():
    data = with_shared_strings(small_roster(), b"<si><t>unused</t></si>" * 1000)
    assert "xl/sharedStrings.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    rows, errors = parse_roster("花名册.xlsx", data)
    assert errors == [] and [r["head_name"] for r in rows] == ["张三", "李四"]


def test_a_shared_strings_bomb_is_refused_before_it_is_unpacked(monkeypatch):
    data = with_shared_strings(small_roster(), (b"<si><t>" + b"A" * 1000 + b"</t></si>") * 200_000)
    assert len(data) < 2 * 1024 * 1024                                      # ~200 MB unpacked
    opened = parts_opened(monkeypatch)
    (rows, errors), peak = measured(lambda: parse_roster("花名册.xlsx", data))
    assert rows == [] and len(errors) == 1
    assert "too large once unpacked" in errors[0]["en"] and errors[0]["zh"]
    assert peak < 10, f"{peak:.0f} MB"
    assert opened == []  # refused from the zip directory: not one part was unpacked


def test_a_part_that_unpacks_past_its_declared_size_is_not_a_workbook():
    """The zip directory may understate a part's size; reading stops at the declared size and the
    CRC check fails, so the lie costs nothing."""
    big = with_shared_strings(small_roster(), (b"<si><t>" + b"B" * 1000 + b"</t></si>") * 100_000)
    data = declare_size(big, "xl/sharedStrings.xml", 1000)
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/sharedStrings.xml").file_size == 1000
    (rows, errors), peak = measured(lambda: parse_roster("花名册.xlsx", data))
    assert rows == [] and len(errors) == 1 and "not a valid XLSX" in errors[0]["en"]
    assert peak < 30, f"{peak:.0f} MB"


def test_the_caps_leave_real_rosters_alone():
    rows, errors = parse_roster("花名册.xlsx", small_roster())
    assert errors == [] and len(rows) == 2
    assert XLSX_MAX_TOTAL_BYTES >= 20 << 20
