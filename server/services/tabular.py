"""Workbooks written row by row to a temporary file, so an export's memory stays flat however many
rows it has: XLSX through openpyxl's write-only mode, or one UTF-8-with-BOM CSV per sheet in a ZIP
(Excel and WPS open those as they are). Both get two header rows: labels in the page's language,
then field names for programs.

A text that starts with = + - @, a tab or a carriage return would be run as a formula by a
spreadsheet (CSV injection): in XLSX it is written as a typed text cell, which Excel shows and never
evaluates; in CSV it gets a leading apostrophe, the mark Excel and WPS read as "this is text".
"""

import csv
import os
import re
import shutil
import tempfile
import zipfile

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from server.core.text import NOT_PRINTABLE_RE

RISKY_START = ("=", "+", "-", "@", "\t", "\r")
ILLEGAL_XML_RE = NOT_PRINTABLE_RE
SHEET_NAME_RE = re.compile(r"[\[\]:*?/\\]")


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


class XlsxBook:
    """One write-only workbook; sheets may be appended to in any order (each streams to its own
    temporary file inside openpyxl until `save`)."""

    def __init__(self):
        self.book = Workbook(write_only=True)
        self._titles = set()
        self._bold = Font(bold=True)

    def sheet(self, name, labels, names):
        ws = self.book.create_sheet(sheet_title(name, self._titles))
        ws.freeze_panes = "A3"
        header = []
        for text in labels:
            cell = WriteOnlyCell(ws, value=self._clean(text))
            cell.data_type = "s"
            cell.font = self._bold
            header.append(cell)
        ws.append(header)
        ws.append([self._text_cell(ws, n) for n in names])
        return lambda values: ws.append([self._value(ws, v) for v in values])

    @staticmethod
    def _clean(value):
        return ILLEGAL_XML_RE.sub("", value) if isinstance(value, str) else value

    def _text_cell(self, ws, value):
        cell = WriteOnlyCell(ws, value=self._clean(str(value)))
        cell.data_type = "s"  # never a formula, whatever it starts with
        return cell

    def _value(self, ws, value):
        if isinstance(value, str):
            value = self._clean(value)
            return self._text_cell(ws, value) if is_risky(value) else value
        return value

    def save(self, fileobj):
        self.book.save(fileobj)


class CsvBook:
    """One CSV per sheet in a temporary folder, zipped by `save`."""

    def __init__(self):
        self._dir = tempfile.mkdtemp(prefix="jiedui-csv-")
        self._files = []
        self._titles = set()

    def sheet(self, name, labels, names):
        path = os.path.join(self._dir, sheet_title(name, self._titles) + ".csv")
        f = open(path, "w", encoding="utf-8-sig", newline="")
        self._files.append((path, f))
        writer = csv.writer(f)
        writer.writerow([self._value(v) for v in labels])
        writer.writerow([self._value(v) for v in names])
        return lambda values: writer.writerow([self._value(v) for v in values])

    @staticmethod
    def _value(value):
        if value is None:
            return ""
        if isinstance(value, bool):
            return "1" if value else "0"
        if is_risky(value):
            return "'" + value
        return value

    def save(self, fileobj):
        try:
            with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_DEFLATED) as zf:
                for path, f in self._files:
                    f.close()
                    zf.write(path, os.path.basename(path))
        finally:
            self.close()

    def close(self):
        for _path, f in self._files:
            f.close()
        shutil.rmtree(self._dir, ignore_errors=True)
