"""Accounts in bulk from an XLSX or CSV sheet (`user import FILE` and /admin/users/import).

The file is read with the roster reader's caps (size, rows, columns, unpacked zip size), every
row is checked in one pass (each error by row and column, in Chinese and English), and the
accounts are created in one write, each with a one-time password its owner replaces at first
login. A supervisor may import cadres of their own villages only: a row asking for more makes
the whole import 403, writes nothing and is audited."""

import io
import re

from server.core import passwords, phones
from server.core.i18n import ROLE_LABELS
from server.records import users, villages
from server.services import roster
from server.store import get_store

MAX_BYTES = 2 * 1024 * 1024   # a county's accounts fit in a few hundred KB
MAX_ACCOUNTS = 2000

# Canonical field -> accepted headers (compared after roster.normalise_header).
COLUMNS = {
    "username": ("用户名", "账号", "登录名", "登录账号", "username", "name", "login", "user"),
    "display_name": ("姓名", "显示名", "真实姓名", "displayname", "fullname", "realname"),
    "role": ("角色", "身份", "role"),
    "villages": ("村", "负责的村", "驻村", "村编号", "所在村", "villages", "village", "villageids"),
    "phone": ("手机", "手机号", "手机号码", "联系电话", "电话", "mobile", "phone"),
    "unit": ("派出单位", "单位", "工作单位", "sendingunit", "unit"),
}
HEADERS = {"username": ("用户名", "username"), "display_name": ("姓名", "display name"),
           "role": ("角色", "role"), "villages": ("村", "villages"), "phone": ("手机号", "mobile"),
           "unit": ("派出单位", "sending unit")}
_ALIASES = {roster.normalise_header(a): field for field, aliases in COLUMNS.items() for a in aliases}
ROLE_WORDS = {"cadre": "cadre", "supervisor": "supervisor", "admin": "admin", "干部": "cadre",
              "驻村干部": "cadre", "第一书记": "cadre", "工作队员": "cadre", "督导": "supervisor",
              "督查": "supervisor", "乡镇督导": "supervisor", "管理员": "admin"}
ROLE_WORDS.update({zh: code for code, (zh, _en) in ROLE_LABELS.items()})
VILLAGE_SPLIT_RE = re.compile(r"[、,，;；\s]+")


def _field_of(cell):
    """The field a header names: '用户名', 'Username' or the template's '用户名 username'."""
    whole = _ALIASES.get(roster.normalise_header(cell))
    if whole or cell is None:
        return whole
    for part in str(cell).split():
        if _ALIASES.get(roster.normalise_header(part)):
            return _ALIASES[roster.normalise_header(part)]
    return None


def _error(row, column, zh, en):
    return {"row": row, "column": column, "zh": zh, "en": en}


def parse(filename, data):
    """(rows, errors): rows are {"row": Excel row number, field: text}; errors of the file itself
    have row None."""
    if not data or not data.strip():
        return [], [_error(None, None, "文件是空的。", "The file is empty.")]
    if len(data) > MAX_BYTES:
        return [], [_error(None, None, f"文件超过 {MAX_BYTES >> 20} MB。",
                           f"The file is larger than {MAX_BYTES >> 20} MB.")]
    grid, err = roster.read_grid(filename, data)
    if err:
        return [], [err]
    header_at, fields = None, None
    for index, cells in enumerate(grid[:roster.HEADER_SCAN_ROWS]):
        found = [_field_of(c) for c in cells]
        if "username" in found:
            header_at, fields = index, found
            break
    if header_at is None:
        return [], [_error(None, None, "找不到表头：须有“用户名”列（可下载模板）。",
                           "No header row: a “username” column is required (download the template).")]
    names = [roster.cell_text(c) for c in grid[header_at]]
    rows = []
    for offset, cells in enumerate(grid[header_at + 1:], start=header_at + 2):
        values = {}
        for i, field in enumerate(fields):
            if field and i < len(cells) and field not in values:
                values[field] = roster.plain_text(cells[i])
        if not any(values.values()):
            continue
        values["row"] = offset
        values["_columns"] = {f: names[i] for i, f in enumerate(fields) if f}
        rows.append(values)
    if len(rows) > MAX_ACCOUNTS:
        return [], [_error(None, None, f"一次最多导入 {MAX_ACCOUNTS} 个账号。",
                           f"At most {MAX_ACCOUNTS} accounts per file.")]
    if not rows:
        return [], [_error(None, None, "表中没有账号。", "The sheet holds no accounts.")]
    return rows, []


def check(rows, actor_doc, db=None):
    """(accounts, errors, refused): the accounts to create (checked, without passwords), every
    error by row and column, and the rows the actor may not create (a supervisor: anything but a
    cadre of their own villages)."""
    store = db or get_store()
    every = villages.list_all(store)
    by_id = {v["id"]: v["id"] for v in every}
    by_name = {}
    for v in every:
        by_name.setdefault(v["name"], []).append(v["id"])
    existing = set(users.directory(store))
    seen, accounts, errors, refused = {}, [], [], []
    for r in rows:
        row, cols = r["row"], r["_columns"]

        def bad(field, zh, en, row=row, cols=cols):
            errors.append(_error(row, cols.get(field) or HEADERS[field][0], zh, en))

        raw_name = r.get("username", "")
        username = users.normalise_username(raw_name)
        if not raw_name:
            bad("username", "用户名不能为空。", "The username is empty.")
        elif username is None:
            bad("username", f"用户名“{raw_name[:40]}”须为 2–32 位小写字母、数字或 _.-。",
                f"Username “{raw_name[:40]}”: 2–32 lowercase letters, digits or _.-.")
        elif username in seen:
            bad("username", f"用户名 {username} 与第 {seen[username]} 行重复。",
                f"Username {username} repeats row {seen[username]}.")
        elif username in existing:
            bad("username", f"用户名 {username} 已存在。", f"Username {username} is taken.")
        if username and username not in seen:
            seen[username] = row
        role_text = r.get("role", "").strip()
        role = ROLE_WORDS.get(role_text.lower() if role_text.isascii() else role_text) if role_text else "cadre"
        if role is None:
            bad("role", f"角色“{role_text[:20]}”不对：须为 驻村干部、督导 或 管理员（cadre、supervisor、admin）。",
                f"Role “{role_text[:20]}” is not one of cadre, supervisor, admin (驻村干部、督导、管理员).")
        chosen, unknown = [], []
        for part in VILLAGE_SPLIT_RE.split(r.get("villages", "")):
            if not part:
                continue
            vid = by_id.get(part) or (by_name[part][0] if len(by_name.get(part, [])) == 1 else None)
            if vid is None:
                unknown.append(part)
            elif vid not in chosen:
                chosen.append(vid)
        if unknown:
            shown = "、".join(unknown)[:200]
            bad("villages", f"未知的村：{shown}（填村编号，多个用 、 , ; 或空格分开）。",
                f"Unknown village(s): {shown} (give village ids, separated by 、 , ; or spaces).")
        elif role in ("cadre", "supervisor") and not chosen:
            bad("villages", "驻村干部和督导须填负责的村。", "A cadre or supervisor needs their villages.")
        phone = phones.normalise(r.get("phone", ""), landline=False)
        if phone is None:
            bad("phone", f"手机号“{r.get('phone', '')[:20]}”须为 11 位大陆手机号（如 13800138000）。",
                f"Mobile “{r.get('phone', '')[:20]}” must be an 11-digit mainland mobile (e.g. 13800138000).")
        clean, profile_errors = users.check_profile(
            {"display_name": r.get("display_name", ""), "unit": r.get("unit", "")}, set(by_id))
        for e in profile_errors:
            bad(e["field"], e["zh"], e["en"])
        if role and not unknown and not users.may_grant(actor_doc, role, chosen):
            refused.append(_error(row, cols.get("role") or HEADERS["role"][0],
                                  "你只能导入本人负责的村的驻村干部。",
                                  "You may only import cadres of your own villages."))
        accounts.append({"row": row, "username": username, "role": role, "villages": chosen,
                         "display_name": clean.get("display_name") or username,
                         "unit": clean.get("unit", ""), "phone": phone or ""})
    return accounts, errors, refused


def run(filename, data, *, actor, actor_doc=None, confirm=True, db=None, rng=None):
    """Check a file and (with confirm) create its accounts. Returns a report
    {"accounts": [...], "created": [... with "password"], "errors": [...], "forbidden": bool}:
    with any error or refusal nothing is written (a refusal is audited)."""
    store = db or get_store()
    rows, errors = parse(filename, data)
    report = {"accounts": [], "created": [], "errors": errors, "forbidden": False}
    if errors:
        return report
    accounts, errors, refused = check(rows, actor_doc, store)
    report.update(accounts=accounts, errors=errors + refused)
    if refused:
        report["forbidden"] = True
        users.record_refusal(actor, "user_import", "", {"row_numbers": [e["row"] for e in refused][:50]}, db=store)
        return report
    if errors or not confirm:
        return report
    entries = [dict(a, password=passwords.one_time(rng)) for a in accounts]
    _stored, write_errors = users.create_many(entries, actor=actor, store=store)
    if write_errors:
        report["errors"] = [_error(None, None, e["zh"], e["en"]) for e in write_errors]
        return report
    report["created"] = [{k: e[k] for k in ("username", "display_name", "role", "villages", "unit",
                                             "phone", "password")} for e in entries]
    return report


def template_xlsx():
    """The sheet to fill in: the header row, two example rows, and a second sheet saying how."""
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.title = "用户 users"
    ws.append([f"{zh} {en}" for zh, en in HEADERS.values()])
    ws.append(["li.wei", "李伟", "驻村干部", "430699101001", "13800138000", "县农业农村局"])
    ws.append(["zhao.min", "赵敏", "督导", "430699101001、430699101002", "", "长寿镇人民政府"])
    for col, width in zip("ABCDEF", (16, 12, 12, 34, 16, 22)):
        ws.column_dimensions[col].width = width
    help_sheet = wb.create_sheet("说明 help")
    for line in (
        "每行一个账号；导入时删去示例行。One account per row; delete the example rows.",
        "用户名：2–32 位小写字母、数字或 _.-，登录用。Username: 2–32 lowercase letters, digits or _.-.",
        "角色：驻村干部、督导 或 管理员（留空为驻村干部）。Role: cadre, supervisor or admin (blank: cadre).",
        "村：村编号，多个用 、 , ; 或空格分开。Villages: village ids, separated by 、 , ; or spaces.",
        "手机号：11 位大陆手机号，可留空。Mobile: 11 digits, may be blank.",
        "每个账号会得到一次性密码，首次登录须修改。Each account gets a one-time password, changed at first login.",
    ):
        help_sheet.append([line])
    help_sheet.column_dimensions["A"].width = 100
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
