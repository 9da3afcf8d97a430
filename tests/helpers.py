"""Helpers shared by the test modules (no test module imports another): the app's test settings,
seeded ids, the items phones push, and small readers of what the server answers."""

import functools
import hashlib
import io
import random
import re
import uuid as uuidlib

from server.forms import formdefs

# Accounts the tests create are hashed cheaply (server/records/users.py: only in a TESTING app);
# 200,000 PBKDF2 rounds were most of each app's set-up.
CHEAP_HASH = "pbkdf2:sha256:1000"


def app_config(data_dir, **extra):
    """The settings of an app a test builds itself: a real data folder, TESTING, no background
    snapshots, cheap password hashes."""
    return {"DATA_DIR": str(data_dir), "TESTING": True, "SNAPSHOT_EVERY": 0,
            "PASSWORD_HASH_METHOD": CHEAP_HASH, **extra}


# ---- seeded ids ----------------------------------------------------------------------------------

_ids = random.Random(0)


def reseed(text):
    """Start the ids over from `text` (conftest: each test's node id), so a run replays."""
    _ids.seed(hashlib.sha256(text.encode()).digest())


def new_uuid():
    """A version-4 UUID from the seeded generator."""
    return str(uuidlib.UUID(int=_ids.getrandbits(128), version=4))


# ---- what phones push ----------------------------------------------------------------------------


def visit(household="v1-0001", day="2026-05-01", *, version=1, created_at=None, uuid=None, **answers):
    """A household_visit item as a phone pushes it: the answers every version requires, `answers`
    over them; created at 10:00 Beijing time on `day`."""
    base = {"visit_date": day, "visit_type": "home", "present": "户主本人",
            "topics": ["income_jobs"], "family_changes": ["none"], "risk": "no"}
    base.update(answers)
    return {"uuid": uuid or new_uuid(), "form": "household_visit", "form_version": version,
            "household_id": household, "created_at": created_at or f"{day}T10:00:00+08:00",
            "answers": base}


visit2 = functools.partial(visit, version=2)
visit3 = functools.partial(visit, version=3)  # help entries may name a buyer channel


def phone_visit(household="v1-0001", **answers):
    """The visit the live-server and PostgreSQL tests push: by phone, with the head of household."""
    return visit(household, **dict({"visit_type": "phone", "present": "户主"}, **answers))


def visit_item(uuid="0b8f7a52-3c1d-4e5f-8a9b-1c2d3e4f5a6b", **answers):
    """A version-2 visit with a fixed uuid, for the bad-request tests."""
    return visit2("v1-0001", "2026-05-04", uuid=uuid, **dict({"visit_type": "phone"}, **answers))


def push(api, *items):
    return api.post("/api/v1/submissions", {"submissions": list(items)})


def jpeg_bytes(color=(200, 30, 30)):
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "JPEG")
    return buf.getvalue()


def attach(api, sub_uuid, name, data, checksum=None):
    return api.put(f"/api/v1/submissions/{sub_uuid}/attachments/{name}", data=data,
                   headers={"X-Content-SHA256": checksum or hashlib.sha256(data).hexdigest(),
                            "Content-Type": "application/octet-stream"})


# ---- reviewers -----------------------------------------------------------------------------------


def login(client, name):
    from tests.conftest import Api
    api = Api(client)
    assert api.login(name).status_code == 200
    return api


def review(api, sub_uuid, **body):
    return api.post(f"/api/v1/submissions/{sub_uuid}/review", body)


def household(api, hid="v1-0001"):
    return api.get(f"/api/v1/households/{hid}").get_json()


# ---- reading what comes back ---------------------------------------------------------------------


def pdf_text(pdf):
    """All text of a PDF with whitespace removed (CJK extraction puts breaks anywhere)."""
    from pypdf import PdfReader
    reader = PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s+", "", "".join(page.extract_text() or "" for page in reader.pages))


# ---- rosters -------------------------------------------------------------------------------------

HEADER = "户主姓名,家庭人口,联系电话,类别,组别,地址,户编号,帮扶责任人"


def xlsx_bytes(rows, title=None):
    """A workbook as Excel writes it: optional merged title row, numbers stored as numbers."""
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.title = "花名册"
    if title:
        ws.append([title])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=max(len(r) for r in rows))
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ---- a form with every answer type (validation tests) --------------------------------------------

TODAY = "2024-06-15"

ALL_TYPES = formdefs.check_definition({
    "id": "all_types", "version": 1, "title": {"zh": "全部", "en": "All"}, "subject": "household",
    "fields": [
        {"name": "t", "type": "text", "label": {"zh": "文字", "en": "Text"}, "max": 10},
        {"name": "ta", "type": "textarea", "label": {"zh": "长文字", "en": "Long text"}},
        {"name": "i", "type": "integer", "label": {"zh": "整数", "en": "Integer"}, "min": 0, "max": 100},
        {"name": "d", "type": "decimal", "label": {"zh": "小数", "en": "Decimal"}, "min": -1.5, "max": 2.5},
        {"name": "day", "type": "date", "label": {"zh": "日期", "en": "Date"}, "min": "2020-01-01",
         "constraint": {"field": ".", "op": "le", "value": {"today": 0}}},
        {"name": "one", "type": "select_one", "label": {"zh": "单选", "en": "One"},
         "choices": [{"name": "a", "label": {"zh": "甲", "en": "A"}}, {"name": "b", "label": {"zh": "乙", "en": "B"}}]},
        {"name": "many", "type": "select_multiple", "label": {"zh": "多选", "en": "Many"},
         "choices": [{"name": "a", "label": {"zh": "甲", "en": "A"}}, {"name": "b", "label": {"zh": "乙", "en": "B"}}]},
        {"name": "gps", "type": "geopoint", "label": {"zh": "位置", "en": "Location"}},
        {"name": "pic", "type": "photo", "label": {"zh": "照片", "en": "Photo"}},
        {"name": "sig", "type": "signature", "label": {"zh": "签名", "en": "Signature"}},
        {"name": "info", "type": "note", "label": {"zh": "说明", "en": "Note"}},
        {"name": "rows", "type": "repeat", "label": {"zh": "明细", "en": "Rows"}, "min_count": 1, "max_count": 2,
         "fields": [
             {"name": "item", "type": "text", "label": {"zh": "名称", "en": "Item"}, "required": True},
             {"name": "qty", "type": "integer", "label": {"zh": "数量", "en": "Qty"}},
             {"name": "shot", "type": "photo", "label": {"zh": "照片", "en": "Photo"}},
             {"name": "total", "type": "integer", "label": {"zh": "合计", "en": "Total"},
              "compute": {"mul": ["qty", "i"]}}]},
    ]}, "all_types")


# ---- the dashboard's numbers and their lists ------------------------------------------------------

VILLAGE_KINDS = ("households", "paired", "never_visited", "not_visited_30d", "visits_this_month",
                 "overdue_followups", "returned")
CADRE_KINDS = ("households", "never_visited", "not_visited_30d", "visits_this_month",
               "overdue_followups", "returned")


def listed(api, kind, **params):
    query = "&".join(f"{k}={v}" for k, v in dict(kind=kind, limit=5000, **params).items() if v is not None)
    r = api.get(f"/api/v1/stats/list?{query}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def assert_stats_match_lists(api, stats):
    """Every village and cadre figure equals the size (or the sum) of its list."""
    for row in stats["villages"]:
        for kind in VILLAGE_KINDS:
            assert listed(api, kind, village=row["id"])["count"] == row[kind], (row["id"], kind)
        help_items = listed(api, "help_value", village=row["id"])["items"]
        assert round(sum(i["help_value"] for i in help_items), 2) == row["help_value"]
        for stage, n in row["pv"].items():
            assert listed(api, "pv", village=row["id"], stage=stage)["count"] == n, (row["id"], stage)
    for c in stats["cadres"]:
        for kind in CADRE_KINDS:
            assert listed(api, kind, cadre=c["id"])["count"] == c[kind], (c["id"], kind)
        help_items = listed(api, "help_value", cadre=c["id"])["items"]
        assert round(sum(i["help_value"] for i in help_items), 2) == c["help_value"]
    for kind in VILLAGE_KINDS:
        assert listed(api, kind)["count"] == sum(r[kind] for r in stats["villages"])
