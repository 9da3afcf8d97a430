"""The ZIP of CSVs byte for byte: the fast writer (rows joined as they are when nothing needs
quoting) must write exactly what the csv module wrote before it, for the values that are hard to
get right: quotes, commas, line breaks, formula starts, None, numbers, dates, links, empty rows.
The expected bytes are written out by hand."""

import io
import zipfile
from datetime import date, datetime

from server.services.tabular import CsvBook, Link
from tests.helpers import login, push, visit2

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
