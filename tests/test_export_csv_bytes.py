"""The ZIP of CSVs byte for byte: the fast writer (rows joined as they are when nothing needs
quoting) must write exactly what the csv module wrote before it, for the values that are hard to
get right: quotes, commas, line breaks, formula starts, None, numbers, dates, links, empty rows.
The expected bytes are written out by hand; the texts the CSV's plans make in one pass are held to
those of the values the XLSX takes (a seeded property test)."""

import io
import zipfile
from datetime import date, datetime

import pytest

from server.services.tabular import CsvBook, Link
from tests.helpers import login, push, review, visit, visit2

BOM = "\ufeff"


def _book_bytes(rows, about=None):
    book = CsvBook(about=about is not None)
    add = book.sheet("sheet", ["标签", None], ["a", "b"])
    for row in rows:
        add(row)
    if about is not None:
        book.about(about)
    out = io.BytesIO()
    book.save(out)
    zf = zipfile.ZipFile(out)
    return {name: zf.read(name) for name in zf.namelist()}


def test_csv_book_writes_tricky_values_as_the_csv_module_did():
    files = _book_bytes([
        ["plain", "逗号,在里面", 'say "hi"', "two\nlines", "cr\rhere", None, 0, -3, 1.5, 2.0, 1e16,
         float("nan")],
        ["=1+1", "+86", "-5", "@SUM(A1)", "\tlead", "\rlead", "'quoted", " space ", "", None],
        [True, False, date(2026, 5, 2), datetime(2026, 5, 2, 8, 30, 5), Link("a/b.jpg", "b.jpg"),
         Link("x", "=evil")],
        [None],
        [""],
        [],
        ["a,b", None],
        ["=a,b", '-"q"'],
        ["nul\0x"],
    ], about=[["导出", "x"], ["记录数", 3]])
    expected = (
        BOM + "标签,\r\n"
        "a,b\r\n"
        'plain,"逗号,在里面","say ""hi""","two\nlines","cr\rhere",,0,-3,1.5,2.0,1e+16,nan\r\n'
        "'=1+1,'+86,'-5,'@SUM(A1),'\tlead,\"'\rlead\",'quoted, space ,,\r\n"
        "1,0,2026-05-02,2026-05-02 08:30:05,b.jpg,'=evil\r\n"
        '""\r\n'      # a row of one empty cell: the csv module quotes it, so it is not a blank line
        '""\r\n'
        "\r\n"        # a row of no cells
        '"a,b",\r\n'
        "\"'=a,b\",\"'-\"\"q\"\"\"\r\n"
        "nul\0x\r\n")
    assert files["sheet.csv"] == expected.encode("utf-8")
    assert files["about.csv"] == (BOM + "导出,x\r\n记录数,3\r\n").encode("utf-8")


def test_csv_book_flushes_every_batch_in_order():
    """More rows than one batch holds, some through the csv module and some joined: order kept."""
    rows = [[i, "x,y" if i % 7 == 0 else "x", None] for i in range(1300)]
    body = _book_bytes(rows)["sheet.csv"].decode("utf-8")
    lines = [f'{i},"x,y",' if i % 7 == 0 else f"{i},x," for i in range(1300)]
    assert body == BOM + "标签,\r\na,b\r\n" + "".join(line + "\r\n" for line in lines)


def test_exported_repeat_rows_are_byte_for_byte_as_before(app):
    cadre = login(app.test_client(), "cadre1")
    item = visit2("v1-0001", "2026-05-02",
                  help_given=[{"product": '红薯,"大"', "quantity": 300, "unit": "斤", "price": 1.5},
                              {"product": "=蜂蜜", "quantity": 10, "unit": "斤", "price": 60},
                              {"product": "两行\n文字", "quantity": 2.5, "unit": "斤", "price": 4}],
                  followups=[{"action": "-联系医院", "due_date": "2026-06-01"},
                             {"action": "回访", "due_date": "2026-06-30"}])
    assert push(cadre, item).get_json()["results"][0]["status"] == "created"
    supervisor = login(app.test_client(), "super")
    r = supervisor.get("/exports/submissions.zip?form=household_visit&village=v1")
    assert r.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(r.data))
    u = item["uuid"]
    help_rows = zf.read("help_given.csv").decode("utf-8").split("\r\n", 2)[2]
    assert help_rows == (
        f'{u},v1-0001,1,"红薯,""大""",300,斤,1.5,,450\r\n'     # ,, : no buyer channel (version 2)
        f"{u},v1-0001,2,'=蜂蜜,10,斤,60,,600\r\n"
        f'{u},v1-0001,3,"两行\n文字",2.5,斤,4,,10\r\n')
    followup_rows = zf.read("followups.csv").decode("utf-8").split("\r\n", 2)[2]
    assert followup_rows == (f"{u},v1-0001,1,'-联系医院,2026-06-01,\r\n"
                             f"{u},v1-0001,2,回访,2026-06-30,\r\n")
    assert zf.read("followups.csv").startswith(b"\xef\xbb\xbf")


def test_exported_visit_rows_are_byte_for_byte_as_before(app):
    """The submissions sheet of the ZIP through the real route, for visits whose every column is
    hard: formula starts, quotes, commas and line breaks in answers and in the review comment,
    whole and fractional numbers, choices (one, several), a point, an empty answer, an
    older form version, times with offsets turned into the county's zone, a review. The expected
    bytes were written by the writer before the one-pass CSV rows, and are kept here literally."""
    app.config["FIXED_NOW"] = "2026-05-03T16:04:05+00:00"
    cadre = login(app.test_client(), "cadre1")
    tricky = visit2("v1-0001", "2026-05-02", created_at="2026-05-02T23:30:15.5-05:00",
                    present='=HYPERLINK("x","点")', topics=["income_jobs", "health_insurance"],
                    income_wages=1.5, income_farming=2.0, income_total=3.5,
                    needs=["employment", "medical"], needs_detail="两行\n文字,逗号",
                    risk="yes", risk_reason="-住院", notes="@SUM(A1)",
                    location={"lat": 28.7, "lon": 113.5, "accuracy": 12.0})
    plain = visit2("v1-0002", "2026-05-01", created_at="2026-05-01T08:00:00Z", present="户主",
                   notes="'already quoted", income_wages=0)
    old = visit("v1-0003", "2026-04-20", created_at="2026-04-20T10:00:00+08:00", present=" 空格 ")
    assert [r["status"] for r in push(cadre, tricky, plain, old).get_json()["results"]] == ["created"] * 3
    supervisor = login(app.test_client(), "super")
    assert review(supervisor, tricky["uuid"], state="has_issues", comment='核实,"收入"\n再报').status_code == 200
    r = supervisor.get("/exports/submissions.zip?form=household_visit&village=v1")
    assert r.status_code == 200
    rows = zipfile.ZipFile(io.BytesIO(r.data)).read("submissions.csv").decode("utf-8").split("\r\n", 2)[2]
    a, b, c = old["uuid"], plain["uuid"], tricky["uuid"]
    assert rows == (
        f"{a},v1-0003,张v13,v1,青石村,cadre1,李干部,2026-04-20,2026-04-20 10:00:00,2026-05-04 00:04:05,1,"
        "待审核,,,,,2026-04-20,入户走访, 空格 ,收入与就业,无变化,,,,,,,,,否,,,,,,,,,\r\n"
        f"{b},v1-0002,张v12,v1,青石村,cadre1,李干部,2026-05-01,2026-05-01 16:00:00,2026-05-04 00:04:05,2,"
        "待审核,,,,,2026-05-01,入户走访,户主,收入与就业,无变化,0,,,,,0,,,否,,,,,,,,,'already quoted\r\n"
        f"{c},v1-0001,张v11,v1,青石村,cadre1,李干部,2026-05-02,2026-05-03 12:30:15,2026-05-04 00:04:05,2,"
        '需修改,"核实,""收入""\n再报",赵督导,2026-05-04 00:04:05,,2026-05-02,入户走访,"\'=HYPERLINK(""x"",""点"")",'
        "收入与就业;健康与医保,无变化,1.5,2,,,,3.5,就业岗位;医疗救助,\"两行\n文字,逗号\",是,'-住院,,,,28.7,113.5,12,,"
        "'@SUM(A1)\r\n")


@pytest.mark.tinydb_only  # no store read: the plans alone
def test_cells_made_as_text_are_the_texts_of_the_cells_made_as_values(app):
    """The CSV's one-pass plan (each answer straight to its text) against the values plan the
    XLSX takes, turned into text afterwards as the CSV writer always did: the same texts for
    answers of every shape a stored visit may hold (seeded, so a failure replays)."""
    import random

    from server.forms import formdefs
    from server.services import sheets
    from server.services.tabular import csv_cell, csv_cells

    rnd = random.Random(26)
    texts = ["", "x", "=1+1", "-5", "+86", "@a", "\tt", "\rr", 'a "q"', "a,b", "两行\n文字", " ", "'q",
             "2026-05-02", "home", "income_jobs", "nul\0x"]
    numbers = [0, -3, 7, 1.5, 2.0, -0.0, 1e15, 1e16, float("nan"), float("inf"), True, False, 10 ** 20]

    def shape(depth=0):
        kind = rnd.randrange(7 if depth < 2 else 4)
        if kind == 0:
            return None
        if kind == 1:
            return rnd.choice(texts)
        if kind == 2:
            return rnd.choice(numbers)
        if kind == 3:
            return rnd.choice(["home", "phone", "yes", "no", "none", "income_jobs", "zzz"])
        if kind == 4:
            return [shape(depth + 1) for _ in range(rnd.randrange(4))]
        if kind == 5:
            return {k: shape(depth + 1) for k in rnd.sample(["lat", "lon", "accuracy", "x"], rnd.randrange(4))}
        return [rnd.choice(["income_jobs", "health_insurance", "zzz"]) for _ in range(rnd.randrange(3))]

    with app.app_context():
        cols = sheets.FormColumns(formdefs.registry(), "household_visit")
        groups = [cols.top] + [r["children"] for r in cols.repeats.values()]
        for version in list(cols.by_version) + [99]:
            own = cols.by_version.get(version) or {}
            for fields in groups:
                as_values = sheets._plan(fields, own, as_text=False)
                as_text = sheets._plan(fields, own, as_text=True)
                for _ in range(300):
                    answers = {f["name"]: shape() for f in fields if rnd.random() < 0.8}
                    assert as_text(answers, None, sheets._same, ["first"]) == \
                        csv_cells(as_values(answers, None, sheets._same, ["first"])), answers
                # a repeat's rows made in one loop: a row per entry that is a dict, numbered by
                # place, with the help amount (quantity x price) as _amount makes it
                spec = {"quantity": "quantity", "price": "price"}
                entries = [dict({f["name"]: shape() for f in fields},
                                quantity=rnd.choice(numbers + texts[:2] + [None, 3, 2.5]),
                                price=rnd.choice(numbers + [None, 1, 1.5, 60]))
                           if rnd.random() < 0.8 else shape() for _ in range(40)]
                for text_rows, make, number in ((True, as_text, str), (False, as_values, sheets._same)):
                    rows, got = sheets._plan(fields, own, text_rows, rows=True, amount=spec), []
                    rows(entries, ["u", "h"], None, sheets._same, got.append)
                    amount = csv_cell if text_rows else sheets._same
                    expected = [make(e, None, sheets._same, ["u", "h", number(i)]) + [amount(sheets._amount(e, spec))]
                                for i, e in enumerate(entries, 1) if isinstance(e, dict)]
                    assert [list(map(repr, r)) for r in got] == [list(map(repr, r)) for r in expected]  # nan != nan
