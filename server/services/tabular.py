"""Workbooks written row by row to temporary files, so an export's memory stays flat however many
rows it has: XLSX through a small streaming writer of our own (below), or one UTF-8-with-BOM CSV per
sheet in a ZIP (Excel and WPS open those as they are). Both get two header rows: labels in the
page's language, then field names for programs.

Why our own XLSX writer: openpyxl's write-only mode (1,437 rows/s) and XlsxWriter's constant-memory
mode (about 2,000 rows/s here) spend most of an export building cell objects; a sheet is just XML,
and writing each row as one string is several times faster (bench/export_bench.py). It writes only
what an export needs: inline strings, numbers, booleans, dates and times (real Excel dates, as the
county's local time: no zone, Excel has none), a bold header, frozen header rows and hyperlinks.

A text that starts with = + - @, a tab or a carriage return would be run as a formula by a
spreadsheet (CSV injection): in XLSX every text is an inline string cell, which Excel shows and
never evaluates; in CSV it gets a leading apostrophe, the mark Excel and WPS read as "this is text".
"""

import csv
import math
import os
import re
import shutil
import tempfile
import zipfile
from datetime import date, datetime

from server.core.text import NOT_PRINTABLE_RE

RISKY_START = ("=", "+", "-", "@", "\t", "\r")
RISKY_CHARS = frozenset(RISKY_START)
ILLEGAL_XML_RE = NOT_PRINTABLE_RE
SHEET_NAME_RE = re.compile(r"[\[\]:*?/\\]")
# What a text needs before it goes into XML: escaping, or leaving out what XML cannot hold.
NEEDS_CARE_RE = re.compile(f"[&<>\"{NOT_PRINTABLE_RE.pattern[1:-1]}]")
EPOCH = datetime(1899, 12, 30)
MEMO_LIMIT = 20_000
EPOCH_DAY = EPOCH.date()


def is_risky(value):
    return isinstance(value, str) and value.startswith(RISKY_START)


def sheet_title(name, taken):
    """Excel's rules: at most 31 characters, none of []:*?/\\, unique in the book."""
    base = SHEET_NAME_RE.sub("_", str(name))[:31] or "sheet"
    title, n = base, 2
    while title.lower() in taken:
        suffix = f"_{n}"
        title, n = base[:31 - len(suffix)] + suffix, n + 1
    taken.add(title.lower())
    return title


class Link:
    """A cell that opens `target` (a path relative to the workbook, or a URL) and reads `text`."""

    __slots__ = ("target", "text")

    def __init__(self, target, text=None):
        self.target, self.text = target, text if text is not None else target

    def __str__(self):
        return self.text


def column_letter(index):
    """0 -> A, 25 -> Z, 26 -> AA."""
    out = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        out = chr(65 + rest) + out
    return out


def _escape(text):
    text = ILLEGAL_XML_RE.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _text_cell(text, style=""):
    if NEEDS_CARE_RE.search(text):
        text = _escape(text)
    space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    return f'<c t="inlineStr"{style}><is><t{space}>{text}</t></is></c>'


# Cell styles (cellXfs in styles.xml): 0 plain, 1 date, 2 date and time, 3 link, 4 bold header.
DATE_STYLE, TIME_STYLE, LINK_STYLE, BOLD_STYLE = ' s="1"', ' s="2"', ' s="3"', ' s="4"'


def _cell(value):
    """One value as a <c> element (the hot path: the commonest types first)."""
    kind = type(value)
    if kind is str:
        return _text_cell(value) if value else "<c/>"
    if value is None:
        return "<c/>"
    if kind is int or kind is float:
        if kind is float and not math.isfinite(value):
            return _text_cell(str(value))
        return f"<c><v>{value!r}</v></c>"
    if kind is bool:
        return f'<c t="b"><v>{int(value)}</v></c>'
    if (kind is datetime or kind is date) and value.year < 1900:  # before Excel's calendar
        return _text_cell(value.isoformat(" ") if kind is datetime else value.isoformat())
    if kind is datetime:
        if value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        delta = value - EPOCH
        return f"<c{TIME_STYLE}><v>{delta.days + delta.seconds / 86400!r}</v></c>"
    if kind is date:
        return f"<c{DATE_STYLE}><v>{(value - EPOCH_DAY).days}</v></c>"
    if isinstance(value, (int, float)):  # subclasses (not bool, caught above)
        return _cell(int(value) if isinstance(value, int) else float(value))
    return _text_cell(str(value))


class _Sheet:
    """One worksheet streamed to a temporary file; hyperlinks are kept (few) and written at the end."""

    def __init__(self, folder, index, title):
        self.title, self.index = title, index
        self.path = os.path.join(folder, f"sheet{index}.xml")
        self.file = open(self.path, "w", encoding="utf-8", newline="")
        self.rows = 0
        self.links = []  # (cell ref, target)
        self.widths = None
        self.memo = {}  # text -> its cell, for texts that repeat (bounded)

    def header(self, labels, names):
        self.rows = 2
        self.widths = len(labels)
        self.file.write(
            "<row>" + "".join(_text_cell(str(t), BOLD_STYLE) if t else "<c/>" for t in labels)
            + "</row><row>" + "".join(_text_cell(str(n)) if n else "<c/>" for n in names) + "</row>")

    def append(self, values):
        self.rows += 1
        parts = ["<row>"]
        add = parts.append
        memo = self.memo
        for v in values:
            kind = type(v)
            if kind is str:  # the commonest cell; names, labels and choices repeat row after row
                cell = memo.get(v)
                if cell is None:
                    cell = _text_cell(v) if v else "<c/>"
                    if len(memo) >= MEMO_LIMIT:
                        memo.clear()
                    memo[v] = cell
                add(cell)
            elif v is None:
                add("<c/>")
            elif kind is Link:
                self.links.append((f"{column_letter(len(parts) - 1)}{self.rows}", v.target))
                add(_text_cell(v.text, LINK_STYLE) if v.text else "<c/>")
            else:
                add(_cell(v))
        add("</row>")
        self.file.write("".join(parts))

    def rows_of_text(self, rows):
        """Plain rows (the about sheet): no header styling, no frozen panes."""
        for row in rows:
            self.append(row)

    def finish(self, frozen):
        self.file.close()
        head = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">')
        if frozen:
            head += ('<sheetViews><sheetView workbookViewId="0"><pane ySplit="2" topLeftCell="A3" '
                     'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>')
        else:
            head += '<sheetViews><sheetView workbookViewId="0"/></sheetViews>'
        head += '<sheetFormatPr defaultRowHeight="15"/><cols><col min="1" max="64" width="16" customWidth="1"/></cols>'
        head += "<sheetData>"
        tail = "</sheetData>"
        if self.links:
            tail += "<hyperlinks>" + "".join(
                f'<hyperlink ref="{ref}" r:id="rId{n}"/>' for n, (ref, _t) in enumerate(self.links, 1)
            ) + "</hyperlinks>"
        tail += "</worksheet>"
        return head, tail

    def rels(self):
        if not self.links:
            return None
        return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                + "".join(f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/'
                          f'2006/relationships/hyperlink" Target="{_escape(target)}" TargetMode="External"/>'
                          for n, (_ref, target) in enumerate(self.links, 1))
                + "</Relationships>")


STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy\\-mm\\-dd\\ hh:mm:ss"/></numFmts>'
    '<fonts count="3"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><u/><sz val="11"/><color rgb="FF0563C1"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>')


class XlsxBook:
    """One streaming workbook; sheets may be appended to in any order (each streams to its own
    temporary file until `save`). `about(rows)` fills the first sheet, "about": what the export
    holds (filters, time), made first so a reader sees it first."""

    def __init__(self, about=False):
        self._dir = tempfile.mkdtemp(prefix="jiedui-xlsx-")
        self._sheets = []
        self._titles = set()
        self._about = self._new("about") if about else None

    def _new(self, name):
        sheet = _Sheet(self._dir, len(self._sheets) + 1, sheet_title(name, self._titles))
        self._sheets.append(sheet)
        return sheet

    def sheet(self, name, labels, names):
        ws = self._new(name)
        ws.header(labels, names)
        return ws.append

    def about(self, rows):
        """The about sheet's rows ([label, value]), written once, at any time before `save`."""
        if self._about is None:
            self._about = self._new("about")
        self._about.rows_of_text(rows)

    def save(self, fileobj):
        try:
            with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_DEFLATED, compresslevel=1,
                                 allowZip64=True) as zf:
                self._write(zf)
        finally:
            self.close()

    def _write(self, zf):
        sheets = self._sheets
        zf.writestr("[Content_Types].xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.styles+xml"/>'
            + "".join(f'<Override PartName="/xl/worksheets/sheet{s.index}.xml" ContentType="application/'
                      f'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for s in sheets)
            + "</Types>"))
        zf.writestr("_rels/.rels", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'))
        zf.writestr("xl/workbook.xml", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<bookViews><workbookView/></bookViews><sheets>'
            + "".join(f'<sheet name="{_escape(s.title)}" sheetId="{s.index}" r:id="rId{s.index}"/>'
                      for s in sheets)
            + "</sheets></workbook>"))
        zf.writestr("xl/_rels/workbook.xml.rels", (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(f'<Relationship Id="rId{s.index}" Type="http://schemas.openxmlformats.org/'
                      f'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{s.index}.xml"/>'
                      for s in sheets)
            + f'<Relationship Id="rId{len(sheets) + 1}" Type="http://schemas.openxmlformats.org/'
              f'officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>'))
        zf.writestr("xl/styles.xml", STYLES)
        for s in sheets:
            head, tail = s.finish(frozen=s is not self._about)
            with zf.open(f"xl/worksheets/sheet{s.index}.xml", "w", force_zip64=True) as out, \
                    open(s.path, "rb") as body:
                out.write(head.encode())
                shutil.copyfileobj(body, out, 1 << 20)
                out.write(tail.encode())
            rels = s.rels()
            if rels:
                zf.writestr(f"xl/worksheets/_rels/sheet{s.index}.xml.rels", rels)

    def close(self):
        for s in self._sheets:
            s.file.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _csv_value(value):
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        return "'" + value if value.startswith(RISKY_START) else value
    if kind is bool:
        return "1" if value else "0"
    if kind is datetime:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if kind is Link:
        return _csv_value(value.text)
    return value


class _Sink:
    """What csv.writer writes into: the texts of many rows, joined and written to the file at
    once (one encode and one write per batch rather than per row)."""

    __slots__ = ("parts", "write")

    def __init__(self):
        self.parts = []
        self.write = self.parts.append


def _csv_text(value):
    """What the csv module writes for a value _csv_value leaves as it is (a date: its isoformat)."""
    value = _csv_value(value)
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def csv_cells(values):
    """The texts the CSV holds for `values`, exactly as the csv module would write each (before
    any quoting): a text with a formula start gets its apostrophe, None is empty, a float is its
    repr, anything rarer goes through _csv_text. The one conversion every CSV cell goes through
    (CsvBook.sheet, and sheets.py for the cells it hands over as text)."""
    risky, text_of = RISKY_CHARS, _csv_text
    return [(("'" + v) if v[:1] in risky else v) if type(v) is str
            else "" if v is None else str(v) if type(v) is int
            else repr(v) if type(v) is float else text_of(v)
            for v in values]


def csv_cell(value):
    """csv_cells for one value (the same steps, in the same order)."""
    kind = type(value)
    if kind is str:
        return ("'" + value) if value[:1] in RISKY_CHARS else value
    if value is None:
        return ""
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    return _csv_text(value)


CSV_BATCH = 512  # rows held before they go to the file: a few hundred KB at most


class CsvBook:
    """One CSV per sheet in a temporary folder, zipped by `save`. Dates as ISO text (YYYY-MM-DD,
    times as YYYY-MM-DD HH:MM:SS in the county's zone), which Excel and WPS read as dates.

    The hot path (bench/export_bench.py): a row arrives as the texts its cells hold (`text_sheet`:
    sheets.py turns each answer straight into its text, by its column's plan; `sheet` takes
    values and converts them with csv_cells), and a row that needs no quoting (no comma, quote,
    line break or NUL inside a cell) is joined with commas as it is; any other row goes through
    csv.writer, so the bytes are the csv module's either way. Rows are written to the file in
    batches (one encode and one write each)."""

    dates_as_text = True  # sheets.py hands dates over as that text already
    cells_as_text = True  # ... and may hand every cell over as its text (text_sheet)

    def __init__(self, about=False):
        self._dir = tempfile.mkdtemp(prefix="jiedui-csv-")
        self._files = []  # (path, file, flush)
        self._titles = set()
        self._about = self._open("about") if about else None

    def _open(self, name):
        path = os.path.join(self._dir, sheet_title(name, self._titles) + ".csv")
        f = open(path, "w", encoding="utf-8-sig", newline="")
        sink = _Sink()
        writer = csv.writer(sink)
        parts = sink.parts

        def flush():
            if parts:
                f.write("".join(parts))
                parts.clear()
        self._files.append((path, f, flush))
        return writer, parts, flush

    def text_sheet(self, name, labels, names):
        """A sheet whose rows come as texts already (what csv_cells makes of each value): returns
        append(texts)."""
        writer, parts, flush = self._open(name)
        writer.writerow([self._value(v) for v in labels])
        writer.writerow([self._value(v) for v in names])
        add = parts.append
        writerow = writer.writerow

        def append(cells):
            line = ",".join(cells)
            # what the csv module would quote (and a row with no text at all, which it writes as "")
            if not line or '"' in line or "\n" in line or "\r" in line or "\0" in line \
                    or line.count(",") != len(cells) - 1:
                writerow(cells)
            else:
                add(line + "\r\n")
            if len(parts) >= CSV_BATCH:
                flush()
        return append

    def sheet(self, name, labels, names):
        """A sheet taking values (csv_cells turns them into texts): returns append(values)."""
        append = self.text_sheet(name, labels, names)
        return lambda values: append(csv_cells(values))

    def about(self, rows):
        if self._about is None:
            self._about = self._open("about")
        writer, _parts, flush = self._about
        for row in rows:
            writer.writerow([_csv_value(v) for v in row])
        flush()

    _value = staticmethod(_csv_value)

    def save(self, fileobj):
        try:
            with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                for path, f, flush in self._files:
                    flush()
                    f.close()
                    zf.write(path, os.path.basename(path))
        finally:
            self.close()

    def close(self):
        for _path, f, _flush in self._files:
            f.close()
        shutil.rmtree(self._dir, ignore_errors=True)
