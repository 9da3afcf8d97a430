"""Land ledger (土地承包台账) import: a village's own spreadsheets in, a preview out, and only on
confirmation one write.

What villages keep: a household sheet, a member sheet (姓名, 与户主关系, 身份证号码, 性别, 出生年月,
联系电话, 外出务工地) and a plot sheet (地块名称, 地块编码, 面积（亩）, 东至, 西至, 南至, 北至,
合同编号, 备注), in one workbook or one CSV each, or all on one sheet where a household's rows
repeat or its cells are merged. Every sheet is read the same way: each row names a household (its
cells left blank or merged mean "the household above") and may carry a member and a plot, so the
three layouts need one parser.

The comparison is three-way, per field: what the file says, what Jiedui holds, and what the last
import of this household said (kept on the household as `ledger_import`). A field only the file
changed is a change; one only Jiedui changed stays as it is; one both changed is a clash, shown and
never overwritten unless the person chooses the file's value. So the same file twice changes nothing.

The file readers and their caps (zip bombs, huge sheets, encodings) are roster.py's.
"""

import csv
import io
import os
import re
import secrets
import time
from datetime import date, datetime

from server.core.text import CONTROL_RE
from server.core import idcard
from server.records import audit, households, villages
from server.services import roster
from server.services.roster import _cell_text, _decode_text, _plain_text, _xlsx_too_large, normalise_header
from server.store import get_store

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20000          # every sheet together: a village of 1,600 households and its plots fit
MAX_COLUMNS = 64
HEADER_SCAN_ROWS = 10
MAX_ERRORS = 500
STAGE_SECONDS = 24 * 3600

HOUSEHOLD_COLS = ("number", "head_name", "hh_phone", "group", "address")
MEMBER_COLS = ("name", "relation", "id_card", "sex", "born", "phone", "work_place")
PLOT_COLS = ("plot_name", "plot_code", "area_mu", "east", "west", "south", "north", "contract_no", "note")
COLUMNS = {
    "number": ("户编号", "户号", "农户编号", "household_number", "number"),
    "head_name": ("户主姓名", "户主", "户主名", "承包方代表", "承包方代表姓名", "head_name"),
    "hh_phone": ("户主电话", "户联系电话", "家庭电话"),
    "group": ("组别", "组", "村民小组", "小组", "group"),
    "address": ("地址", "住址", "家庭住址", "address"),
    "name": ("姓名", "成员姓名", "家庭成员", "家庭成员姓名", "name"),
    "relation": ("与户主关系", "与户主的关系", "关系", "relation"),
    "id_card": ("身份证号码", "身份证号", "身份证", "公民身份号码", "身份证件号码", "id_card"),
    "sex": ("性别", "sex"),
    "born": ("出生年月", "出生日期", "出生年月日", "出生年份", "born"),
    "phone": ("联系电话", "电话", "手机", "手机号", "手机号码", "联系方式", "phone"),
    "work_place": ("外出务工地", "务工地", "务工地点", "外出务工地点", "work_place"),
    "plot_name": ("地块名称", "地块名", "地名", "plot_name"),
    "plot_code": ("地块编码", "地块代码", "地块编号", "plot_code"),
    "area_mu": ("面积", "承包面积", "实测面积", "确权面积", "地块面积", "area_mu"),
    "east": ("东至", "东", "east"), "west": ("西至", "西", "west"),
    "south": ("南至", "南", "south"), "north": ("北至", "北", "north"),
    "contract_no": ("合同编号", "承包合同编号", "合同号", "contract_no"),
    "note": ("备注", "note"),
}
_ALIASES = {normalise_header(a): f for f, aliases in COLUMNS.items() for a in aliases}
MEMBER_ATTRS = ("name", "relation", "id_card", "sex", "born", "birth_year", "phone", "work_place")
PLOT_ATTRS = ("name", "code", "area_mu", "east", "west", "south", "north", "contract_no", "note")
HOUSEHOLD_ATTRS = ("head_name", "phone", "group", "address")
SEXES = {"男": "male", "女": "female", "male": "male", "female": "female", "m": "male", "f": "female"}
BORN_RE = re.compile(r"^(\d{4})\s*[-./年]?\s*(\d{1,2})?\s*[-./月]?\s*(\d{1,2})?\s*日?$")


class LedgerError(Exception):
    def __init__(self, errors):
        super().__init__(f"{len(errors)} ledger error(s)")
        self.errors = errors


def _err(sheet, row, column, zh, en):
    return {"sheet": sheet, "row": row, "column": column, "zh": zh, "en": en}


# ---- reading files into sheets ------------------------------------------------------------------


def _xlsx_sheets(name, data, errors):
    from openpyxl import load_workbook
    too_large = _xlsx_too_large(data)
    if too_large:
        errors.append(_err(name, None, None, too_large["zh"], too_large["en"]))
        return []
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        errors.append(_err(name, None, None, "该文件不是有效的 XLSX 表格（请在 Excel 中另存为 .xlsx 或 CSV）。",
                           "The file is not a valid XLSX workbook (save it from Excel as .xlsx or CSV)."))
        return []
    out, total = [], 0
    try:
        for ws in wb.worksheets:
            if hasattr(ws, "reset_dimensions"):
                ws.reset_dimensions()
            grid = []
            for cells in ws.iter_rows(min_row=1, max_row=MAX_ROWS + HEADER_SCAN_ROWS + 2, min_col=1,
                                      max_col=MAX_COLUMNS, values_only=True):
                grid.append(list(cells))
            while grid and all(c is None or c == "" for c in grid[-1]):
                grid.pop()
            total += len(grid)
            if total > MAX_ROWS + HEADER_SCAN_ROWS:
                errors.append(_err(ws.title, None, None, f"行数超过上限 {MAX_ROWS}，请按村或按组分开导入。",
                                   f"More than {MAX_ROWS} rows; import one village or group at a time."))
                return []
            if grid:
                out.append((ws.title, grid))
    except Exception:
        errors.append(_err(name, None, None, "XLSX 表格内容无法读取。", "The XLSX workbook's sheets cannot be read."))
        return []
    finally:
        wb.close()
    return out


def _decode(data):
    """roster's decoding, but a control character inside a cell is named at its cell (below), not
    taken for a binary file."""
    text = _decode_text(data)
    if text is None and b"\x00" not in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
    return text


def _csv_sheet(name, data, errors):
    text = _decode(data)
    if text is None:
        errors.append(_err(name, None, None, "文件不是可识别的文本表格（应为 UTF-8 或 GBK 编码的 CSV）。",
                           "The file is not a readable text table (expected CSV in UTF-8 or GBK)."))
        return []
    head = "\n".join(text.splitlines()[:HEADER_SCAN_ROWS + 1])
    delimiter = max(",\t;", key=head.count)
    grid = []
    try:
        for cells in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            grid.append(cells[:MAX_COLUMNS])
            if len(grid) > MAX_ROWS + HEADER_SCAN_ROWS:
                errors.append(_err(name, None, None, f"行数超过上限 {MAX_ROWS}，请按村或按组分开导入。",
                                   f"More than {MAX_ROWS} rows; import one village or group at a time."))
                return []
    except csv.Error as e:
        errors.append(_err(name, None, None, f"CSV 格式错误：{e}", f"Malformed CSV: {e}"))
        return []
    return [(name, grid)]


def read_sheets(files, errors):
    """[(sheet name, grid)] from [(filename, bytes)]: every sheet of a workbook, a CSV as one sheet
    named after its file."""
    sheets = []
    for filename, data in files:
        name = os.path.basename(filename or "upload")
        lower = name.lower()
        if not data or not data.strip():
            errors.append(_err(name, None, None, "文件是空的。", "The file is empty."))
        elif len(data) > MAX_BYTES:
            errors.append(_err(name, None, None, f"文件超过 {MAX_BYTES >> 20} MB。",
                               f"The file is larger than {MAX_BYTES >> 20} MB."))
        elif lower.endswith(".xls") or data.startswith(b"\xd0\xcf\x11\xe0"):
            errors.append(_err(name, None, None, "不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV。",
                               "Old .xls files are not supported; save as .xlsx or CSV from Excel."))
        elif data.startswith(b"PK\x03\x04") or lower.endswith((".xlsx", ".xlsm")):
            sheets.extend(_xlsx_sheets(name, data, errors))
        else:
            sheets.extend(_csv_sheet(os.path.splitext(name)[0], data, errors))
    if sum(len(g) for _n, g in sheets) > MAX_ROWS + HEADER_SCAN_ROWS * max(1, len(sheets)):
        errors.append(_err(None, None, None, f"行数超过上限 {MAX_ROWS}，请按村或按组分开导入。",
                           f"More than {MAX_ROWS} rows; import one village or group at a time."))
        return []
    return sheets


# ---- cells --------------------------------------------------------------------------------------


def _header(grid):
    """(index, fields, headers) of the first row of the first ten naming a ledger column."""
    for index, cells in enumerate(grid[:HEADER_SCAN_ROWS]):
        fields = [_ALIASES.get(normalise_header(c)) for c in cells]
        if sum(1 for f in fields if f) >= 2:
            return index, fields, [_cell_text(c) for c in cells]
    return None, None, None


def _resolve_fields(fields):
    """One sheet's columns in context: 姓名 is the head's name on a sheet with no member columns,
    联系电话 a member's phone on a sheet that lists members, else the household's."""
    present = set(f for f in fields if f)
    has_members = bool(present & {"relation", "id_card", "sex", "born", "work_place"}) or (
        "name" in present and "head_name" in present)
    out = []
    for f in fields:
        if f == "name" and not has_members:
            f = "head_name" if "head_name" not in present else None
        elif f == "phone" and not has_members:
            f = "hh_phone" if "hh_phone" not in present else None
        out.append(f)
    return out, has_members


def _born(value):
    """'1985-03', '1985.3', '1985年3月', 198503, a date cell -> ('1985-03', 1985), or None."""
    if isinstance(value, (datetime, date)):
        return f"{value.year:04d}-{value.month:02d}", value.year
    text = _cell_text(value)
    if re.fullmatch(r"\d{6}", text):
        text = text[:4] + "-" + text[4:]
    if re.fullmatch(r"\d{8}", text):
        text = text[:4] + "-" + text[4:6] + "-" + text[6:]
    m = BORN_RE.match(text)
    if not m:
        return None
    year, month = int(m.group(1)), int(m.group(2)) if m.group(2) else None
    if not 1880 <= year <= date.today().year or (month is not None and not 1 <= month <= 12):
        return None
    return (f"{year:04d}-{month:02d}" if month else f"{year:04d}"), year


def _area(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = _cell_text(value).replace("亩", "").replace(",", "").strip()
    try:
        return float(text)
    except ValueError:
        return None


def _parse_row(sheet, row_no, cells, fields, headers, errors):
    """One line -> {"hh": {...}, "member": {...} or None, "plot": {...} or None} (blank cells left
    out), errors appended."""
    hh, member, plot = {}, {}, {}

    def bad(col, zh, en):
        errors.append(_err(sheet, row_no, headers[col], zh, en))

    for col, field in enumerate(fields):
        if field is None or col >= len(cells):
            continue
        raw = cells[col]
        text = _cell_text(raw)
        if not text:
            continue
        if CONTROL_RE.search(str(raw)):
            bad(col, "含有控制字符。", "Holds control characters.")
            continue
        if field == "number":
            n = roster._parse_int(raw)
            if n is None or not 1 <= n <= 9999:
                bad(col, f"户编号须为 1–9999 的整数（而不是“{text}”）。",
                    f"The household number must be a whole number 1–9999 (not “{text}”).")
            else:
                hh["number"] = n
        elif field in ("head_name", "name"):
            name = _plain_text(raw)
            if len(name) > 50:
                bad(col, "姓名过长（最多 50 字）。", "The name is too long (at most 50 characters).")
            elif name:
                (hh if field == "head_name" else member)[field] = name
        elif field in ("hh_phone", "phone"):
            phone = roster.parse_phone(raw)
            if phone is None:
                bad(col, f"电话“{text}”不是 11 位手机号或带区号的固定电话。",
                    f"Phone “{text}” is neither an 11-digit mobile nor a landline with area code.")
            elif field == "hh_phone":
                hh["phone"] = phone
            else:
                member["phone"] = phone
        elif field in ("group", "address"):
            value = _plain_text(raw)
            if len(value) > 200:
                bad(col, "内容过长（最多 200 字）。", "Too long (at most 200 characters).")
            elif value:
                hh[field] = roster._normalise_group(value) if field == "group" else value
        elif field == "relation":
            member["relation"] = _plain_text(raw)[:30]
        elif field == "id_card":
            number = idcard.normalise(text)
            why = idcard.problem(number)
            if why:
                bad(col, f"身份证号码“{idcard.mask(number) or text[:20]}”有误：{why[0]}。",
                    f"ID number “{idcard.mask(number) or text[:20]}” is wrong: {why[1]}.")
            else:
                member["id_card"] = number
        elif field == "sex":
            sex = SEXES.get(text.lower())
            if sex is None:
                bad(col, f"性别须为男或女（而不是“{text}”）。", f"Sex must be 男 or 女 (not “{text}”).")
            else:
                member["sex"] = sex
        elif field == "born":
            born = _born(raw)
            if born is None:
                bad(col, f"出生年月“{text}”无法识别（如 1985-03）。", f"Cannot read the birth month “{text}” (e.g. 1985-03).")
            else:
                member["born"], member["birth_year"] = born
        elif field == "work_place":
            value = _plain_text(raw)
            if len(value) > 100:
                bad(col, "外出务工地过长（最多 100 字）。", "Working-away place too long (at most 100 characters).")
            else:
                member["work_place"] = value
        elif field == "plot_name":
            value = _plain_text(raw)
            if len(value) > 50:
                bad(col, "地块名称过长（最多 50 字）。", "Plot name too long (at most 50 characters).")
            else:
                plot["name"] = value
        elif field == "plot_code":
            if not households.PLOT_ID_RE.match(text):
                bad(col, f"地块编码“{text[:40]}”只能含字母、数字、- 和 _（最多 40 位）。",
                    f"Plot code “{text[:40]}” may hold letters, digits, - and _ (at most 40).")
            else:
                plot["code"] = text
        elif field == "area_mu":
            area = _area(raw)
            if area is None or area != area or area <= 0 or area > households.MAX_PLOT_AREA_MU:
                bad(col, f"面积须大于 0 且不超过 {households.MAX_PLOT_AREA_MU} 亩（而不是“{text}”）。",
                    f"The area must be more than 0 and at most {households.MAX_PLOT_AREA_MU} mu (not “{text}”).")
            else:
                plot["area_mu"] = round(area, 4)
        elif field in ("east", "west", "south", "north"):
            value = _plain_text(raw)
            if len(value) > households.MAX_BOUNDARY:
                bad(col, f"四至文字过长（最多 {households.MAX_BOUNDARY} 字）。",
                    f"Boundary text too long (at most {households.MAX_BOUNDARY} characters).")
            else:
                plot[field] = value
        elif field == "contract_no":
            plot["contract_no"] = _plain_text(raw)[:50]
        elif field == "note":
            value = _plain_text(raw)
            if len(value) > 200:
                bad(col, "备注过长（最多 200 字）。", "Note too long (at most 200 characters).")
            else:
                plot["note"] = value
    return hh, member, plot


def parse(files):
    """Every sheet of the files -> (rows, ignored columns, errors). A row is {"sheet", "row",
    "hh", "member", "plot", "household_sheet"}; its household is the one above when its household
    cells are blank or merged."""
    errors = []
    sheets = read_sheets(files, errors)
    rows, ignored = [], []
    for name, grid in sheets:
        index, fields, headers = _header(grid)
        if index is None:
            if any(_cell_text(c) for r in grid[:HEADER_SCAN_ROWS] for c in r):
                errors.append(_err(name, None, None,
                                   f"前 {HEADER_SCAN_ROWS} 行中找不到表头（如“户主姓名”“姓名”“地块名称”）。",
                                   f"No header row in the first {HEADER_SCAN_ROWS} rows (such as 户主姓名, "
                                   f"姓名, 地块名称)."))
            continue
        fields, has_members = _resolve_fields(fields)
        seen = {}
        for col, f in enumerate(fields):
            if f is None:
                if headers[col] and headers[col] not in ignored:
                    ignored.append(headers[col])
            elif f in seen:
                errors.append(_err(name, index + 1, headers[col], f"列“{headers[col]}”与“{headers[seen[f]]}”重复。",
                                   f"Column “{headers[col]}” repeats “{headers[seen[f]]}”."))
                fields[col] = None
            else:
                seen[f] = col
        present = set(seen)
        has_plots = bool(present & {"plot_name", "plot_code", "area_mu", "east", "west", "south", "north"})
        keyed = bool(present & {"number", "head_name"})
        if not keyed and not ("relation" in present and "name" in present):
            errors.append(_err(name, index + 1, None, "表中须有“户编号”或“户主姓名”列，以便找到所属农户。",
                               "The sheet needs a 户编号 or 户主姓名 column to tell whose rows they are."))
            continue
        household_sheet = not has_members and not has_plots
        last_hh = None
        for offset, cells in enumerate(grid[index + 1:]):
            row_no = index + 2 + offset
            if all(_cell_text(c) == "" for c in cells):
                continue
            hh, member, plot = _parse_row(name, row_no, cells, fields, headers, errors)
            if keyed:
                if "number" not in hh and "head_name" not in hh:
                    if last_hh is None:
                        errors.append(_err(name, row_no, None, "找不到所属农户（户编号和户主姓名都为空）。",
                                           "No household: both 户编号 and 户主姓名 are blank."))
                        continue
                    hh = dict(last_hh, **{k: v for k, v in hh.items()})
                    hh["_inherited"] = True
                last_hh = {k: v for k, v in hh.items() if k != "_inherited"}
            else:  # a member sheet listing families in order: the 户主 row starts one
                if member.get("relation") == "户主" or last_hh is None:
                    last_hh = {"head_name": member.get("name", "")}
                hh = dict(last_hh, _inherited=True)
            rows.append({"sheet": name, "row": row_no, "hh": hh, "member": member or None,
                         "plot": plot or None, "household_sheet": household_sheet})
            if len(errors) >= MAX_ERRORS:
                return rows, ignored, errors
    if not rows and not errors:
        errors.append(_err(None, None, None, "文件中没有数据行。", "There are no rows in the file."))
    return rows, ignored, errors


# ---- grouping rows into households ----------------------------------------------------------------


def group_households(rows, errors):
    """{key: {"hh": attrs, "members": [(row, member)], "plots": [(row, plot)], "rows": [...]}} in
    file order. A key is the household number, else (head name, group)."""
    by_number, by_head, out = {}, {}, {}
    hh_rows = {}
    for r in rows:
        hh = r["hh"]
        key = None
        if "number" in hh:
            key = by_number.get(hh["number"])
            if key is None and "head_name" in hh:
                key = by_head.get((hh["head_name"], hh.get("group", ""))) or by_head.get((hh["head_name"], None))
                if key is not None and out[key]["hh"].get("number") not in (None, hh["number"]):
                    key = None
            if key is None:
                key = ("n", hh["number"])
        else:
            name = hh.get("head_name", "")
            key = by_head.get((name, hh.get("group", ""))) or (by_head.get((name, None)) if "group" not in hh else None)
            if key is None:
                key = ("h", name, hh.get("group", ""))
        entry = out.get(key)
        if entry is None:
            entry = out[key] = {"hh": {}, "members": [], "plots": [], "first": r}
        if "number" in hh:
            by_number[hh["number"]] = key
        if "head_name" in hh:
            by_head.setdefault((hh["head_name"], hh.get("group", "")), key)
            by_head.setdefault((hh["head_name"], None), key)
        if r["household_sheet"]:
            first = hh_rows.setdefault((r["sheet"], key), r["row"])
            if first != r["row"]:
                errors.append(_err(r["sheet"], r["row"], None, f"农户重复：与第 {first} 行是同一户。",
                                   f"Duplicate household row: the same household as row {first}."))
                continue
        for attr in HOUSEHOLD_ATTRS + ("number",):
            if attr in hh and not hh.get("_inherited"):
                had = entry["hh"].get(attr)
                if had is not None and had != hh[attr]:
                    errors.append(_err(r["sheet"], r["row"], None,
                                       f"同一户的“{attr}”前后不一致（“{had}”与“{hh[attr]}”）。",
                                       f"The household's {attr} differs from an earlier row (“{had}” vs “{hh[attr]}”)."))
                else:
                    entry["hh"][attr] = hh[attr]
            elif attr in hh and attr not in entry["hh"]:
                entry["hh"][attr] = hh[attr]
        if r["member"]:
            if not r["member"].get("name"):
                errors.append(_err(r["sheet"], r["row"], None, "成员姓名必填。", "The member's name is required."))
            else:
                entry["members"].append((r, r["member"]))
        if r["plot"]:
            if not r["plot"].get("name") and not r["plot"].get("code"):
                errors.append(_err(r["sheet"], r["row"], None, "地块须有名称或编码。", "A plot needs a name or a code."))
            else:
                entry["plots"].append((r, r["plot"]))
    for key, entry in out.items():
        if not entry["hh"].get("head_name"):
            r = entry["first"]
            errors.append(_err(r["sheet"], r["row"], None, "户主姓名必填。", "The head name is required."))
    return out


# ---- comparing with what Jiedui holds --------------------------------------------------------------


def _member_key(m):
    return m.get("name", "")


def _claim(key, hid, r, in_file, owner, column, zh, en):
    """One household's claim on a key that only one household may hold (an ID number, a plot code):
    an error when another household of the file lists it, or another household in Jiedui holds it;
    else the claim is noted in `in_file` and None."""
    other = in_file.get(key)
    if other and other[0] != hid:
        return _err(r["sheet"], r["row"], column,
                    f"{zh} 同时列在两户中（另见表“{other[1]}”第 {other[2]} 行）。",
                    f"{en} is listed in two households (also sheet {other[1]} row {other[2]}).")
    in_file[key] = (hid, r["sheet"], r["row"])
    if owner.get(key) not in (None, hid):
        return _err(r["sheet"], r["row"], column, f"{zh} 已属于另一户 {owner[key]}。",
                    f"{en} already belongs to household {owner[key]}.")
    return None


def _plot_key(p):
    return p.get("code") or p.get("name", "")


def flat(doc_hh, members, plots):
    """{field path: value} of a household's ledger fields, the unit of comparison."""
    out = {a: doc_hh.get(a) for a in HOUSEHOLD_ATTRS if doc_hh.get(a) not in (None, "")}
    for m in members:
        for a in MEMBER_ATTRS:
            if m.get(a) not in (None, ""):
                out[f"members[{_member_key(m)}].{a}"] = m[a]
    for p in plots:
        for a in PLOT_ATTRS:
            if p.get(a) not in (None, ""):
                out[f"plots[{_plot_key(p)}].{a}"] = p[a]
    return out


def _match(items, incoming, by):
    """The index in `items` of the stored member/plot `incoming` is, or None."""
    for key in by:
        if incoming.get(key):
            for i, it in enumerate(items):
                if it.get(key) == incoming[key]:
                    return i
    return None


def plan(tx, village_id, groups, take=(), errors=None):
    """Match every household of the file to Jiedui's, compare field by field, check what spans
    households (a plot code or an ID number in two); returns (report, work)."""
    errors = errors if errors is not None else []
    take = set(take)
    if villages.get(village_id, tx) is None:
        errors.append(_err(None, None, None, f"村 {village_id} 不存在，请先创建该村。",
                           f"Village {village_id} does not exist; create it first."))
        return None, []
    existing = {d["id"]: d for d in households.in_village(village_id, tx)}
    by_head = {}
    for d in existing.values():
        by_head.setdefault((d.get("head_name", ""), d.get("group", "")), []).append(d["id"])
        by_head.setdefault((d.get("head_name", ""), None), []).append(d["id"])
    taken = set(existing) | {households.make_id(village_id, k[1]) for k in groups if k[0] == "n"}
    next_number = max((households.number_of(h) for h in taken), default=0) + 1
    # who holds which plot code and ID number in Jiedui now
    code_owner, card_owner = {}, {}
    for d in existing.values():
        for p in d.get("plots") or []:
            if p.get("code"):
                code_owner[p["code"]] = d["id"]
        for m in d.get("members") or []:
            if m.get("id_card"):
                card_owner[m["id_card"]] = d["id"]
    file_code, file_card = {}, {}
    report = {"households": {"new": 0, "changed": 0, "unchanged": 0},
              "members": {"new": 0, "changed": 0, "unchanged": 0},
              "plots": {"new": 0, "changed": 0, "unchanged": 0},
              "changes": [], "clashes": [], "ignored_columns": [], "errors": errors}
    work, targeted = [], {}
    for key, entry in groups.items():
        r0 = entry["first"]
        hh = entry["hh"]
        if "number" in hh:
            hid = households.make_id(village_id, hh["number"])
        else:
            found = by_head.get((hh.get("head_name", ""), hh.get("group", "") if "group" in hh else None), [])
            if len(found) > 1:
                errors.append(_err(r0["sheet"], r0["row"], None,
                                   f"本村有多户同名户主（{'、'.join(sorted(found))}），请填写户编号。",
                                   f"Several households share this head name ({', '.join(sorted(found))}); "
                                   f"add the household number."))
                continue
            if found:
                hid = found[0]
            else:
                while households.make_id(village_id, next_number) in taken:
                    next_number += 1
                if next_number > 9999:
                    errors.append(_err(r0["sheet"], r0["row"], None, "户编号已用完（最多 9999 户）。",
                                       "No household numbers left (at most 9999)."))
                    continue
                hid = households.make_id(village_id, next_number)
                taken.add(hid)
        first = targeted.setdefault(hid, r0)
        if first is not r0:
            errors.append(_err(r0["sheet"], r0["row"], None, f"与表“{first['sheet']}”第 {first['row']} 行指向同一户 {hid}。",
                               f"Refers to the same household {hid} as sheet {first['sheet']} row {first['row']}."))
            continue
        doc = existing.get(hid)
        cur_members = [dict(m) for m in (doc or {}).get("members") or []]
        cur_plots = [dict(p) for p in (doc or {}).get("plots") or []]
        # members and plots of the file, each once, checked across households
        new_members, new_plots, names_seen, plots_seen = [], [], {}, {}
        for r, m in entry["members"]:
            if m["name"] in names_seen:
                if m.get("id_card") and m.get("id_card") == names_seen[m["name"]].get("id_card") or not m.get("id_card"):
                    errors.append(_err(r["sheet"], r["row"], None, f"成员“{m['name']}”在同一户中重复。",
                                       f"Member “{m['name']}” appears twice in one household."))
                    continue
            names_seen[m["name"]] = m
            card = m.get("id_card")
            if card:
                error = _claim(card, hid, r, file_card, card_owner, "身份证号码", f"身份证号码 {idcard.mask(card)}",
                               f"ID number {idcard.mask(card)}")
                if error:
                    errors.append(error)
                    continue
            new_members.append(m)
        for r, p in entry["plots"]:
            pk = _plot_key(p)
            if pk in plots_seen:
                errors.append(_err(r["sheet"], r["row"], None, f"地块“{pk}”在同一户中重复（另见第 {plots_seen[pk]} 行）。",
                                   f"Plot “{pk}” appears twice in one household (also row {plots_seen[pk]})."))
                continue
            plots_seen[pk] = r["row"]
            code = p.get("code")
            if code:
                error = _claim(code, hid, r, file_code, code_owner, "地块编码", f"地块编码 {code}", f"Plot code {code}")
                if error:
                    errors.append(error)
                    continue
            new_plots.append(p)
        work.append(_compare(hid, doc, hh, new_members, new_plots, cur_members, cur_plots, take, report))
    return report, work


def _compare(hid, doc, hh, file_members, file_plots, cur_members, cur_plots, take, report):
    """Merge the file into copies of the household's members and plots, field by field, three
    ways; count and report. Returns the work for the write."""
    last = (doc or {}).get("ledger_import") or {}
    attrs, changed_any, snapshot = {}, False, dict(last)

    def decide(path, cur, new):
        """'same' | 'keep' (Jiedui's edit stands) | 'change' | 'clash'."""
        nonlocal changed_any
        if cur == new:
            snapshot[path] = new
            return "same"
        if path in last and last[path] == new:
            return "keep"
        if path in last and cur not in (None, "") and cur != last[path] and f"{hid}:{path}" not in take:
            report["clashes"].append({"household": hid, "field": path, "jiedui": cur, "file": new,
                                      "last_import": last[path]})
            snapshot[path] = new
            return "clash"
        report["changes"].append({"household": hid, "field": path, "before": cur, "after": new})
        snapshot[path] = new
        changed_any = True
        return "change"

    for a in HOUSEHOLD_ATTRS:
        if a in hh and decide(a, (doc or {}).get(a) if doc else None, hh[a]) == "change":
            attrs[a] = hh[a]
    members, members_dirty = cur_members, False
    for m in file_members:
        i = _match(members, m, ("id_card", "name"))
        target = members[i] if i is not None else {}
        dirty = False
        for a in MEMBER_ATTRS:
            if a in m and decide(f"members[{_member_key(m)}].{a}", target.get(a), m[a]) == "change":
                target[a] = m[a]
                dirty = True
        if i is None:
            members.append(target)
        members_dirty = members_dirty or dirty
        report["members"]["new" if i is None else "changed" if dirty else "unchanged"] += 1
    plots, plots_dirty = cur_plots, False
    for p in file_plots:
        i = _match(plots, p, ("code", "name"))
        target = plots[i] if i is not None else {"state": "surveyed"}
        dirty = False
        for a in PLOT_ATTRS:
            if a in p and decide(f"plots[{_plot_key(p)}].{a}", target.get(a), p[a]) == "change":
                target[a] = p[a]
                dirty = True
        if i is None:
            plots.append(target)
        plots_dirty = plots_dirty or dirty
        report["plots"]["new" if i is None else "changed" if dirty else "unchanged"] += 1
    if doc is None:
        report["households"]["new"] += 1
    else:
        report["households"]["changed" if changed_any else "unchanged"] += 1
    changes = dict(attrs)
    if members_dirty:
        changes["members"] = members
    if plots_dirty:
        changes["plots"] = plots
    return {"id": hid, "new": doc is None, "hh": hh, "changes": changes, "snapshot": snapshot}


# ---- the one write ---------------------------------------------------------------------------------


def _clean(work, village_id, errors):
    """Every household's changes through the owner's schema before anything is written."""
    for w in work:
        changes = dict(w["changes"])
        if "members" in changes:
            changes["members"] = [{k: v for k, v in m.items() if k in households.MEMBER_FIELDS}
                                  for m in changes["members"]]
        if "plots" in changes:
            changes["plots"] = [{k: v for k, v in p.items() if k in households.PLOT_FIELDS}
                                for p in changes["plots"]]
        clean, problems = households.clean_changes(changes)
        for p in problems:
            errors.append(_err(None, None, p["field"], f"{w['id']}：{p['zh']}", f"{w['id']}: {p['en']}"))
        if "plots" in clean:
            clean["plots"] = households.settle_plots(clean["plots"], None)
        w["clean"] = clean


def run(village_id, files, *, actor, confirm=False, take=(), store=None):
    """Parse, compare and (with confirm and no error) write. Returns (report, households planned):
    the report is DESIGN's JSON; nothing is written when it has errors or confirm is False."""
    store = store or get_store()
    rows, ignored, parse_errors = parse(files)
    groups = group_households(rows, parse_errors) if rows else {}

    def work_in(tx):
        errors = list(parse_errors)  # a store may run a write function again: start afresh each time
        report, work = plan(tx, village_id, groups, take, errors)
        if report is None:
            report = empty_report(errors)
        report["ignored_columns"] = ignored
        _clean(work, village_id, errors)
        report["errors"] = errors[:MAX_ERRORS]
        if errors or not confirm:
            return report, work
        for w in work:
            if w["new"]:
                doc = households.new_household(village_id, w["id"], **w["clean"])
                households.create(tx, actor, doc, write_audit=False)
            elif w["clean"]:
                households.apply_changes(tx, actor, w["id"], w["clean"], source="ledger", write_audit=False)
            households.note_ledger_import(tx, w["id"], w["snapshot"])
        audit.record(tx, actor, "import_ledger", village_id,
                     {k: report[k] for k in ("households", "members", "plots")}
                     | {"changes": len(report["changes"]), "clashes": len(report["clashes"])})
        return report, work

    if confirm and not parse_errors:
        report, work = store.write(work_in)
    else:
        report, work = work_in(store)
    return report, work


def empty_report(errors):
    return {"households": {"new": 0, "changed": 0, "unchanged": 0},
            "members": {"new": 0, "changed": 0, "unchanged": 0},
            "plots": {"new": 0, "changed": 0, "unchanged": 0},
            "changes": [], "clashes": [], "ignored_columns": [], "errors": errors}


def masked_report(report):
    """The report as a non-admin may see it: ID numbers masked in values."""
    def m(v):
        return idcard.mask(v) if isinstance(v, str) and idcard.SHAPE_RE.match(v) else v
    out = dict(report)
    out["changes"] = [dict(c, before=m(c["before"]), after=m(c["after"])) for c in report["changes"]]
    out["clashes"] = [dict(c, jiedui=m(c["jiedui"]), file=m(c["file"]), last_import=m(c["last_import"]))
                      for c in report["clashes"]]
    return out


# ---- files staged between preview and confirm (the admin page) ----------------------------------


def _stage_dir(files_dir):
    return os.path.join(files_dir, "ledger-staged")


def stage(files_dir, user_id, village_id, files):
    """Keep uploaded files until confirmed; returns the token naming them. Old ones are swept."""
    import json
    from server.core.files import write_atomic
    folder = _stage_dir(files_dir)
    os.makedirs(folder, exist_ok=True)
    now = time.time()
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            if now - os.path.getmtime(path) > STAGE_SECONDS:
                os.unlink(path)
        except OSError:
            pass
    token = secrets.token_hex(16)
    for i, (filename, data) in enumerate(files):
        write_atomic(os.path.join(folder, f"{token}.{i}"), data, durable=False)
    write_atomic(os.path.join(folder, f"{token}.json"),
                 json.dumps({"user": user_id, "village": village_id, "names": [f for f, _d in files]}),
                 durable=False)
    return token


def staged(files_dir, token, user_id):
    """(village id, files) staged by this user under `token`, or None."""
    import json
    if not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{32}", token):
        return None
    folder = _stage_dir(files_dir)
    try:
        with open(os.path.join(folder, f"{token}.json"), encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("user") != user_id:
            return None
        files = []
        for i, name in enumerate(meta["names"]):
            with open(os.path.join(folder, f"{token}.{i}"), "rb") as f:
                files.append((name, f.read(MAX_BYTES + 1)))
    except (OSError, ValueError, KeyError):
        return None
    return meta["village"], files


def unstage(files_dir, token):
    folder = _stage_dir(files_dir)
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if name.startswith(token + "."):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


# ---- the template ---------------------------------------------------------------------------------

TEMPLATE_SHEETS = (
    ("农户", ("户编号", "户主姓名", "组别", "地址", "户主电话"),
     (1, "张三", "3组", "青石村3组", "13800001234")),
    ("家庭成员", ("户编号", "姓名", "与户主关系", "身份证号码", "性别", "出生年月", "联系电话", "外出务工地"),
     (1, "张三", "户主", "11010519491231002X", "男", "1949-12", "13800001234", "")),
    ("承包地块", ("户编号", "地块名称", "地块编码", "面积（亩）", "东至", "西至", "南至", "北至", "合同编号", "备注"),
     (1, "大田", "4306260010010001", 1.5, "水渠", "村道", "李四家", "山林", "HT-2026-001", "")),
)


def template_xlsx():
    """The downloadable template: the three sheets, each with its header and one example row."""
    from openpyxl import Workbook
    wb = Workbook()
    wb.remove(wb.active)
    for title, header, example in TEMPLATE_SHEETS:
        ws = wb.create_sheet(title)
        ws.append(list(header))
        ws.append(list(example))
        for col in ws.columns:
            ws.column_dimensions[col[0].column_letter].width = 16
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
