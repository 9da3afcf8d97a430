"""Roster (花名册) import: parsing what Excel in China writes, and importing without duplicates.

Run as a script (`.venv/bin/python tests/test_roster.py`) to regenerate docs/roster-sample.xlsx from
docs/roster-sample.csv.
"""

import csv
import io
import os
import sys

import pytest
from flask import Flask

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from server.records.layout import LAYOUT
from server.cli.roster import import_roster_command
from server.services.roster import (MAX_ROWS, RosterError, format_errors, import_roster, parse_phone,
                                    parse_roster, run_import)
from server.records import audit  # noqa: E402
from server.store import CORE, Store  # noqa: E402
from server.store import init_app as init_store  # noqa: E402
from tests.helpers import HEADER, xlsx_bytes  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_CSV = os.path.join(ROOT, "docs", "roster-sample.csv")
SAMPLE_XLSX = os.path.join(ROOT, "docs", "roster-sample.xlsx")
VID = "430699101001"

GOOD = """户主姓名,家庭人口,联系电话,类别,组别,地址,户编号,帮扶责任人
张三,3,13800001234,脱贫户,3组,桃花村3组,1,liwei
李四,2,0730-5123456,监测户,3组,桃花村3组,2,liwei、chenfang
王五,4,,低保户,5,桃花村5组,,
赵六,1,15973012345,一般户,6组,桃花村6组,,chenfang
"""


def csv_to_xlsx(csv_text):
    """The sample CSV as a workbook: its first line becomes the merged title row."""
    lines = list(csv.reader(io.StringIO(csv_text)))
    title = lines[0][0]

    def typed(cell):
        if cell == "":
            return None
        return int(cell) if cell.isdigit() and not cell.startswith("0") else cell

    return xlsx_bytes([lines[1]] + [[typed(c) for c in line] for line in lines[2:]], title=title)


def rows_without_numbers(rows):
    return [{k: v for k, v in r.items() if k != "row"} for r in rows]


# ---- parsing ------------------------------------------------------------------------------------


def test_utf8_with_bom():
    rows, errors = parse_roster("roster.csv", GOOD.encode("utf-8-sig"))
    assert errors == []
    assert [r["head_name"] for r in rows] == ["张三", "李四", "王五", "赵六"]
    assert rows[0] == {"row": 2, "head_name": "张三", "population": 3, "phone": "13800001234",
                       "category": "tuopin", "group": "3组", "address": "桃花村3组", "number": 1,
                       "cadres": ["liwei"]}
    assert rows[1]["cadres"] == ["liwei", "chenfang"]
    assert rows[1]["phone"] == "0730-5123456"
    assert rows[2]["group"] == "5组"  # a bare group number gets its 组
    assert "phone" not in rows[2] and "number" not in rows[2] and "cadres" not in rows[2]


def test_utf8_without_bom_and_gbk_parse_alike():
    expected, errors = parse_roster("a.csv", GOOD.encode("utf-8-sig"))
    assert errors == []
    for data in (GOOD.encode("utf-8"), GOOD.encode("gbk"), GOOD.replace("\n", "\r\n").encode("gbk")):
        rows, errors = parse_roster("a.csv", data)
        assert errors == []
        assert rows == expected


def test_excel_unicode_text_is_utf16_with_tabs():
    data = GOOD.replace(",", "\t").encode("utf-16")
    rows, errors = parse_roster("export.txt", data)
    assert errors == []
    assert rows == parse_roster("a.csv", GOOD.encode())[0]


def test_xlsx_with_numbers_and_title_row():
    data = xlsx_bytes([HEADER.split(","),
                       ["张三", 3, 13800001234, "脱贫户", 3, "桃花村3组", 1, "liwei"],
                       ["李四", 2.0, "0730-5123456", "jiance", "3组", None, 2, None],
                       [None, None, None, None, None, None, None, None],
                       ["王五", 4, None, "低保户", "5组", "桃花村5组", None, None]],
                      title="桃花村花名册")
    rows, errors = parse_roster("花名册.xlsx", data)
    assert errors == []
    assert rows[0] == {"row": 3, "head_name": "张三", "population": 3, "phone": "13800001234",
                       "category": "tuopin", "group": "3组", "address": "桃花村3组", "number": 1,
                       "cadres": ["liwei"]}
    assert rows[1]["population"] == 2 and rows[1]["category"] == "jiance"
    assert rows[2]["row"] == 6 and rows[2]["head_name"] == "王五"  # the blank row is skipped


def test_title_row_spaced_headers_and_english_aliases():
    text = ("桃花村脱贫户花名册,,,\n"
            ",,,\n"
            " Head Name , population (people) ,PHONE,category,group\n"
            "张三,3,138 0000 1234,Tuopin,2\n")
    rows, errors = parse_roster("x.csv", text.encode())
    assert errors == []
    assert rows == [{"row": 4, "head_name": "张三", "population": 3, "phone": "13800001234",
                     "category": "tuopin", "group": "2组"}]
    rows, errors = parse_roster("x.csv", " 户主姓名* ,家庭人口（人）,联系电话\n李四,2人,+86 13900001111\n"
                                .encode("gbk"))
    assert errors == [] and rows[0]["population"] == 2 and rows[0]["phone"] == "13900001111"


def test_bad_rows_are_reported_with_row_numbers():
    text = ("花名册\n" + HEADER + "\n"
            "张三,3,13800001234,脱贫户,1组,,,\n"
            ",2,13800001234,脱贫户,1组,,,\n"          # row 4: no name
            "李四,2,1380000123,脱贫户,1组,,,\n"       # row 5: 10 digits
            "王五,2,13800001234,贫困户,1组,,,\n"       # row 6: unknown category
            "赵六,两,13800001234,脱贫户,1组,,,\n"     # row 7: population not an integer
            "钱七,2,,脱贫户,1组,,10000,\n"            # row 8: number out of range
            "孙八,2,,脱贫户,1组,,,Li Wei!\n")         # row 9: not a username
    rows, errors = parse_roster("bad.csv", text.encode("gbk"))
    assert [r["row"] for r in rows] == [3]
    found = {(e["row"], e["column"]) for e in errors}
    assert found == {(4, "户主姓名"), (5, "联系电话"), (6, "类别"), (7, "家庭人口"), (8, "户编号"),
                     (9, "帮扶责任人")}
    for e in errors:
        assert e["zh"] and e["en"]
    report = format_errors(errors)
    assert "第 5 行" in report and "row 5" in report and "1380000123" in report


def test_duplicates_within_the_file_are_errors():
    text = HEADER + "\n张三,3,,脱贫户,1组,,7,\n李四,3,,脱贫户,1组,,7,\n王五,1,,脱贫户,2组,,,\n王五,2,,脱贫户,2组,,,\n"
    rows, errors = parse_roster("d.csv", text.encode())
    assert [(e["row"], e["column"]) for e in errors] == [(3, "户编号"), (5, "户主姓名")]


def test_formula_characters_are_stripped_from_text():
    text = HEADER + "\n=HYPERLINK(\"http://x\"),3,,脱贫户,1组,@SUM(A1),,\n"
    rows, errors = parse_roster("f.csv", text.encode())
    assert errors == []
    assert rows[0]["head_name"] == 'HYPERLINK("http://x")'
    assert rows[0]["address"] == "SUM(A1)"


@pytest.mark.parametrize("name, data, words", [
    ("empty.csv", b"", "empty"),
    ("blank.csv", b"\r\n  \n", "empty"),
    ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "not a readable text"),
    ("latin.csv", b"abc,\x80\xff\x80\xff\n", "not a readable text"),
    ("fake.xlsx", "户主姓名\n张三\n".encode(), "not a valid XLSX"),
    ("broken.xlsx", b"PK\x03\x04" + b"\x00" * 64, "not a valid XLSX"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, ".xls"),
    ("noheader.csv", "姓名甲,人口\n张三,3\n".encode(), "No header row"),
    ("onlyheader.csv", (HEADER + "\n").encode(), "no rows"),
])
def test_unreadable_files_give_one_clear_error(name, data, words):
    rows, errors = parse_roster(name, data)
    assert rows == []
    assert len(errors) == 1
    assert errors[0]["row"] is None
    assert words in errors[0]["en"] and errors[0]["zh"]


def test_too_many_rows():
    text = HEADER + "\n" + "".join(f"户{i},1,,脱贫户,1组,,{i % 9999 + 1},\n" for i in range(MAX_ROWS + 1))
    rows, errors = parse_roster("big.csv", text.encode())
    assert rows == [] and len(errors) == 1 and str(MAX_ROWS) in errors[0]["en"]


def test_phone_forms():
    assert parse_phone(13800001234) == "13800001234"
    assert parse_phone(13800001234.0) == "13800001234"
    assert parse_phone("138-0000-1234") == "13800001234"
    assert parse_phone("(0730)5123456") == "07305123456"
    assert parse_phone("0730-51234567") == "0730-51234567"
    assert parse_phone("") == ""
    for bad in ("12800001234", "5123456", "138000012345", "电话", "0730-12"):
        assert parse_phone(bad) is None, bad


# ---- importing into a real store ---------------------------------------------------------------


def seed(store):
    def write(tx):
        tx.put(CORE, "villages", {"id": VID, "name": "桃花村", "township": "石门镇", "county": "青溪县"})
        tx.put(CORE, "villages", {"id": "430699101002", "name": "杨柳村", "township": "石门镇",
                                  "county": "青溪县"})
        for uid, role, villages in (("liwei", "cadre", [VID]), ("chenfang", "cadre", [VID]),
                                    ("hexia", "cadre", [VID]), ("huangtao", "cadre", ["430699101002"]),
                                    ("zhoujian", "supervisor", [VID])):
            tx.put(CORE, "users", {"id": uid, "username": uid, "display_name": uid, "role": role,
                                   "villages": villages, "unit": "", "phone": "", "active": True})
    store.write(write)


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "data"), layout=LAYOUT, snapshot_every=0).open()
    seed(s)
    yield s
    s.close()


def households(store, vid=VID):
    return sorted(store.search(vid, "households"), key=lambda d: d["id"])


def parsed(text):
    rows, errors = parse_roster("r.csv", text.encode())
    assert errors == []
    return rows


def test_import_creates_then_reimport_changes_nothing(store):
    summary = import_roster(VID, store=store, rows=parsed(GOOD), actor="admin")
    assert summary == {"created": 4, "updated": 0, "unchanged": 0}
    docs = households(store)
    assert [d["id"] for d in docs] == [f"{VID}-0001", f"{VID}-0002", f"{VID}-0003", f"{VID}-0004"]
    first = docs[0]
    assert first["head_name"] == "张三" and first["category"] == "tuopin" and first["version"] == 1
    assert first["cadre_ids"] == ["liwei"] and first["members"] == [] and first["plots"] == []
    assert first["village_id"] == VID and first["pv_status"] is None
    assert docs[2]["head_name"] == "王五" and docs[2]["phone"] == "" and docs[2]["cadre_ids"] == []

    summary = import_roster(VID, store=store, rows=parsed(GOOD), actor="admin")
    assert summary == {"created": 0, "updated": 0, "unchanged": 4}
    again = households(store)
    assert [(d["id"], d["version"], d["updated_at"], d["seq"]) for d in again] == \
        [(d["id"], d["version"], d["updated_at"], d["seq"]) for d in docs]
    audits = audit.entries(store, action="import_roster")[::-1]  # oldest first
    assert len(audits) == 2 and audits[0]["target"] == VID and audits[0]["user"] == "admin"
    assert {a["details"]["created"] for a in audits} == {4, 0}


def test_changed_row_updates_and_keeps_what_the_roster_does_not_carry(store):
    import_roster(VID, store=store, rows=parsed(GOOD), actor="admin")
    members = [{"name": "王五", "relation": "户主", "sex": "male", "birth_year": 1960, "health": "健康",
                "schooling": "小学", "work": "务农"}]

    def add_members(tx):
        doc = tx.get(VID, "households", f"{VID}-0003")
        doc["members"] = members
        doc["plots"] = [{"name": "屋前田", "area_mu": 1.2, "east": "水渠", "west": "村道", "south": "山林",
                         "north": "张三家", "contract_signed": True}]
        doc["cadre_ids"] = ["hexia"]
        tx.put(VID, "households", doc)

    store.write(add_members)
    before = {d["id"]: d for d in households(store)}
    changed = GOOD.replace("王五,4,,低保户", "王五,5,13900002222,监测户").replace("张三,3,", "张三,4,")
    summary = import_roster(VID, store=store, rows=parsed(changed), actor="admin")
    assert summary == {"created": 0, "updated": 2, "unchanged": 2}
    after = {d["id"]: d for d in households(store)}
    wang = after[f"{VID}-0003"]  # matched by head name and group: it had no number in the roster
    assert wang["version"] == before[wang["id"]]["version"] + 1
    assert (wang["population"], wang["phone"], wang["category"]) == (5, "13900002222", "jiance")
    assert wang["members"] == members and wang["plots"][0]["north"] == "张三家"
    assert wang["cadre_ids"] == ["hexia"]  # the roster gives no cadres for him: pairing kept
    assert wang["field_versions"]["category"] == wang["version"]
    assert after[f"{VID}-0001"]["population"] == 4
    assert after[f"{VID}-0002"]["version"] == before[f"{VID}-0002"]["version"]
    assert len(after) == 4


def test_rows_without_numbers_get_free_numbers(store):
    import_roster(VID, store=store, rows=parsed(HEADER + "\n甲,1,,脱贫户,1组,,3,\n乙,1,,脱贫户,1组,,,\n丙,1,,脱贫户,1组,,,\n"),
                  actor="admin")
    assert [(d["id"], d["head_name"]) for d in households(store)] == \
        [(f"{VID}-0003", "甲"), (f"{VID}-0004", "乙"), (f"{VID}-0005", "丙")]


def test_any_row_error_writes_nothing(store):
    import_roster(VID, store=store, rows=parsed(GOOD), actor="admin")
    before = households(store)
    audit_before = audit.entries(store)
    seq_before = store.seq
    bad = GOOD.replace("赵六,1,", "赵六,2,") + "孙七,2,,脱贫户,1组,,,nosuch\n周八,1,,脱贫户,1组,,,huangtao\n"
    with pytest.raises(RosterError) as info:
        import_roster(VID, store=store, rows=parsed(bad), actor="admin")
    errors = info.value.errors
    assert [(e["row"], e["column"]) for e in errors] == [(6, "帮扶责任人"), (7, "帮扶责任人")]
    assert "nosuch" in errors[0]["en"] and "not a cadre of this village" in errors[1]["en"]
    assert households(store) == before
    assert audit.entries(store) == audit_before
    assert store.seq == seq_before


def test_unknown_village_is_an_error(store):
    with pytest.raises(RosterError) as info:
        import_roster("999", store=store, rows=parsed(GOOD), actor="admin")
    assert "999" in info.value.errors[0]["en"]
    assert store.search("999", "households") == []


def test_same_household_twice_in_one_roster_is_an_error(store):
    import_roster(VID, store=store, rows=parsed(GOOD), actor="admin")
    # 王五 (5组) already is number 3; a row with number 3 and a row matching him by name collide
    text = HEADER + "\n王五,4,,低保户,5组,,,\n新户,1,,脱贫户,1组,,3,\n"
    with pytest.raises(RosterError) as info:
        import_roster(VID, store=store, rows=parsed(text), actor="admin")
    assert [e["row"] for e in info.value.errors] == [3]


def test_run_import_reads_the_file_and_checks_its_size(store, tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(GOOD.encode("gbk"))
    summary, errors = run_import(store, str(path), VID, "cli")
    assert errors == [] and summary["created"] == 4
    summary, errors = run_import(store, str(path), VID, "cli", max_bytes=10)
    assert summary is None and "larger" in errors[0]["en"]
    summary, errors = run_import(store, str(tmp_path / "missing.csv"), VID, "cli")
    assert summary is None and errors[0]["row"] is None


def test_sample_files_parse_alike_and_import(store):
    with open(SAMPLE_CSV, "rb") as f:
        rows, errors = parse_roster("roster-sample.csv", f.read())
    assert errors == [] and len(rows) == 7
    with open(SAMPLE_XLSX, "rb") as f:
        xrows, xerrors = parse_roster("roster-sample.xlsx", f.read())
    assert xerrors == []
    assert rows_without_numbers(xrows) == rows_without_numbers(rows)
    assert import_roster(VID, store=store, rows=rows, actor="admin")["created"] == 7
    assert import_roster(VID, store=store, rows=xrows, actor="admin")["unchanged"] == 7


# ---- the click command --------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path):
    data_dir = str(tmp_path / "data")
    with Store(data_dir, layout=LAYOUT, snapshot_every=0) as s:
        seed(s)
    app = Flask("roster_test")
    app.config["DATA_DIR"] = data_dir
    init_store(app, LAYOUT)  # as the app factory does: the store is told where records live
    return app, app.test_cli_runner()


def test_command_prints_summary_and_is_idempotent(cli, tmp_path):
    app, runner = cli
    path = tmp_path / "r.csv"
    path.write_bytes(GOOD.encode("utf-8-sig"))
    result = runner.invoke(import_roster_command, [str(path), "--village", VID])
    assert result.exit_code == 0, result.output
    assert "新建 4 户" in result.output and "4 created" in result.output
    result = runner.invoke(import_roster_command, [str(path), "--village", VID])
    assert result.exit_code == 0 and "4 unchanged" in result.output
    with Store(app.config["DATA_DIR"], layout=LAYOUT, snapshot_every=0) as s:
        assert len(s.search(VID, "households")) == 4


def test_command_reports_errors_and_exits_nonzero(cli, tmp_path):
    app, runner = cli
    path = tmp_path / "bad.csv"
    path.write_bytes((GOOD + "孙七,x,,脱贫户,1组,,,\n").encode("gbk"))
    result = runner.invoke(import_roster_command, [str(path), "--village", VID])
    assert result.exit_code == 1
    assert "第 6 行" in result.output and "row 6" in result.output and "nothing was written" in result.output
    with Store(app.config["DATA_DIR"], layout=LAYOUT, snapshot_every=0) as s:
        assert s.search(VID, "households") == []


def test_command_refuses_while_a_server_owns_the_folder(cli, tmp_path):
    app, runner = cli
    path = tmp_path / "r.csv"
    path.write_bytes(GOOD.encode())
    with Store(app.config["DATA_DIR"], layout=LAYOUT, snapshot_every=0):
        result = runner.invoke(import_roster_command, [str(path), "--village", VID])
    assert result.exit_code != 0
    assert "/admin" in result.output


if __name__ == "__main__":
    with open(SAMPLE_CSV, encoding="utf-8-sig") as f:
        sample = f.read()
    with open(SAMPLE_XLSX, "wb") as f:
        f.write(csv_to_xlsx(sample))
    print(f"wrote {SAMPLE_XLSX}")
