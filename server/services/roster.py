"""Village ledger (花名册) import: parse a CSV or XLSX roster, then create or update households.

Ledgers come from Excel in China: CSV in GBK or UTF-8 (with or without BOM), XLSX, a title row above
the header, stray spaces in headers, phones stored as numbers. Parsing is pure (bytes in, rows and a
row-level error report out); importing is one store.write, so a roster is applied whole or not at all,
and re-importing the same ledger updates households instead of duplicating them.
"""

import csv
import io
import re


from server.core.numbers import parse_int
from server.records import audit, households, users, villages
from server.core import phones, workbooks
from server.core.workbooks import XLSX_MAX_PART_BYTES, XLSX_MAX_PARTS, XLSX_MAX_TOTAL_BYTES  # noqa: F401
from server.records.households import MAX_POPULATION
from server.records.users import USERNAME_RE
from server.store import get_store

MAX_ROWS = 5000          # a village has at most ~1,600 households
MAX_BYTES = 5 * 1024 * 1024
HEADER_SCAN_ROWS = 10    # the header may sit below a title row or two
MAX_TEXT = 200

# Canonical field -> accepted headers (compared after normalise_header).
COLUMNS = {
    "head_name": ("户主姓名", "户主", "户主名", "姓名", "head_name", "head", "name"),
    "population": ("家庭人口", "人口", "家庭人口数", "人口数", "家庭人数", "population"),
    "phone": ("联系电话", "电话", "手机", "手机号", "手机号码", "联系方式", "phone", "telephone", "mobile"),
    "category": ("类别", "户类别", "户类型", "农户类别", "category"),
    "group": ("组别", "组", "村民小组", "小组", "group"),
    "address": ("地址", "住址", "家庭住址", "家庭地址", "address"),
    "number": ("户编号", "户号", "编号", "number", "household_number", "no"),
    "cadres": ("帮扶责任人", "帮扶人", "结对干部", "帮扶干部", "cadres", "cadre"),
}
FIELD_LABELS = {
    "head_name": ("户主姓名", "head name"), "population": ("家庭人口", "population"),
    "phone": ("联系电话", "phone"), "category": ("类别", "category"), "group": ("组别", "group"),
    "address": ("地址", "address"), "number": ("户编号", "household number"),
    "cadres": ("帮扶责任人", "cadres"),
}
CATEGORIES = {
    "脱贫户": "tuopin", "脱贫": "tuopin", "脱贫人口": "tuopin", "已脱贫户": "tuopin",
    "监测户": "jiance", "监测对象": "jiance", "防返贫监测户": "jiance", "边缘易致贫户": "jiance",
    "脱贫不稳定户": "jiance", "突发严重困难户": "jiance",
    "低保户": "dibao", "低保": "dibao", "农村低保户": "dibao",
    "一般户": "ordinary", "一般": "ordinary", "普通户": "ordinary", "一般农户": "ordinary",
    "tuopin": "tuopin", "jiance": "jiance", "dibao": "dibao", "ordinary": "ordinary",
}
CADRE_SPLIT_RE = re.compile(r"[、,，;；/\s]+")
HEADER_NOISE_RE = re.compile(r"[\s\u3000*＊:：_.\-]|[（(][^）)]*[）)]")
FORMULA_LEAD = "=+-@\t\r"


class RosterError(Exception):
    """The roster cannot be imported; .errors is the row-level report (nothing was written)."""

    def __init__(self, errors):
        super().__init__(f"{len(errors)} roster error(s)")
        self.errors = errors


def _error(row, column, zh, en):
    return {"row": row, "column": column, "zh": zh, "en": en}


def normalise_header(text):
    """'  户主姓名* ', '家庭人口（人）', 'Head Name' and 'head_name' all reduce to one bare name."""
    if text is None:
        return ""
    return HEADER_NOISE_RE.sub("", str(text)).lower()


_ALIASES = {normalise_header(alias): field for field, aliases in COLUMNS.items() for alias in aliases}


# ---- reading the file into a grid of cells ----------------------------------------------------


def _decode_text(data):
    """UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"), else GB18030 (GBK)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data:
        return None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
            return None
        return text
    return None


def _csv_grid(data):
    text = _decode_text(data)
    if text is None:
        return None, _error(None, None, "文件不是可识别的文本表格（应为 UTF-8 或 GBK 编码的 CSV）。",
                            "The file is not a readable text table (expected CSV in UTF-8 or GBK).")
    head = "\n".join(text.splitlines()[:HEADER_SCAN_ROWS + 1])
    delimiter = max(",\t;", key=head.count)
    try:
        grid = []
        for cells in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            grid.append(cells)
            if len(grid) > MAX_ROWS + HEADER_SCAN_ROWS + 1:
                break
    except csv.Error as e:
        return None, _error(None, None, f"CSV 格式错误：{e}", f"Malformed CSV: {e}")
    return grid, None


XLSX_MAX_COLUMNS = 64            # a roster has about ten columns


def _xlsx_too_large(data):
    """The workbook caps (core/workbooks.py) as a roster error, or None."""
    found = workbooks.too_large(data)
    return _error(None, None, *found) if found else None


def _xlsx_grid(data):
    """The first sheet's cells, read-only and capped: its claimed dimension is ignored (a sheet may
    claim A1:XFD1048576, a million rows of 16,384 cells), rows and columns stop at the caps, and the
    unpacked size of the workbook is checked first (a sharedStrings bomb)."""
    from openpyxl import load_workbook
    if not data.startswith(b"PK"):
        return None, _error(None, None, "该文件不是有效的 XLSX 表格（请在 Excel 中另存为 .xlsx 或 CSV）。",
                            "The file is not a valid XLSX workbook (save it from Excel as .xlsx or CSV).")
    too_large = _xlsx_too_large(data)
    if too_large:
        return None, too_large
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises a zoo of errors for broken workbooks; all mean the same here
        return None, _error(None, None, "该文件不是有效的 XLSX 表格（请在 Excel 中另存为 .xlsx 或 CSV）。",
                            "The file is not a valid XLSX workbook (save it from Excel as .xlsx or CSV).")
    max_rows = MAX_ROWS + HEADER_SCAN_ROWS + 1
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        grid, capped = [], False
        if ws is not None:
            if hasattr(ws, "reset_dimensions"):
                ws.reset_dimensions()
            for cells in ws.iter_rows(min_row=1, max_row=max_rows + 1, min_col=1,
                                      max_col=XLSX_MAX_COLUMNS, values_only=True):
                grid.append(list(cells))
                if len(grid) > max_rows:
                    capped = True  # rows go on past the cap: "too many rows", never a silent cut
                    break
        while grid and not capped and all(c is None or c == "" for c in grid[-1]):
            grid.pop()  # formatted but empty rows at the end are no rows
    except Exception:
        return None, _error(None, None, "XLSX 表格内容无法读取。", "The XLSX workbook's sheet cannot be read.")
    finally:
        wb.close()
    return grid, None


def _read_grid(filename, data):
    """The cells of the file's first table; the filename only hints at the format."""
    name = (filename or "").lower()
    if name.endswith(".xls") or data.startswith(b"\xd0\xcf\x11\xe0"):
        return None, _error(None, None, "不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV。",
                            "Old .xls files are not supported; save as .xlsx or CSV from Excel.")
    if name.endswith((".xlsx", ".xlsm")):
        return _xlsx_grid(data)
    if data.startswith(b"PK\x03\x04") and not name.endswith((".csv", ".txt")):
        return _xlsx_grid(data)
    return _csv_grid(data)


read_grid = _read_grid  # the same reader, caps and words for other sheets (services/user_import.py)


# ---- cell values --------------------------------------------------------------------------------


def _cell_text(value):
    """A cell as text: numbers that are whole print without '.0' (Excel stores phones as numbers)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().replace("\u3000", " ").strip()


def _plain_text(value):
    """Text stays text: leading formula characters are stripped so an export can never run them."""
    return _cell_text(value).lstrip(FORMULA_LEAD).strip()


def _parse_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = _cell_text(value)
    for suffix in ("人", "口", "号"):
        text = text.removesuffix(suffix)
    return parse_int(text, 0) if text.isascii() else None  # "²".isdigit() is True; int("²") fails


def parse_phone(value):
    """A normalised phone, '' for a blank cell, or None when it is neither mobile nor landline."""
    return phones.normalise(_cell_text(value))


cell_text, plain_text = _cell_text, _plain_text


def _normalise_group(text):
    return f"{text}组" if text.isascii() and text.isdigit() else text


# ---- the parser -----------------------------------------------------------------------------------


def _find_header(grid):
    for index, cells in enumerate(grid[:HEADER_SCAN_ROWS]):
        fields = [_ALIASES.get(normalise_header(c)) for c in cells]
        if "head_name" in fields:
            return index, fields
    return None, None


def parse_roster(filename, data):
    """Parse a ledger. Returns (rows, errors): rows are dicts of the fields the file carries (blank
    cells left out) plus "row", the Excel-style row number; errors are
    [{"row", "column", "zh", "en"}] with row None for problems of the whole file."""
    rows, errors, _refused = parse_roster_rows(filename, data)
    return rows, errors


def parse_roster_rows(filename, data):
    """parse_roster, plus the rows refused for their own errors as far as they could be read, so
    the import can still name their unknown cadres: every error of a file in one report."""
    if not data or not data.strip():
        return [], [_error(None, None, "文件是空的。", "The file is empty.")], []
    grid, err = _read_grid(filename, data)
    if err:
        return [], [err], []
    header_index, fields = _find_header(grid)
    if header_index is None:
        return [], [_error(None, None,
                           f"前 {HEADER_SCAN_ROWS} 行中找不到表头（须有“户主姓名”列）。",
                           f"No header row in the first {HEADER_SCAN_ROWS} rows "
                           f"(a column “户主姓名” / head_name is required).")], []
    headers = [_cell_text(c) for c in grid[header_index]]
    errors = []
    seen = {}
    for col, field in enumerate(fields):
        if field is None:
            continue
        if field in seen:
            errors.append(_error(header_index + 1, headers[col],
                                 f"列“{headers[col]}”与“{headers[seen[field]]}”重复。",
                                 f"Column “{headers[col]}” repeats “{headers[seen[field]]}”."))
            fields[col] = None
        else:
            seen[field] = col
    body = grid[header_index + 1:]
    if len(body) > MAX_ROWS:
        return [], errors + [_error(None, None, f"行数超过上限 {MAX_ROWS}，请按村分开导入。",
                                    f"More than {MAX_ROWS} rows; import one village per file.")], []
    rows, refused = [], []
    numbers = {}
    keys = {}
    for offset, cells in enumerate(body):
        row_no = header_index + 2 + offset
        if all(_cell_text(c) == "" for c in cells):
            continue
        values = {f: cells[c] if c < len(cells) else None for c, f in enumerate(fields) if f}
        row, row_errors = _parse_row(row_no, values, {f: headers[c] for c, f in enumerate(fields) if f})
        # A row with its own errors still takes part in the duplicate check, both ways.
        if "number" in row:
            first = numbers.setdefault(row["number"], row_no)
            if first != row_no:
                row_errors.append(_error(row_no, headers[seen["number"]],
                                         f"户编号 {row['number']} 与第 {first} 行重复。",
                                         f"Household number {row['number']} repeats row {first}."))
        elif "head_name" in row:
            key = (row["head_name"], row.get("group", ""))
            first = keys.setdefault(key, row_no)
            if first != row_no:
                row_errors.append(_error(row_no, headers[seen["head_name"]],
                                         f"同组同名户主与第 {first} 行重复，请填写户编号加以区分。",
                                         f"Same head name and group as row {first}; add household numbers "
                                         f"to tell them apart."))
        errors.extend(row_errors)
        (refused if row_errors else rows).append(row)
    if not rows and not errors:
        errors.append(_error(None, None, "表头下面没有数据行。", "There are no rows below the header."))
    return rows, errors, refused


def _parse_row(row_no, values, headers):
    """One ledger line -> (row dict, errors)."""
    row, errors = {"row": row_no}, []

    def bad(field, zh, en):
        errors.append(_error(row_no, headers[field], zh, en))

    for field, raw in values.items():
        text = _cell_text(raw)
        if field == "head_name":
            name = _plain_text(raw)
            if not name:
                bad(field, "户主姓名必填。", "The head name is required.")
            elif len(name) > 50:
                bad(field, "户主姓名过长（最多 50 字）。", "The head name is too long (at most 50 characters).")
            else:
                row[field] = name
        elif not text:
            continue  # a blank cell carries nothing: it never erases what the household has
        elif field == "population":
            n = _parse_int(raw)
            if n is None or not 1 <= n <= MAX_POPULATION:
                bad(field, f"家庭人口须为 1–{MAX_POPULATION} 的整数（而不是“{text}”）。",
                    f"Population must be a whole number 1–{MAX_POPULATION} (not “{text}”).")
            else:
                row[field] = n
        elif field == "phone":
            phone = parse_phone(raw)
            if phone is None:
                bad(field, f"电话“{text}”不是 11 位手机号或带区号的固定电话。",
                    f"Phone “{text}” is neither an 11-digit mobile nor a landline with area code.")
            else:
                row[field] = phone
        elif field == "category":
            code = CATEGORIES.get(text.replace(" ", "").lower())
            if code is None:
                bad(field, f"类别“{text}”无法识别（应为 脱贫户、监测户、低保户 或 一般户）。",
                    f"Unknown category “{text}” (expected 脱贫户/tuopin, 监测户/jiance, 低保户/dibao "
                    f"or 一般户/ordinary).")
            else:
                row[field] = code
        elif field in ("group", "address"):
            value = _plain_text(raw)
            if len(value) > MAX_TEXT:
                bad(field, f"内容过长（最多 {MAX_TEXT} 字）。", f"Too long (at most {MAX_TEXT} characters).")
            elif value:
                row[field] = _normalise_group(value) if field == "group" else value
        elif field == "number":
            n = _parse_int(raw)
            if n is None or not 1 <= n <= 9999:
                bad(field, f"户编号须为 1–9999 的整数（而不是“{text}”）。",
                    f"The household number must be a whole number 1–9999 (not “{text}”).")
            else:
                row[field] = n
        elif field == "cadres":
            names = [n.lower() for n in CADRE_SPLIT_RE.split(text) if n]
            wrong = [n for n in names if not USERNAME_RE.match(n)]
            if wrong:
                bad(field, f"帮扶责任人须填用户名（如 liwei），多人用“、”分隔：{'、'.join(wrong)}",
                    f"Cadres must be usernames (such as liwei), separated by “、” or “,”: {', '.join(wrong)}")
            else:
                row[field] = list(dict.fromkeys(names))
    # Whatever the ledger's spelling, the household's own schema has the last word.
    carried = {f: row[f] for f in ATTRIBUTES if f in row}
    _clean, problems = households.clean_changes(carried)
    for p in problems:
        if not any(e["column"] == headers.get(p["field"]) for e in errors):
            errors.append(_error(row_no, headers.get(p["field"]), p["zh"], p["en"]))
    return row, errors


# ---- importing into the store ------------------------------------------------------------------


ATTRIBUTES = ("head_name", "phone", "address", "group", "category", "population")


def _cadre_errors(row, village_id, accounts):
    errors = []
    for cid in row.get("cadres", []):
        user = accounts.get(cid)
        if user is None:
            errors.append(_error(row["row"], "帮扶责任人", f"没有用户名为 {cid} 的账号。",
                                 f"No account with username {cid}."))
        elif user.get("role") != "cadre" or village_id not in (user.get("villages") or []):
            errors.append(_error(row["row"], "帮扶责任人", f"{cid} 不是本村的驻村干部。",
                                 f"{cid} is not a cadre of this village."))
    return errors


def _plan(tx, village_id, rows, refused=()):
    """Match every row to a household (or a new id) and check cadres (of the refused rows too);
    returns (plan, errors)."""
    errors = []
    if villages.get(village_id, tx) is None:
        return [], [_error(None, None, f"村 {village_id} 不存在，请先创建该村（管理 → 村，或 village create）。",
                           f"Village {village_id} does not exist; create it first (Admin → Villages, "
                           f"or village create).")]
    existing = {d["id"]: d for d in households.in_village(village_id, tx)}
    by_key = {}
    for doc in existing.values():
        by_key.setdefault((doc.get("head_name", ""), doc.get("group", "")), []).append(doc["id"])
    accounts = {u["id"]: u for u in users.list_all(tx)}
    taken = set(existing) | {households.make_id(village_id, r["number"]) for r in rows if "number" in r}
    next_number = max((households.number_of(h) for h in taken), default=0) + 1
    targeted = {}
    plan = []
    for row in refused:
        errors.extend(_cadre_errors(row, village_id, accounts))
    for row in rows:
        row_errors = _cadre_errors(row, village_id, accounts)
        if "number" in row:
            hid = households.make_id(village_id, row["number"])
        else:
            matches = by_key.get((row["head_name"], row.get("group", "")), [])
            if len(matches) > 1:
                row_errors.append(_error(row["row"], "户主姓名",
                                         f"本村有多户同组同名户主（{'、'.join(sorted(matches))}），请填写户编号。",
                                         f"Several households share this head name and group "
                                         f"({', '.join(sorted(matches))}); add the household number."))
                hid = None
            elif matches:
                hid = matches[0]
            else:
                while households.make_id(village_id, next_number) in taken:
                    next_number += 1
                if next_number > 9999:
                    row_errors.append(_error(row["row"], None, "户编号已用完（最多 9999 户）。",
                                             "No household numbers left (at most 9999)."))
                    hid = None
                else:
                    hid = households.make_id(village_id, next_number)
                    taken.add(hid)
        if hid is not None:
            first = targeted.setdefault(hid, row["row"])
            if first != row["row"]:
                row_errors.append(_error(row["row"], None, f"与第 {first} 行指向同一户 {hid}。",
                                         f"Refers to the same household {hid} as row {first}."))
        errors.extend(row_errors)
        if not row_errors:
            plan.append((row, hid, existing.get(hid)))
    return plan, errors


def import_roster(village_id, rows, *, actor, store=None, earlier_errors=(), refused=()):
    """Create or update the village's households from parsed rows, all in one write.

    Raises RosterError (nothing written) when any row cannot be applied — the parser's errors
    (`earlier_errors`) and the plan's (unknown village or cadre, an ambiguous match) together, so
    one attempt reports every problem of the file. Returns {"created", "updated", "unchanged"}."""

    def write(tx):
        plan, errors = _plan(tx, village_id, rows, refused)
        errors = list(earlier_errors) + errors
        if errors:
            raise RosterError(sorted(errors, key=lambda e: (e["row"] or 0)))
        summary = {"created": 0, "updated": 0, "unchanged": 0}
        for row, hid, doc in plan:
            carried = {f: row[f] for f in ATTRIBUTES if f in row}
            if "cadres" in row:
                carried["cadre_ids"] = row["cadres"]
            if doc is None:
                households.create(tx, actor, households.new_household(village_id, hid, **carried),
                                  write_audit=False)
                summary["created"] += 1
                continue
            before = doc.get("version", 1)
            stored, _clash = households.apply_changes(tx, actor, hid, carried, source="roster",
                                                      write_audit=False)
            summary["updated" if stored.get("version", 1) != before else "unchanged"] += 1
        audit.record(tx, actor, "import_roster", village_id, dict(summary, rows=len(rows)))
        return summary

    return (store or get_store()).write(write)


def read_roster_file(path, max_bytes=MAX_BYTES):
    """The file's bytes, or a file-level error when it is too large or unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        return None, _error(None, None, f"无法读取文件：{e.strerror}", f"Cannot read the file: {e.strerror}")
    if len(data) > max_bytes:
        return None, _error(None, None, f"文件超过 {max_bytes // (1024 * 1024)} MB。",
                            f"The file is larger than {max_bytes // (1024 * 1024)} MB.")
    return data, None


def import_upload(village_id, filename, data, *, actor, store=None):
    """Parse and import a file's bytes (the admin page's upload): (summary, []) or (None, errors),
    and with errors nothing is written. The caller limits the size."""
    rows, errors, refused = parse_roster_rows(filename, data)
    if any(e["row"] is None for e in errors):
        return None, errors  # the file itself is unreadable: nothing to plan
    try:
        return import_roster(village_id, rows, actor=actor, store=store, earlier_errors=errors,
                             refused=refused), []
    except RosterError as e:
        return None, e.errors


def run_import(store, path, village_id, actor, max_bytes=MAX_BYTES):
    """The import-roster command without its click shell: returns (summary or None, errors)."""
    data, err = read_roster_file(path, max_bytes)
    if err:
        return None, [err]
    return import_upload(village_id, str(path), data, actor=actor, store=store)


def format_errors(errors):
    """The row-level report, one line per problem, in both languages."""
    lines = []
    for e in errors:
        where_zh = f"第 {e['row']} 行" if e.get("row") else "文件"
        where_en = f"row {e['row']}" if e.get("row") else "file"
        if e.get("column"):
            where_zh += f"“{e['column']}”列"
            where_en += f", column “{e['column']}”"
        lines.append(f"{where_zh}：{e['zh']}  |  {where_en}: {e['en']}")
    return "\n".join(lines)
