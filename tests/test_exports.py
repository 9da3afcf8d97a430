"""Exports read back: XLSX with openpyxl, CSV with the BOM, the land ledger, attachments; scope,
filters, bad filters, and formula text kept as text."""

import csv
import hashlib
import io
import re
import zipfile
from datetime import datetime

from openpyxl import load_workbook

from tests.helpers import jpeg_bytes, login, push, review, visit, visit2, visit3


def seed(app):
    cadre1, cadre2 = login(app.test_client(), "cadre1"), login(app.test_client(), "cadre2")
    formula = visit2("v1-0001", visit_date="2026-05-02", present="=HYPERLINK(\"http://evil\",\"点我\")",
                     topics=["income_jobs", "health_insurance"], notes="@SUM(A1:A9)",
                     help_given=[{"product": "红薯", "quantity": 300, "unit": "斤", "price": 1.5},
                                 {"product": "-蜂蜜", "quantity": 10, "unit": "斤", "price": 60}],
                     followups=[{"action": "+联系医院", "due_date": "2026-06-01"}],
                     location={"lat": 28.7, "lon": 113.5, "accuracy": 12})
    plain = visit2("v1-0002", visit_date="2026-05-10", risk="yes", risk_reason="户主住院")
    old_version = visit("v1-0003", visit_date="2026-04-20")  # form version 1
    theirs = visit2("v2-0001", visit_date="2026-05-05")
    assert [r["status"] for r in push(cadre1, formula, plain, old_version).get_json()["results"]] == ["created"] * 3
    assert push(cadre2, theirs).get_json()["results"][0]["status"] == "created"
    return {"formula": formula, "plain": plain, "old": old_version, "theirs": theirs}


def xlsx(api, url):
    r = api.get(url)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in r.headers["Content-Disposition"]
    return load_workbook(io.BytesIO(r.data))


def rows(sheet):
    return [[c.value for c in row] for row in sheet.iter_rows()]


def test_submissions_xlsx_has_labels_names_repeats_and_formulas_as_text(app):
    items = seed(app)
    supervisor = login(app.test_client(), "super")
    book = xlsx(supervisor, "/exports/submissions.xlsx?form=household_visit")
    assert {"submissions", "members", "help_given", "followups", "promises"} <= set(book.sheetnames)
    main = book["submissions"]
    table = rows(main)
    labels, names, data = table[0], table[1], table[2:]
    assert len(data) == 4
    assert names[:3] == ["uuid", "household_id", "head_name"] and "review_state" in names
    assert "topics" in names and "location.lat" in names and "income_total" in names
    assert labels[names.index("topics")] == "走访内容" and labels[0] == "记录编号"
    by_uuid = {r[0]: dict(zip(names, r)) for r in data}
    f = by_uuid[items["formula"]["uuid"]]
    assert f["topics"] == "收入与就业;健康与医保"
    assert f["visit_type"] == "入户走访" and f["review_state"] == "待审核" and f["village"] == "青石村"
    assert f["location.accuracy"] == 12 and f["date"] == datetime(2026, 5, 2) and f["cadre"] == "李干部"
    # The formula is stored as text: openpyxl reads it back as a string cell, never a formula.
    present_cell = next(c for c in main.iter_rows(min_row=3) if c[0].value == items["formula"]["uuid"])[names.index("present")]
    assert present_cell.value == "=HYPERLINK(\"http://evil\",\"点我\")" and present_cell.data_type == "s"
    assert f["notes"] == "@SUM(A1:A9)"
    assert by_uuid[items["plain"]["uuid"]]["risk_reason"] == "户主住院"
    assert by_uuid[items["old"]["uuid"]]["form_version"] == 1
    help_rows = rows(book["help_given"])
    assert help_rows[1][:3] == ["submission_uuid", "household_id", "index"]
    assert [(r[0], r[2], r[3]) for r in help_rows[2:]] == [(items["formula"]["uuid"], 1, "红薯"),
                                                          (items["formula"]["uuid"], 2, "-蜂蜜")]
    honey = book["help_given"].cell(row=4, column=4)
    assert honey.data_type == "s" and honey.value == "-蜂蜜"
    assert [r[0] for r in rows(book["followups"])[2:]] == [items["formula"]["uuid"]]


def test_export_filters_and_scope(app):
    items = seed(app)
    supervisor = login(app.test_client(), "super")
    review(supervisor, items["plain"]["uuid"], state="approved")

    def uuids(api, query):
        return sorted(r[0] for r in rows(xlsx(api, f"/exports/submissions.xlsx?form=household_visit&{query}")["submissions"])[2:])

    assert uuids(supervisor, "village=v2") == [items["theirs"]["uuid"]]
    assert uuids(supervisor, "state=approved") == [items["plain"]["uuid"]]
    assert uuids(supervisor, "from=2026-05-02&to=2026-05-05") == sorted([items["formula"]["uuid"], items["theirs"]["uuid"]])
    cadre2 = login(app.test_client(), "cadre2")
    assert uuids(cadre2, "") == [items["theirs"]["uuid"]]
    assert cadre2.get("/exports/submissions.xlsx?form=household_visit&village=v1").status_code == 404
    assert uuids(supervisor, "form=household_visit") and \
        rows(xlsx(supervisor, "/exports/submissions.xlsx?form=pv_enrollment")["submissions"])[2:] == []


def test_bad_export_filters_get_a_message_never_a_500(app):
    seed(app)
    supervisor = login(app.test_client(), "super")
    for query, status, word in [("", 400, "form"), ("form=nope", 400, "form"),
                                ("form=household_visit&from=2026-13-01", 400, "from"),
                                ("form=household_visit&to=yesterday", 400, "to"),
                                ("form=household_visit&from=2026-06-01&to=2026-05-01", 400, "from"),
                                ("form=household_visit&state=lost", 400, "state"),
                                ("form=household_visit&village=v9", 404, None),
                                ("form=household_visit&village=" + "x" * 500, 400, "village")]:
        for path in ("submissions.xlsx", "submissions.zip", "attachments.zip"):
            r = supervisor.get(f"/exports/{path}?{query}")
            assert r.status_code == status, (path, query, r.status_code)
            text = r.get_data(as_text=True)
            assert "<h1>" in text and (word is None or word in text), (path, query)
    assert supervisor.get("/exports/households.xlsx?village=nope").status_code == 404
    assert app.test_client().get("/exports/households.xlsx").status_code in (302, 401)


def test_submissions_zip_is_utf8_bom_csv_per_sheet(app):
    items = seed(app)
    supervisor = login(app.test_client(), "super")
    r = supervisor.get("/exports/submissions.zip?form=household_visit&village=v1")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.data))
    assert {"submissions.csv", "help_given.csv", "followups.csv", "members.csv"} <= set(zf.namelist())
    raw = zf.read("submissions.csv")
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    labels, names, data = table[0], table[1], table[2:]
    assert labels[0] == "记录编号" and names[0] == "uuid" and len(data) == 3
    f = next(dict(zip(names, row)) for row in data if row[0] == items["formula"]["uuid"])
    assert f["present"] == "'=HYPERLINK(\"http://evil\",\"点我\")" and f["notes"] == "'@SUM(A1:A9)"
    assert f["topics"] == "收入与就业;健康与医保"
    helped = list(csv.reader(io.StringIO(zf.read("help_given.csv").decode("utf-8-sig"))))[2:]
    assert [(row[0], row[3]) for row in helped] == [(items["formula"]["uuid"], "红薯"),
                                                   (items["formula"]["uuid"], "'-蜂蜜")]
    followups = list(csv.reader(io.StringIO(zf.read("followups.csv").decode("utf-8-sig"))))[2:]
    assert followups[0][3] == "'+联系医院"


def test_headers_follow_the_page_language(app):
    seed(app)
    supervisor = login(app.test_client(), "super")
    supervisor.client.set_cookie("lang", "en")
    table = rows(xlsx(supervisor, "/exports/submissions.xlsx?form=household_visit")["submissions"])
    assert table[0][0] == "Record id" and table[0][table[1].index("topics")] == "Topics discussed"
    assert any(r[table[1].index("topics")] == "Income and jobs;Health and medical insurance" for r in table[2:])


def test_household_ledger_has_members_and_plots_with_four_boundaries(app):
    supervisor = login(app.test_client(), "super")
    book = xlsx(supervisor, "/exports/households.xlsx")
    assert book.sheetnames == ["about", "households", "members", "plots"]
    households = rows(book["households"])
    assert households[1][:2] == ["id", "village_id"] and len(households) == 2 + 5
    assert households[2][households[1].index("category")] == "脱贫户"
    members = rows(book["members"])
    assert len(members) == 2 + 5 and members[2][members[1].index("sex")] == "男"
    plots = rows(book["plots"])
    names = plots[1]
    assert [plots[0][names.index(s)] for s in ("east", "west", "south", "north")] == ["东至", "西至", "南至", "北至"]
    first = dict(zip(names, plots[2]))
    assert (first["household_id"], first["name"], first["area_mu"]) == ("v1-0001", "大田", 1.5)
    assert (first["east"], first["west"], first["south"], first["north"]) == ("水渠", "村道", "李家", "山林")
    assert first["contract_signed"] == "已签"
    cadre2 = login(app.test_client(), "cadre2")
    only_v2 = rows(xlsx(cadre2, "/exports/households.xlsx")["households"])[2:]
    assert sorted(r[0] for r in only_v2) == ["v2-0001", "v2-0002"]
    assert len(rows(xlsx(supervisor, "/exports/households.xlsx?village=v1")["plots"])) == 2 + 3


def test_attachments_zip_names_files_by_household_date_and_uuid(app):
    cadre = login(app.test_client(), "cadre1")
    photo = jpeg_bytes()
    item = visit2("v1-0002", visit_date="2026-05-03", photo_1="p1.jpg")
    item["attachments"] = [{"name": "p1.jpg", "sha256": hashlib.sha256(photo).hexdigest(), "size": len(photo),
                            "type": "image/jpeg"}]
    waiting = visit2("v1-0001", photo_1="p2.jpg")
    waiting["attachments"] = [{"name": "p2.jpg", "sha256": "a" * 64, "size": 10, "type": "image/jpeg"}]
    push(cadre, item, waiting)
    assert cadre.put(f"/api/v1/submissions/{item['uuid']}/attachments/p1.jpg", data=photo,
                     headers={"X-Content-SHA256": hashlib.sha256(photo).hexdigest()}).status_code == 200
    supervisor = login(app.test_client(), "super")
    r = supervisor.get("/exports/attachments.zip?form=household_visit")
    assert r.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(r.data))
    assert zf.namelist() == [f"v1-0002/2026-05-03-{item['uuid']}-p1.jpg"]  # the missing one is left out
    assert zf.read(zf.namelist()[0]) == photo
    cadre2 = login(app.test_client(), "cadre2")
    assert zipfile.ZipFile(io.BytesIO(cadre2.get("/exports/attachments.zip?form=household_visit").data)).namelist() == []


def test_export_buttons_on_the_review_and_household_pages(app):
    supervisor = login(app.test_client(), "super")
    page = supervisor.get("/review").get_data(as_text=True)
    for path in ("/exports/submissions.xlsx?", "/exports/submissions.zip?", "/exports/attachments.zip?",
                 "/exports/submissions-attachments.zip?",
                 "/exports/households.xlsx"):
        assert path in page, path
    listing = supervisor.get("/households?village=v1").get_data(as_text=True)
    assert re.search(r'href="/exports/households\.xlsx\?village=v1"', listing)


def test_xlsx_has_an_about_sheet_real_dates_local_times_numbers_and_help_amounts(app):
    """A statistician's workbook: the about sheet first (filters, time), the day as an Excel date,
    times in the county's zone (a visit filled at 23:30 Beijing time is 23:30, not 15:30 UTC),
    numbers as numbers, each help row with its amount."""
    cadre = login(app.test_client(), "cadre1")
    late = visit2("v1-0001", visit_date="2026-05-02", created_at="2026-05-02T15:30:00Z",
                  income_wages=24000,
                  help_given=[{"product": "红薯", "quantity": 300, "unit": "斤", "price": 1.5},
                              {"product": "蜂蜜", "quantity": 10, "unit": "斤", "price": 60}])
    assert push(cadre, late).get_json()["results"][0]["status"] == "created"
    supervisor = login(app.test_client(), "super")
    book = xlsx(supervisor, "/exports/submissions.xlsx?form=household_visit&village=v1&from=2026-05-01")
    assert book.sheetnames[0] == "about"
    about = {r[0]: r[1] for r in rows(book["about"])}
    assert about["表单"].startswith("入户走访记录") and about["村"] == "青石村"
    assert about["起始日期"] == datetime(2026, 5, 1) and about["记录数"] == 1
    assert isinstance(about["导出时间"], datetime) and about["时区"] == "Asia/Shanghai"
    main = book["submissions"]
    names = [c.value for c in main[2]]
    row = {n: c for n, c in zip(names, main[3])}
    assert row["date"].is_date and row["date"].value == datetime(2026, 5, 2)
    assert row["created_at"].is_date and row["created_at"].value == datetime(2026, 5, 2, 23, 30)
    assert row["received_at"].is_date and row["visit_date"].value == datetime(2026, 5, 2)
    assert row["income_wages"].data_type == "n" and row["income_wages"].value == 24000
    assert row["form_version"].value == 2
    helped = rows(book["help_given"])
    names = helped[1]
    assert names[-1] == "amount" and helped[0][-1] == "金额（元）"
    amounts = [dict(zip(names, r)) for r in helped[2:]]
    assert [(a["product"], a["quantity"], a["price"], a["amount"]) for a in amounts] == \
        [("红薯", 300, 1.5, 450), ("蜂蜜", 10, 60, 600)]
    ledger = xlsx(supervisor, "/exports/households.xlsx?village=v1")
    assert ledger.sheetnames[0] == "about"
    about = {r[0]: r[1] for r in rows(ledger["about"])}
    assert about["导出内容"] == "农户台账" and about["村"] == "青石村" and "审核状态" not in about
    table = ledger["households"]
    names = [c.value for c in table[2]]
    first = {n: c for n, c in zip(names, table[3])}
    assert first["updated_at"].is_date and first["last_visit_date"].value == datetime(2026, 5, 2)


def test_csv_has_the_about_sheet_and_dates_as_iso_text(app):
    seed(app)
    supervisor = login(app.test_client(), "super")
    zf = zipfile.ZipFile(io.BytesIO(supervisor.get("/exports/submissions.zip?form=household_visit").data))
    about = list(csv.reader(io.StringIO(zf.read("about.csv").decode("utf-8-sig"))))
    assert about[0][0] == "导出内容" and any(r[0] == "记录数" and r[1] == "4" for r in about)
    table = list(csv.reader(io.StringIO(zf.read("submissions.csv").decode("utf-8-sig"))))
    names = table[1]
    assert all(re.match(r"^\d{4}-\d\d-\d\d$", r[names.index("date")]) for r in table[2:])
    assert all(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", r[names.index("created_at")]) for r in table[2:])


def test_sheet_and_photos_together_link_each_photo_to_its_file(app):
    """The bundle: submissions.xlsx beside the attachments ZIP's own folders; a photo that arrived
    is a relative hyperlink to its file, one that has not is its bare name."""
    cadre = login(app.test_client(), "cadre1")
    photo = jpeg_bytes()
    item = visit2("v1-0002", visit_date="2026-05-03", photo_1="p1.jpg")
    item["attachments"] = [{"name": "p1.jpg", "sha256": hashlib.sha256(photo).hexdigest(),
                            "size": len(photo), "type": "image/jpeg"}]
    waiting = visit2("v1-0001", visit_date="2026-05-04", photo_1="p2.jpg")
    waiting["attachments"] = [{"name": "p2.jpg", "sha256": "a" * 64, "size": 10, "type": "image/jpeg"}]
    push(cadre, item, waiting)
    assert cadre.put(f"/api/v1/submissions/{item['uuid']}/attachments/p1.jpg", data=photo,
                     headers={"X-Content-SHA256": hashlib.sha256(photo).hexdigest()}).status_code == 200
    supervisor = login(app.test_client(), "super")
    r = supervisor.get("/exports/submissions-attachments.zip?form=household_visit")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.data))
    target = f"v1-0002/2026-05-03-{item['uuid']}-p1.jpg"
    assert zf.namelist() == ["submissions.xlsx", target] and zf.read(target) == photo
    book = load_workbook(io.BytesIO(zf.read("submissions.xlsx")))
    main = book["submissions"]
    names = [c.value for c in main[2]]
    cells = {row[0].value: row[names.index("photo_1")] for row in main.iter_rows(min_row=3)}
    arrived, missing = cells[item["uuid"]], cells[waiting["uuid"]]
    assert arrived.value == "p1.jpg" and arrived.hyperlink.target == target
    assert missing.value == "p2.jpg" and missing.hyperlink is None
    assert any("<户编号>/<日期>-<记录编号>-<文件名>" in str(r[1]) for r in rows(book["about"]))
    # The plain export names the file, without a link that would lead nowhere.
    plain = xlsx(supervisor, "/exports/submissions.xlsx?form=household_visit")["submissions"]
    assert all(row[names.index("photo_1")].hyperlink is None for row in plain.iter_rows(min_row=3))
    cadre2 = login(app.test_client(), "cadre2")
    theirs = zipfile.ZipFile(io.BytesIO(cadre2.get("/exports/submissions-attachments.zip?form=household_visit").data))
    assert theirs.namelist() == ["submissions.xlsx"]


def test_xlsx_keeps_markup_spaces_and_large_numbers_as_entered(app):
    """The streaming writer escapes what XML would misread and keeps edge spaces and numbers."""
    cadre = login(app.test_client(), "cadre1")
    odd = visit2("v1-0001", visit_date="2026-05-02", present="  <b>户主&配偶</b> \"x\" ",
                 notes="-1", income_wages=9876543, income_farming=0.1 + 0.2)
    result = push(cadre, odd).get_json()["results"][0]
    assert result["status"] == "created", result
    supervisor = login(app.test_client(), "super")
    main = xlsx(supervisor, "/exports/submissions.xlsx?form=household_visit")["submissions"]
    names = [c.value for c in main[2]]
    row = {n: c for n, c in zip(names, main[3])}
    stored = supervisor.get("/api/v1/review?form=household_visit&state=received").get_json()
    kept = next(x for x in stored["submissions"] if x["uuid"] == odd["uuid"])["answers"]["present"]
    assert "<b>户主&配偶</b>" in kept and row["present"].value == kept
    assert row["notes"].value == "-1" and row["notes"].data_type == "s"
    assert row["income_wages"].value == 9876543 and row["income_farming"].value == 0.1 + 0.2


def test_the_help_sheet_has_a_channel_column_by_label_empty_for_older_visits(app):
    """household_visit version 3 names each help entry's buyer channel: the help sheet has a channel
    column after the price, its label (in the page's language) in XLSX and CSV; a version-2 entry
    and an entry naming none leave it empty."""
    cadre = login(app.test_client(), "cadre1")
    old = visit2("v1-0001", visit_date="2026-05-02",
                 help_given=[{"product": "红薯", "quantity": 300, "unit": "斤", "price": 1.5}])
    new = visit3("v1-0002", visit_date="2026-05-03",
                 help_given=[{"product": "蜂蜜", "quantity": 10, "unit": "斤", "price": 60, "channel": "online"},
                             {"product": "土鸡蛋", "quantity": 30, "unit": "枚", "price": 1.2}])
    assert [r["status"] for r in push(cadre, old, new).get_json()["results"]] == ["created"] * 2
    supervisor = login(app.test_client(), "super")
    helped = rows(xlsx(supervisor, "/exports/submissions.xlsx?form=household_visit")["help_given"])
    labels, names = helped[0], helped[1]
    assert names[-3:] == ["price", "channel", "amount"] and labels[names.index("channel")] == "购买渠道"
    got = {(r[0], r[2]): dict(zip(names, r)) for r in helped[2:]}
    assert got[(new["uuid"], 1)]["channel"] == "电商平台" and got[(new["uuid"], 1)]["amount"] == 600
    assert got[(new["uuid"], 2)]["channel"] in (None, "") and got[(old["uuid"], 1)]["channel"] in (None, "")
    zf = zipfile.ZipFile(io.BytesIO(supervisor.get("/exports/submissions.zip?form=household_visit").data))
    table = list(csv.reader(io.StringIO(zf.read("help_given.csv").decode("utf-8-sig"))))
    assert table[1][-2] == "channel"
    assert sorted(row[-2] for row in table[2:]) == ["", "", "电商平台"]
    supervisor.client.set_cookie("lang", "en")
    helped = rows(xlsx(supervisor, "/exports/submissions.xlsx?form=household_visit")["help_given"])
    assert helped[0][helped[1].index("channel")] == "Buyer channel"
    assert "Online platform" in [r[helped[1].index("channel")] for r in helped[2:]]
