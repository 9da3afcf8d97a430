"""XLSForm in: a workbook with survey, choices and settings sheets, read into the same plain form
definition the YAML loader produces, then checked by the same checker (docs/forms.md, "Writing a
form in Excel (XLSForm)").

Like pyxform, the workbook is first read into plain data (rows of header -> text), then turned into
a definition. The workbook is read with openpyxl in read-only mode behind the same caps as the
rosters (core/workbooks.py: the zip directory checked before anything unpacks; rows and columns capped). Anything outside
the supported subset is refused with the sheet, row and column and the construct named, in Chinese
and English; what is kept but not rendered (appearance, parameters, media columns, other languages)
is reported as a note, never silently dropped.
"""

import csv
import datetime
import io
import json
import re
import warnings

from server.forms import formdefs, xpath
from server.forms.conditions import ConditionError
from server.core import workbooks

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 5000          # survey rows; choices may have more
MAX_CHOICE_ROWS = 20000
MAX_COLUMNS = 200
MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_ERRORS = 100

# XLSForm type -> definition type (None: a structure row handled apart).
TYPES = {
    "text": "text", "integer": "integer", "int": "integer", "decimal": "decimal", "date": "date",
    "time": "time", "datetime": "datetime", "geopoint": "geopoint", "gps": "geopoint",
    "location": "geopoint", "geotrace": "geotrace", "geoshape": "geoshape", "image": "photo",
    "photo": "photo", "audio": "audio", "video": "video", "file": "file", "barcode": "barcode",
    "note": "note", "calculate": "calculate", "acknowledge": "acknowledge", "trigger": "acknowledge",
    "range": "range", "hidden": "hidden", "start": "start", "end": "end", "today": "today",
    "deviceid": "deviceid", "imei": "deviceid", "uri:deviceid": "deviceid", "signature": "signature",
    "rank": "rank",
}
# Device metadata Jiedui's phone does not capture. Values stay as hidden questions (labels and
# expressions may name them; they stay empty), logs and recordings are left out; both with a note.
EMPTY_META = ("phonenumber", "username", "email", "simserial", "subscriberid", "uri:username", "uri:email",
              "uri:phonenumber", "uri:simserial", "uri:subscriberid")
SKIPPED_META = ("audit", "start-geopoint", "background-audio")
MAX_SCANNED_ROWS = 200000   # empty, formatted rows are skipped, but not without end
EMPTY_RUN_END = 2000        # this many empty rows in a row end a sheet (Excel pads to a million)
# Types that show nothing to the person filling the form: they need no label.
UNSEEN = ("calculate", "hidden", "start", "end", "today", "deviceid")
LABELLED = ("label", "hint", "constraint_message", "required_message")
KNOWN_COLUMNS = {"type", "name", "label", "hint", "required", "required_message", "relevant",
                 "constraint", "constraint_message", "calculation", "default", "read_only",
                 "choice_filter", "appearance", "parameters", "repeat_count", "jiedui"}
NOTED_COLUMNS = {"image", "audio", "video", "media", "big-image", "guidance_hint", "autoplay",
                 "note", "notes", "trigger", "instance", "body", "bind", "style", "label_ref"}
ALIASES = {"list name": "list_name", "constraint message": "constraint_message",
           "required message": "required_message", "readonly": "read_only", "read only": "read_only",
           "repeat count": "repeat_count", "choice filter": "choice_filter", "calculate": "calculation",
           "requiredmsg": "required_message", "constraintmsg": "constraint_message",
           "jr:constraintmsg": "constraint_message", "jr:requiredmsg": "required_message"}
TRUE = {"yes", "true", "true()", "1", "y"}
FALSE = {"no", "false", "false()", "0", "n", ""}


class XLSFormError(Exception):
    """The workbook cannot be imported; .errors: [{"sheet", "row", "column", "zh", "en"}]."""

    def __init__(self, errors):
        super().__init__("; ".join(e["en"] for e in errors[:3]))
        self.errors = errors


def _err(sheet, row, column, zh, en):
    return {"sheet": sheet, "row": row, "column": column, "zh": zh, "en": en}


# =============================================================================================
# The workbook as plain data


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).replace("\u00a0", " ").strip()


def _header(text):
    """A column header, normalised: 'Label::Chinese (zh)' -> ('label', 'Chinese (zh)')."""
    text = re.sub(r"\s+", " ", text.strip())
    base, _, lang = text.partition("::")
    base = base.strip().lower()
    base = ALIASES.get(base, base)
    return base, lang.strip() or None


def read_workbook(data, filename="form.xlsx"):
    """{sheet name (lower-case): {"header": [...], "rows": [(row number, {header: text})]}} of the
    survey, choices and settings sheets; XLSFormError for what cannot be read."""
    name = (filename or "").lower()
    if len(data) > MAX_BYTES:
        raise XLSFormError([_err(None, None, None,
                                 f"文件过大（上限 {MAX_BYTES >> 20} MB）。",
                                 f"The file is too large (at most {MAX_BYTES >> 20} MB).")])
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        return _xls_sheets(data)
    if name.endswith(".xls"):
        raise XLSFormError([_err(None, None, None, "该文件不是有效的 .xls 表格。", "The file is not a valid .xls workbook.")])
    if not data.startswith(b"PK"):
        raise XLSFormError([_err(None, None, None, "该文件不是有效的 XLSX 表格。",
                                 "The file is not a valid XLSX workbook.")])
    too_large = workbooks.too_large(data)  # the zip directory, before anything unpacks
    if too_large:
        raise XLSFormError([_err(None, None, None, *too_large)])
    from openpyxl import load_workbook
    try:
        with warnings.catch_warnings():  # styles and document properties it does not know
            warnings.simplefilter("ignore")
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises a zoo of errors for broken workbooks
        raise XLSFormError([_err(None, None, None, "该文件不是有效的 XLSX 表格。",
                                 "The file is not a valid XLSX workbook.")]) from None
    sheets = {}
    try:
        for ws in wb.worksheets:
            key = ws.title.strip().lower()
            if key not in ("survey", "choices", "settings", "external_choices"):
                continue
            if hasattr(ws, "reset_dimensions"):
                ws.reset_dimensions()  # a sheet may claim a million rows
            cells = ws.iter_rows(min_row=1, max_row=MAX_SCANNED_ROWS + 1, max_col=MAX_COLUMNS, values_only=True)
            sheets[key] = _rows_of(ws.title, key, (list(c) for c in cells))
    except XLSFormError:
        raise
    except Exception:
        raise XLSFormError([_err(None, None, None, "XLSX 表格内容无法读取。",
                                 "The XLSX workbook's sheets cannot be read.")]) from None
    finally:
        wb.close()
    if "survey" not in sheets:
        raise XLSFormError([_err("survey", None, None, "缺少 survey 工作表（XLSForm 的问题表）。",
                                 "The workbook has no survey sheet (the XLSForm questions sheet).")])
    return sheets


def _rows_of(title, key, cell_rows):
    """The plain rows of one sheet from an iterator of cell-value lists."""
    cap = MAX_CHOICE_ROWS if key in ("choices", "external_choices") else MAX_ROWS
    header, rows, empty_run, stopped = None, [], 0, None
    for number, cells in enumerate(cell_rows, 1):
        texts = [_cell(c) for c in cells[:MAX_COLUMNS]]
        if header is None:
            if any(texts):
                header = texts
            continue
        if (any(texts) and len(rows) >= cap) or number > MAX_SCANNED_ROWS:
            raise XLSFormError([_err(title, number, None, f"工作表行数过多（上限 {cap} 行）。",
                                     f"The sheet has too many rows (at most {cap}).")])
        empty_run = 0 if any(texts) else empty_run + 1
        if empty_run >= EMPTY_RUN_END:
            stopped = number
            break
        if any(texts):
            rows.append((number, {header[i]: t for i, t in enumerate(texts) if i < len(header) and header[i] and t}))
    return {"title": title, "header": [h for h in header or [] if h], "rows": rows, "stopped": stopped}


def _xls_sheets(data):
    """An old .xls workbook (xlrd reads it whole; the file size cap bounds it)."""
    import xlrd
    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except Exception:  # xlrd's errors for broken files are many
        raise XLSFormError([_err(None, None, None, "该文件不是有效的 .xls 表格。",
                                 "The file is not a valid .xls workbook.")]) from None
    sheets = {}
    try:
        for index, title in enumerate(book.sheet_names()):
            key = title.strip().lower()
            if key not in ("survey", "choices", "settings", "external_choices"):
                continue
            sheet = book.sheet_by_index(index)
            if sheet.nrows > MAX_SCANNED_ROWS:
                raise XLSFormError([_err(title, None, None, "工作表行数过多。", "The sheet has too many rows.")])
            cells = ([c.value if c.ctype != xlrd.XL_CELL_EMPTY else None for c in sheet.row(r)]
                     for r in range(sheet.nrows))
            sheets[key] = _rows_of(title, key, cells)
    except XLSFormError:
        raise
    except Exception:
        raise XLSFormError([_err(None, None, None, ".xls 表格内容无法读取。",
                                 "The .xls workbook's sheets cannot be read.")]) from None
    finally:
        book.release_resources()
    if "survey" not in sheets:
        raise XLSFormError([_err("survey", None, None, "缺少 survey 工作表（XLSForm 的问题表）。",
                                 "The workbook has no survey sheet (the XLSForm questions sheet).")])
    return sheets


# =============================================================================================
# Languages


def language_of(lang):
    """'zh', 'en', or None (another language) for a column's language; lang None: the default."""
    text = lang.strip().lower()
    if re.search(r"\((zh|zh[-_][a-z]+|cmn)\)", text) or "中文" in text or "汉语" in text or "简体" in text \
            or text in ("zh", "zh-cn", "zh_cn", "zh-hans", "chinese", "cmn") or text.startswith("chinese"):
        return "zh"
    if re.search(r"\(en(-[a-z]+)?\)", text) or text in ("en", "en-us", "en-gb", "english", "英文", "英语") \
            or text.startswith("english"):
        return "en"
    return None


class _Texts:
    """Labels, hints and messages of one row in zh and en, from label::<language> columns."""

    def __init__(self, default_language, notes, sheet):
        self.default = language_of(default_language) if default_language else None
        self.other_languages = set()
        self.notes = notes
        self.sheet = sheet

    def pick(self, row, base):
        """{zh, en} from the row's `base` columns, or None when it has none."""
        found = {}
        for key, text in row.items():
            b, lang = _header(key)
            if b != base or not text:
                continue
            if lang is None:
                which = self.default or "default"
            else:
                which = language_of(lang) or "other:" + lang
                if which.startswith("other:"):
                    self.other_languages.add(lang)
            found.setdefault(which, text)
        if not found:
            return None
        other = next((v for k, v in sorted(found.items()) if k.startswith("other:")), None)
        default = found.get("default")
        zh = found.get("zh") or default or found.get("en") or other
        en = found.get("en") or default or found.get("zh") or other
        return {"zh": zh, "en": en}


# =============================================================================================
# From rows to a definition


class _Reader:
    def __init__(self, sheets, filename, attachments):
        self.sheets = sheets
        self.filename = filename or "form.xlsx"
        self.attachments = attachments or {}
        self.errors = []
        self.notes = []
        self.rows_of = {}      # field name -> (sheet, row)
        self.settings = self._settings()
        default_language = self.settings.get("default_language")
        self.texts = _Texts(default_language, self.notes, "survey")
        self.survey_title = sheets["survey"]["title"]
        self.external = {}     # lists of the external_choices sheet
        self.pending = []      # (field, row, number, extra) from jiedui columns, settled at the end
        self.scope = []        # the repeats around the row being read
        self.names = set()     # (scope, name): answers are keyed by name within their repeat

    def error(self, sheet, row, column, zh, en):
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(_err(sheet, row, column, zh, en))

    def note(self, zh, en):
        if {"zh": zh, "en": en} not in self.notes:
            self.notes.append({"zh": zh, "en": en})

    # ---- settings and choices ------------------------------------------------------------

    def _settings(self):
        sheet = self.sheets.get("settings")
        if not sheet or not sheet["rows"]:
            return {}
        _number, row = sheet["rows"][0]
        return {_header(k)[0]: v for k, v in row.items()}

    def choices(self, key="choices"):
        """{list name: [(row, choice dict)]} from the choices (or external_choices) sheet."""
        lists = {}
        sheet = self.sheets.get(key)
        if not sheet:
            return lists
        title = sheet["title"]
        texts = _Texts(self.settings.get("default_language"), self.notes, "choices")
        for number, row in sheet["rows"]:
            cols = {_header(k)[0]: v for k, v in row.items()}
            list_name, name = cols.get("list_name", ""), cols.get("name", "")
            if not list_name and not name:
                continue
            if not list_name or not name:
                self.error(title, number, "list_name" if not list_name else "name",
                           "选项行需要 list_name 和 name", "a choice row needs list_name and name")
                continue
            if not formdefs.CHOICE_RE.match(name):
                self.error(title, number, "name", f"选项名称「{name}」不能含空格，最多 64 个字符",
                           f"choice name {name!r} must be at most 64 characters without spaces")
                continue
            label = texts.pick(row, "label") or {"zh": name, "en": name}
            choice = {"name": name, "label": label}
            data = {}
            for key, value in row.items():
                base, lang = _header(key)
                if lang is None and base not in ("list_name", "name", "label", "image", "audio", "video",
                                                 "media", "big-image", "jiedui") and value:
                    data[key.strip()] = value
            if data:
                choice["data"] = data
            mine = lists.setdefault(list_name, [])
            if any(c["name"] == name for _r, c in mine):
                self.error(title, number, "name", f"选项表「{list_name}」中「{name}」重复",
                           f"choice {name!r} is listed twice in list {list_name!r}")
                continue
            mine.append((number, choice))
        if texts.other_languages:
            self.texts.other_languages |= texts.other_languages
        return lists

    def csv_choices(self, file_name, number, column):
        data = self.attachments.get(file_name)
        if data is None:
            self.error(self.survey_title, number, column, f"缺少选项文件 {file_name}（请一并上传）",
                       f"the choices file {file_name} is missing (upload it with the form)")
            return None
        if not file_name.lower().endswith(".csv"):
            self.error(self.survey_title, number, column, f"只支持 CSV 选项文件（{file_name}）",
                       f"only CSV choice files are supported ({file_name})")
            return None
        if len(data) > MAX_CSV_BYTES:
            self.error(self.survey_title, number, column, f"选项文件 {file_name} 过大",
                       f"the choices file {file_name} is too large")
            return None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.error(self.survey_title, number, column, f"选项文件 {file_name} 不是 UTF-8 文本",
                       f"the choices file {file_name} is not UTF-8 text")
            return None
        reader = csv.DictReader(io.StringIO(text))
        out, seen = [], set()
        texts = _Texts(self.settings.get("default_language"), self.notes, file_name)
        for i, row in enumerate(reader, 2):
            if i > MAX_CHOICE_ROWS:
                self.error(file_name, i, None, "选项文件行数过多", "the choices file has too many rows")
                return None
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            name = row.get("name", "")
            if not name:
                continue
            if not formdefs.CHOICE_RE.match(name) or name in seen:
                self.error(file_name, i, "name", f"选项名称「{name}」无效或重复",
                           f"choice name {name!r} is not valid or listed twice")
                continue
            seen.add(name)
            choice = {"name": name, "label": texts.pick(row, "label") or {"zh": name, "en": name}}
            data = {k: v for k, v in row.items() if k not in ("name",) and not k.startswith("label") and v}
            if data:
                choice["data"] = data
            out.append(choice)
        if not out:
            self.error(file_name, None, None, "选项文件中没有选项（需要 name 和 label 列）",
                       "the choices file has no choices (it needs name and label columns)")
            return None
        return out

    # ---- the survey ----------------------------------------------------------------------

    def expression(self, text, number, column, allow_columns=False):
        """{"xpath": text} after checking it parses and names only known functions."""
        try:
            _names, _dot, cols, _functions = xpath.references(text)
        except xpath.XPathError as exc:
            self.error(self.survey_title, number, column, f"表达式有误：{exc.zh}（{text}）",
                       f"the expression does not parse: {exc.en} ({text})")
            return None
        if cols and not allow_columns:
            self.error(self.survey_title, number, column,
                       f"「{cols[0]}」不是引用：请写成 ${{{cols[0]}}}（{text}）",
                       f"{cols[0]!r} is not a reference: write ${{{cols[0]}}} ({text})")
            return None
        return {"xpath": text}

    def flag(self, row, number, column):
        value = row.get(column, "").strip().lower()
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        self.error(self.survey_title, number, column,
                   f"「{column}」只支持 yes/no，不支持表达式（{row.get(column)}）",
                   f"{column} takes yes or no; expressions are not supported ({row.get(column)})")
        return False

    def survey(self, lists):
        root = {"fields": [], "kind": "root", "row": None}
        stack = [root]
        used_lists = set()
        for number, raw in self.sheets["survey"]["rows"]:
            row, unknown = {}, set()
            for key, value in raw.items():
                base, lang = _header(key)
                if base in LABELLED:
                    row[key] = value
                    continue
                if lang is not None and base not in ("media",):
                    if base in ("bind", "body", "instance"):
                        unknown.add(key)
                        continue
                if base in KNOWN_COLUMNS:
                    row[base] = value
                elif base in NOTED_COLUMNS or key.strip().startswith(("media::", "image::", "audio::", "video::")):
                    self.note(f"「{key.strip()}」列（媒体或说明）已保留不用：手机不显示",
                              f"column {key.strip()!r} (media or notes) is ignored: the phone does not show it")
                else:
                    unknown.add(key)
            for key in sorted(unknown):
                self.note(f"未知列「{key.strip()}」已忽略", f"unknown column {key.strip()!r} is ignored")
            kind = _old_syntax(re.sub(r"\s+", " ", row.get("type", "").strip()))
            if not kind:
                if row.get("name") or row.get("label"):
                    self.error(self.survey_title, number, "type", "该行缺少 type", "the row has no type")
                continue
            self.row(kind, row, raw, number, stack, lists, used_lists)
        if len(stack) > 1:
            opened = stack[-1]
            self.error(self.survey_title, opened["row"], "type",
                       f"begin {opened['kind']}「{opened['name']}」没有对应的 end {opened['kind']}",
                       f"begin {opened['kind']} {opened['name']!r} has no matching end {opened['kind']}")
        for name in lists:
            if name not in used_lists:
                self.note(f"选项表「{name}」未被使用", f"choice list {name!r} is not used")
        return root["fields"]

    def row(self, kind, row, raw, number, stack, lists, used_lists):
        words = kind.split(" ")
        head = words[0].lower()
        if head in ("begin", "end") and len(words) > 1 or head in ("begin_group", "end_group", "begin_repeat",
                                                                   "end_repeat"):
            if "_" in head:
                head, what = head.split("_")
            else:
                what = words[1].lower()
            if what not in ("group", "repeat"):
                self.error(self.survey_title, number, "type", f"不支持的结构「{kind}」",
                           f"unsupported construct {kind!r}")
                return
            if head == "end":
                top = stack[-1]
                if top["kind"] != what:
                    self.error(self.survey_title, number, "type",
                               f"end {what} 与前面的 begin 不匹配", f"end {what} does not match an open begin {what}")
                    return
                stack.pop()
                if what == "repeat":
                    self.scope.pop()
                return
            container = self.field_base(row, raw, number, "group" if what == "group" else "repeat")
            if container is None:
                container = {"name": f"_row{number}", "type": what}
            container["fields"] = []
            if what == "repeat" and row.get("repeat_count"):
                count = row["repeat_count"]
                if re.fullmatch(r"\d+", count):
                    container["count"] = int(count)
                else:
                    node = self.expression(count, number, "repeat_count")
                    if node:
                        container["count"] = node
            self.jiedui(container, row, number)
            stack[-1]["fields"].append(container)
            stack.append({"fields": container["fields"], "kind": what, "row": number,
                          "name": container["name"], "node": container})
            if what == "repeat":
                self.scope.append(container["name"])
            return
        target = TYPES.get(head.lower())
        field = None
        if head in EMPTY_META:
            self.note(f"第 {number} 行：设备信息「{head}」本系统的手机不采集，作为隐藏值保留（为空）",
                      f"row {number}: device metadata {head!r} is not captured by Jiedui's phone; kept as a "
                      f"hidden value (empty)")
            target = "hidden"
        elif head in SKIPPED_META:
            self.note(f"第 {number} 行：设备信息「{head}」本系统的手机不采集，已略去",
                      f"row {number}: device metadata {head!r} is not captured by Jiedui's phone; left out")
            return
        if head in ("select_one_external", "select_multiple_external"):
            # choices from the workbook's external_choices sheet (ODK makes a CSV of it): the same
            # choices, kept in the form
            head = head.replace("_external", "")
            lists = self.external
        if head in ("select_one", "select_multiple", "select_one_from_file", "select_multiple_from_file",
                    "rank"):
            if len(words) < 2 or len(words) > 3 or (len(words) == 3 and words[2].lower() != "or_other") \
                    or (head == "rank" and len(words) != 2):
                self.error(self.survey_title, number, "type", f"无法识别的类型「{kind}」",
                           f"type {kind!r} is not understood (select_one LIST [or_other])")
                return
            field = self.field_base(row, raw, number, "rank" if head == "rank" else
                                    "select_one" if "one" in head else "select_multiple")
            if field is None:
                return
            if head.endswith("_from_file"):
                choices = self.csv_choices(words[1], number, "type")
                if choices is None:
                    return
                field["choices"] = choices
                field["choices_file"] = words[1]
            else:
                if words[1] not in lists:
                    sheet = "external_choices" if lists is self.external else "choices"
                    self.error(self.survey_title, number, "type", f"找不到选项表「{words[1]}」（{sheet} 工作表）",
                               f"the choice list {words[1]!r} is missing from the {sheet} sheet")
                    return
                used_lists.add(words[1])
                field["choices"] = [c for _r, c in lists[words[1]]]
            if len(words) == 3:  # or_other: an "other" choice and a text for it, as pyxform does
                if not any(c["name"] == "other" for c in field["choices"]):
                    field["choices"] = field["choices"] + [{"name": "other", "label": {"zh": "其他", "en": "Other"}}]
                stack[-1]["fields"].append(self.finish(field, row, number))
                other = {"name": f"{field['name']}_other", "type": "text",
                         "label": {"zh": "请说明其他", "en": "Specify other."},
                         "relevant": {"xpath": f"selected(${{{field['name']}}}, 'other')"}}
                if (tuple(self.scope), other["name"]) in self.names:
                    self.error(self.survey_title, number, "type",
                               f"or_other 需要的名称「{other['name']}」已被使用",
                               f"or_other needs the name {other['name']!r}, which is used already")
                    return
                self.names.add((tuple(self.scope), other["name"]))
                self.rows_of.setdefault(other["name"], (self.survey_title, number))
                stack[-1]["fields"].append(other)
                return
        if field is None:
            if target is None:
                self.error(self.survey_title, number, "type", f"不支持的题型「{kind}」",
                           f"question type {kind!r} is not supported")
                return
            if len(words) > 1:
                self.error(self.survey_title, number, "type", f"无法识别的类型「{kind}」", f"type {kind!r} is not understood")
                return
            field = self.field_base(row, raw, number, target)
            if field is None:
                return
        stack[-1]["fields"].append(self.finish(field, row, number))

    def field_base(self, row, raw, number, kind):
        name = row.get("name", "")
        if not name:
            self.error(self.survey_title, number, "name", "缺少 name", "the row has no name")
            return None
        if not formdefs.FIELD_NAME_RE.match(name):
            self.error(self.survey_title, number, "name",
                       f"名称「{name}」只能用字母、数字和 _（以字母或 _ 开头，最多 64 个字符）",
                       f"name {name!r} may hold only letters, digits and _ (starting with a letter or _, "
                       f"at most 64 characters)")
            return None
        if (tuple(self.scope), name) in self.names:
            sheet, first = self.rows_of[name]
            self.error(self.survey_title, number, "name", f"名称「{name}」重复（第 {first} 行已用）",
                       f"name {name!r} is used twice (first on row {first})")
            return None
        self.names.add((tuple(self.scope), name))
        self.rows_of.setdefault(name, (self.survey_title, number))
        field = {"name": name, "type": kind}
        label = self.texts.pick(raw, "label")
        if label is None:
            label = {"zh": name, "en": name}
            if kind not in UNSEEN and kind not in ("group",):
                self.note(f"第 {number} 行「{name}」没有标签，暂用名称", f"row {number} {name!r} has no label; "
                                                               f"its name stands in")
        field["label"] = label
        hint = self.texts.pick(raw, "hint")
        if hint:
            field["hint"] = hint
        if row.get("relevant"):
            node = self.expression(row["relevant"], number, "relevant")
            if node:
                field["relevant"] = node
        if kind in ("group",):
            if row.get("appearance"):
                field["appearance"] = row["appearance"]
            for column in ("required", "read_only"):
                if row.get(column):
                    self.note(f"第 {number} 行：分组的「{column}」没有意义，已忽略",
                              f"row {number}: {column} means nothing on a group; ignored")
            for column in ("constraint", "calculation", "default", "choice_filter"):
                if row.get(column):
                    self.error(self.survey_title, number, column, f"分组不支持「{column}」",
                               f"a group does not take {column}")
        return field

    def finish(self, field, row, number):
        kind = field["type"]
        for was, word, becomes in (("text", "multiline", "textarea"), ("photo", "signature", "signature")):
            if kind == was and word in row.get("appearance", "").split():
                field["type"] = kind = becomes
                rest = " ".join(a for a in row["appearance"].split() if a != word)
                row = dict(row, appearance=rest) if rest else {k: v for k, v in row.items() if k != "appearance"}
        if row.get("required") and self.flag(row, number, "required"):
            if kind in ("note",) + UNSEEN:
                self.note(f"第 {number} 行：{kind} 无需作答，required 已忽略",
                          f"row {number}: a {kind} takes no answer; required is ignored")
            else:
                field["required"] = True
        message = self.texts.pick(row, "required_message")
        if message and field.get("required"):
            field["required_message"] = message
        if row.get("read_only") and self.flag(row, number, "read_only"):
            field["readonly"] = True
        if row.get("constraint"):
            if kind == "note":
                self.note(f"第 {number} 行：说明不需要 constraint，已忽略", f"row {number}: a note takes no constraint; ignored")
            else:
                node = self.expression(row["constraint"], number, "constraint")
                if node:
                    field["constraint"] = node
                    message = self.texts.pick(row, "constraint_message")
                    if message:
                        field["constraint_message"] = message
        if row.get("calculation"):
            if kind not in formdefs.XPATH_COMPUTED:
                self.error(self.survey_title, number, "calculation", f"{kind} 题不能有 calculation",
                           f"a {kind} question cannot have a calculation")
            else:
                node = self.expression(row["calculation"], number, "calculation")
                if node:
                    field["compute"] = node
        elif kind == "calculate":
            self.error(self.survey_title, number, "calculation", "calculate 需要 calculation 列",
                       "a calculate row needs a calculation")
        if row.get("choice_filter"):
            if kind not in formdefs.SELECT_TYPES:
                self.error(self.survey_title, number, "choice_filter", "只有选择题可以有 choice_filter",
                           "only select questions take a choice_filter")
            else:
                node = self.expression(row["choice_filter"], number, "choice_filter", allow_columns=True)
                if node:
                    field["choice_filter"] = node
        if row.get("default"):
            field["default"] = row["default"]
        for key in ("appearance", "parameters"):
            if row.get(key):
                field[key] = row[key]
                self.note(f"「{key}」已保留：手机按默认方式显示", f"{key} is kept; the phone shows questions its "
                                                              f"own way")
        if kind == "range":
            field.pop("parameters", None)  # held as min, max and step
            self.range(field, row, number)
        self.jiedui(field, row, number)
        return field

    def range(self, field, row, number):
        params = dict(re.findall(r"(\w+)\s*=\s*([-0-9.]+)", row.get("parameters", "")))
        try:
            start, end = float(params.get("start", 1)), float(params.get("end", 10))
            step = float(params.get("step", 1))
        except ValueError:
            self.error(self.survey_title, number, "parameters", "range 的 start/end/step 应为数字",
                       "range start, end and step must be numbers")
            return
        low, high = min(start, end), max(start, end)
        field["min"], field["max"] = _num(low), _num(high)
        field["step"] = _num(step)
        if step <= 0:
            self.error(self.survey_title, number, "parameters", "range 的 step 应大于 0", "range step must be > 0")

    def jiedui(self, field, row, number):
        """The `jiedui` column: what a form written by Jiedui holds beyond XLSForm (JSON conditions,
        min/max, prefill). It stands only while the standard columns are as Jiedui wrote them; an
        edit in Excel wins."""
        raw = row.get("jiedui")
        if not raw:
            return
        try:
            extra = json.loads(raw)
        except ValueError:
            self.error(self.survey_title, number, "jiedui", "jiedui 列不是有效的 JSON", "the jiedui column is not valid JSON")
            return
        if not isinstance(extra, dict):
            self.error(self.survey_title, number, "jiedui", "jiedui 列应为 JSON 对象", "the jiedui column must be a JSON object")
            return
        self.pending.append((field, row, number, extra))

    def settle(self, fields, settings):
        """Take each jiedui column whose row's standard columns are still as Jiedui wrote them."""
        from server.forms import xlsform_write
        types = {f.get("name"): f.get("type") for f in formdefs._walk(fields)}
        for field, row, number, extra in self.pending:
            replaced = {k for k in ("relevant", "compute") if k in extra}
            if {"constraint", "min", "max"} & set(extra):
                replaced.add("constraint")
            base = {k: v for k, v in field.items() if k not in replaced}
            wanted = xlsform_write.standard_columns(dict(base, **extra), types=types, settings=settings)
            if wanted != xlsform_write.standard_columns(field, raw=row):
                self.note(f"第 {number} 行在 Excel 中改过：以表中的表达式为准",
                          f"row {number} was edited in Excel: its expressions are taken as written")
                continue
            for key in replaced:
                field.pop(key, None)
            field.pop("constraint_message", None)
            field.update(extra)
            message = self.texts.pick(row, "constraint_message")
            if message and "constraint" in field:
                field["constraint_message"] = message


def _old_syntax(kind):
    """pyxform's older spellings: 'select one from L', 'select all that apply from L', 'string'."""
    m = re.fullmatch(r"(?i)select (one|all that apply) from (\S+)( or specify other| or_other)?", kind)
    if m:
        return ("select_one " if m.group(1).lower() == "one" else "select_multiple ") + m.group(2) + \
            (" or_other" if m.group(3) else "")
    m = re.fullmatch(r"(?i)(select_one|select_multiple|select one|select multiple) (\S+) or specify other", kind)
    if m:
        return m.group(1).replace(" ", "_").lower() + " " + m.group(2) + " or_other"
    if kind.lower() == "string":
        return "text"
    if re.fullmatch(r"(?i)select (one|multiple) \S+", kind):
        return kind.replace(" ", "_", 1).lower()
    return kind


def _num(x):
    return int(x) if float(x).is_integer() else x


# =============================================================================================
# Sections, groups and the whole definition


def _and(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if "xpath" in a and "xpath" in b:
        return {"xpath": f"({a['xpath']}) and ({b['xpath']})"}
    return {"all": [a, b]}


def _flatten(fields, relevant=None):
    """Groups opened: their questions in their place, the group's relevance joined to each."""
    out = []
    for f in fields:
        if f["type"] == "group":
            out.extend(_flatten(f["fields"], _and(relevant, f.get("relevant"))))
            continue
        if relevant is not None:
            f = dict(f, relevant=_and(relevant, f.get("relevant")))
        if f["type"] == "repeat":
            f = dict(f, fields=_flatten(f["fields"]))
        out.append(f)
    return out


def _shape(fields, notes):
    """Top-level groups become sections (nested groups opened inside them); when the form mixes
    sections with loose questions, each run of loose questions becomes a section of its own (runs
    holding only unseen values, such as start and end, join the next section)."""
    if not any(f["type"] == "group" for f in fields):
        return _flatten(fields)
    taken = {f.get("name") for f in formdefs._walk(fields)}
    out, loose = [], []
    for f in fields:
        if f["type"] != "group":
            loose.append(f)
            continue
        section = dict(f, fields=_flatten(f["fields"]))
        if loose and all(x["type"] in UNSEEN for x in loose):
            section["fields"] = _flatten(loose) + section["fields"]
        elif loose:
            out.append(_loose_section(loose, len(out) + 1, taken))
        loose = []
        if not section["fields"]:
            notes.append({"zh": f"分组「{f['name']}」是空的，已略去", "en": f"group {f['name']!r} is empty; left out"})
            continue
        out.append(section)
    if loose:
        if all(x["type"] in UNSEEN for x in loose) and out:
            out[-1] = dict(out[-1], fields=out[-1]["fields"] + _flatten(loose))
        else:
            out.append(_loose_section(loose, len(out) + 1, taken))
    return out


def _loose_section(fields, n, taken):
    name = f"page_{n}"
    while name in taken:
        name = "_" + name
    taken.add(name)
    return {"name": name, "type": "group", "label": {"zh": f"第 {n} 页", "en": f"Page {n}"},
            "fields": _flatten(fields)}


def _calculation_cycle(fields):
    """A cycle among calculations ([names] from and back to one of them), or None."""
    graph = {}
    for f in formdefs._walk(fields):
        node = f.get("compute")
        if isinstance(node, dict) and "xpath" in node:
            try:
                graph[f["name"]] = xpath.references(node["xpath"])[0]
            except xpath.XPathError:
                continue
    state = {}

    def visit(name, path):
        state[name] = "open"
        for ref in graph.get(name, ()):
            if state.get(ref) == "open":
                return path[path.index(ref):] + [ref] if ref in path else [name, ref]
            if ref in graph and ref not in state:
                found = visit(ref, path + [ref])
                if found:
                    return found
        state[name] = "done"
        return None

    for name in graph:
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None


def _form_id(settings, filename, reader):
    raw = settings.get("form_id") or re.sub(r"\.[A-Za-z]+$", "", (filename or "form").rsplit("/", 1)[-1])
    form_id = re.sub(r"[^a-z0-9_]+", "_", raw.strip().lower()).strip("_")[:64]
    if not form_id or not form_id[0].isalpha():
        form_id = ("form_" + form_id)[:64]
    if form_id != settings.get("form_id"):
        reader.note(f"表单编号取为「{form_id}」（来自 {'settings.form_id' if settings.get('form_id') else '文件名'}）",
                    f"form id {form_id!r} (from {'settings.form_id' if settings.get('form_id') else 'the file name'})")
    return form_id


def _version(settings, reader, sheet):
    raw = settings.get("version", "")
    if not raw:
        reader.note("settings 中没有 version，取 1", "settings has no version; version 1 is used")
        return 1
    if re.fullmatch(r"\d{1,15}", raw) and int(raw) >= 1:
        return int(raw)
    reader.error(sheet, 2, "version", f"version 应为正整数，每次修改后增大（收到「{raw}」）",
                 f"version must be a whole number >= 1, raised with every change (got {raw!r})")
    return None


def build_definition(sheets, filename="form.xlsx", attachments=None):
    """(definition, notes) from the workbook's plain data; XLSFormError lists every problem found."""
    reader = _Reader(sheets, filename, attachments)
    for sheet in sheets.values():
        if sheet.get("stopped"):
            reader.note(f"工作表「{sheet['title']}」第 {sheet['stopped']} 行前连续 {EMPTY_RUN_END} 行为空，"
                        f"之后的内容不再读取", f"sheet {sheet['title']!r}: {EMPTY_RUN_END} empty rows in a row "
                                       f"before row {sheet['stopped']}; nothing after them is read")
    lists = reader.choices()
    reader.external = reader.choices("external_choices")
    fields = reader.survey(lists)
    settings_sheet = (sheets.get("settings") or {}).get("title", "settings")
    form_id = _form_id(reader.settings, filename, reader)
    version = _version(reader.settings, reader, settings_sheet)
    title_text = reader.settings.get("form_title") or form_id
    extra = {}
    if reader.settings.get("jiedui"):
        try:
            extra = json.loads(reader.settings["jiedui"])
        except ValueError:
            reader.error(settings_sheet, 2, "jiedui", "jiedui 列不是有效的 JSON", "the jiedui column is not valid JSON")
    title = extra.pop("title", None)
    if not (isinstance(title, dict) and title.get("zh") == title_text):
        title = {"zh": title_text, "en": title_text}  # edited in Excel: form_title wins
    if reader.texts.other_languages:
        langs = ", ".join(sorted(reader.texts.other_languages))
        reader.note(f"其他语言（{langs}）只在缺少中文或英文时代用", f"other languages ({langs}) stand in only where "
                                                             f"Chinese or English is missing")
    reader.settle(fields, extra.get("settings"))
    cycle = _calculation_cycle(fields)
    if cycle:
        where = reader.rows_of.get(cycle[0], (reader.survey_title, None))
        chain = " → ".join(cycle)
        reader.error(where[0], where[1], "calculation", f"计算互相依赖，形成循环：{chain}",
                     f"the calculations depend on each other in a cycle: {chain}")
    _unknown_references(fields, reader)
    if reader.errors:
        raise XLSFormError(reader.errors)
    definition = {"id": form_id, "version": version, "title": title, "subject": "household",
                  "fields": _shape(fields, reader.notes)}
    for key in ("effects", "profile", "settings", "subject"):
        if key in extra:
            definition[key] = extra[key]
    problems = formdefs.definition_problems(definition)
    if problems:
        errors = []
        for field, message in problems:
            name = (field or "").split(".")[-1].split("#")[0]
            sheet, row = reader.rows_of.get(name, (reader.survey_title if field else settings_sheet, None))
            errors.append(_err(sheet, row, None, f"表单检查未通过：{message}", message))
        raise XLSFormError(errors[:MAX_ERRORS])
    try:
        checked = formdefs.check_definition(definition, filename)
    except (formdefs.FormDefinitionError, ConditionError) as exc:
        raise XLSFormError([_err(None, None, None, f"表单检查未通过：{exc}", str(exc))]) from None
    return checked, reader.notes


def _unknown_references(fields, reader):
    names = {f.get("name") for f in formdefs._walk(fields)}
    for f in formdefs._walk(fields):
        sheet, row = reader.rows_of.get(f.get("name"), (reader.survey_title, None))
        for key, column in (("relevant", "relevant"), ("constraint", "constraint"), ("compute", "calculation"),
                            ("choice_filter", "choice_filter"), ("count", "repeat_count")):
            node = f.get(key)
            if not (isinstance(node, dict) and "xpath" in node):
                continue
            try:
                refs = xpath.references(node["xpath"])[0]
            except xpath.XPathError:
                continue
            for ref in refs:
                if ref not in names:
                    reader.error(sheet, row, column, f"引用了不存在的问题 ${{{ref}}}",
                                 f"refers to an unknown question ${{{ref}}}")
        for key in ("label", "hint", "constraint_message", "required_message"):
            texts = f.get(key)
            for text in (texts.values() if isinstance(texts, dict) else ()):
                for ref in re.findall(r"\$\{([^}]*)\}", text):
                    if ref.strip() not in names:
                        reader.error(sheet, row, key, f"文字中引用了不存在的问题 ${{{ref}}}",
                                     f"the text refers to an unknown question ${{{ref}}}")
                        break


def read_xlsform(data, filename="form.xlsx", attachments=None):
    """(definition, notes) for an XLSForm workbook's bytes; XLSFormError with
    [{"sheet", "row", "column", "zh", "en"}] when it cannot be taken. attachments: {file name:
    bytes} of the CSV files select_one_from_file names."""
    return build_definition(read_workbook(data, filename), filename, attachments)
