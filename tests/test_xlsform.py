"""XLSForm in and out (server/forms/xlsform.py, xlsform_write.py): a workbook using every item of the
supported subset imports into a definition validated like the YAML ones; every built-in form goes
out as XLSForm and comes back the same (and pyxform converts it); bad workbooks are refused with
sheet, row and column, and nothing is published."""

import glob
import io
import json
import os
import subprocess
import sys
import zipfile

import pytest
import yaml
from openpyxl import Workbook

from server.forms import formdefs, xlsform, xlsform_write
from server.forms.formdefs import validate_answers
from tests.conftest import Api

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TODAY = "2024-05-06"
ZH, EN = "label::Chinese (zh)", "label::English (en)"


def workbook(survey, choices=None, settings=None):
    """XLSX bytes from rows: survey/choices as [header, row, ...], settings as {column: value}."""
    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    for row in survey:
        ws.append(list(row))
    if choices is not None:
        cs = wb.create_sheet("choices")
        for row in choices:
            cs.append(list(row))
    if settings is not None:
        ss = wb.create_sheet("settings")
        ss.append(list(settings))
        ss.append(list(settings.values()))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


SURVEY_HEAD = ["type", "name", ZH, EN, "hint::中文", "required", "required_message::English (en)", "relevant",
               "constraint", "constraint_message::English (en)", "constraint_message::中文", "calculation",
               "default", "read_only", "choice_filter", "appearance", "parameters", "repeat_count"]


def row(type_, name, zh="", en="", **cols):
    cells = {"type": type_, "name": name, ZH: zh, EN: en}
    cells.update(cols)
    return [cells.get(h, None) for h in SURVEY_HEAD]


EVERYTHING = [
    SURVEY_HEAD,
    row("start", "started"), row("end", "ended"), row("today", "day"), row("deviceid", "device"),
    row("begin group", "basics", "基本情况", "Basics"),
    row("text", "head", "户主姓名", "Head of household", required="yes",
        constraint="string-length(.) <= 20", **{"required_message::English (en)": "Write the head's name",
                                                 "constraint_message::English (en)": "At most 20 characters"}),
    row("integer", "age", "年龄", "Age", constraint=". >= 0 and . < 130"),
    row("decimal", "income", "收入", "Income", constraint=". >= 0"),
    row("date", "visit", "走访日期", "Visit date", constraint=". <= today()"),
    row("time", "at", "时间", "Time"), row("dateTime", "when", "日期时间", "Date and time"),
    row("select_one yn", "pv", "是否安装光伏", "Rooftop PV?", required="yes"),
    row("select_multiple crops", "crops", "作物", "Crops", relevant="${pv} = 'yes'"),
    row("select_one crops", "main_crop", "主要作物", "Main crop", choice_filter="selected(${crops}, name)"),
    row("begin group", "inner", "内部", "Inner", relevant="${age} >= 18"),
    row("text", "job", "职业", "Job", appearance="multiline"),
    row("end group", "inner"),
    row("end group", "basics"),
    row("begin group", "media", "资料", "Media"),
    row("geopoint", "where", "位置", "Location"), row("image", "photo", "照片", "Photo"),
    row("audio", "voice", "录音", "Recording"), row("file", "doc", "文件", "File"),
    row("note", "info", "说明：${head}", "About ${head}"),
    row("calculate", "double_income", calculation="${income} * 2"),
    row("acknowledge", "ok", "已告知", "Informed"),
    row("range", "score", "评分", "Score", parameters="start=0 end=10 step=2"),
    row("select_one_from_file towns.csv", "town", "乡镇", "Town"),
    row("select_one yn or_other", "agree", "同意", "Agree"),
    row("text", "fixed", "固定值", "Fixed", default="A1", read_only="yes"),
    row("end group", "media"),
    row("begin group", "people", "成员", "People"),
    row("integer", "n", "人数", "How many", required="yes"),
    row("begin repeat", "member", "成员", "Member", repeat_count="${n}"),
    row("text", "mname", "姓名", "Name", required="yes"),
    row("integer", "myear", "出生年", "Year of birth"),
    row("calculate", "pos", calculation="position(..)"),
    row("begin repeat", "job_rep", "工作", "Jobs"),
    row("text", "employer", "单位", "Employer", relevant="${myear} < 2010"),
    row("end repeat", "job_rep"),
    row("end repeat", "member"),
    row("calculate", "total_years", calculation="sum(${myear})"),
    row("calculate", "first_name", calculation="indexed-repeat(${mname}, ${member}, 1)"),
    row("end group", "people"),
]
CHOICES = [
    ["list_name", "name", "label::Chinese (zh)", "label::English (en)"],
    ["yn", "yes", "是", "Yes"], ["yn", "no", "否", "No"],
    ["crops", "rice", "水稻", "Rice"], ["crops", "corn", "玉米", "Corn"], ["crops", "tea", "茶叶", "Tea"],
]
SETTINGS = {"form_id": "county_survey", "version": "3", "form_title": "县调查", "default_language": "Chinese (zh)"}
TOWNS = "name,label::Chinese (zh),label::English (en)\nt1,城关镇,Chengguan\nt2,东山乡,Dongshan\n".encode()


def everything():
    return xlsform.read_xlsform(workbook(EVERYTHING, CHOICES, SETTINGS), "county.xlsx", {"towns.csv": TOWNS})


def test_every_item_of_the_subset_imports_into_a_checked_definition():
    definition, notes = everything()
    assert (definition["id"], definition["version"], definition["title"]) == \
        ("county_survey", 3, {"zh": "县调查", "en": "县调查"})
    sections = definition["fields"]
    assert [s["name"] for s in sections] == ["basics", "media", "people"]
    assert all(s["type"] == "group" for s in sections)
    basics = {f["name"]: f for f in sections[0]["fields"]}
    # metadata before the first group joins it (it shows nothing, so it makes no page of its own)
    assert [basics[n]["type"] for n in ("started", "ended", "day", "device")] == ["start", "end", "today", "deviceid"]
    head = basics["head"]
    assert head["label"] == {"zh": "户主姓名", "en": "Head of household"}
    assert head["required"] is True and head["required_message"]["en"] == "Write the head's name"
    assert head["constraint"] == {"xpath": "string-length(.) <= 20"}
    assert head["constraint_message"] == {"zh": "At most 20 characters", "en": "At most 20 characters"}
    assert basics["at"]["type"] == "time" and basics["when"]["type"] == "datetime"
    assert basics["main_crop"]["choice_filter"] == {"xpath": "selected(${crops}, name)"}
    # the nested group is opened: its relevance joins its questions'
    assert basics["job"] == {"name": "job", "type": "textarea", "label": {"zh": "职业", "en": "Job"},
                             "relevant": {"xpath": "${age} >= 18"}}
    media = {f["name"]: f for f in sections[1]["fields"]}
    assert media["photo"]["type"] == "photo" and media["voice"]["type"] == "audio"
    assert media["double_income"]["compute"] == {"xpath": "${income} * 2"}
    assert (media["score"]["min"], media["score"]["max"], media["score"]["step"]) == (0, 10, 2)
    assert [c["name"] for c in media["town"]["choices"]] == ["t1", "t2"]
    assert media["town"]["choices_file"] == "towns.csv"
    assert [c["name"] for c in media["agree"]["choices"]] == ["yes", "no", "other"]
    assert media["agree_other"]["relevant"] == {"xpath": "selected(${agree}, 'other')"}
    assert media["fixed"]["default"] == "A1" and media["fixed"]["readonly"] is True
    people = {f["name"]: f for f in sections[2]["fields"]}
    member = people["member"]
    assert member["type"] == "repeat" and member["count"] == {"xpath": "${n}"}
    assert member["fields"][-1]["type"] == "repeat"
    assert any("appearance" in n["en"] or "parameters" in n["en"] for n in notes)


def test_imported_answers_are_validated_by_their_expressions():
    definition, _ = everything()
    answers = {"head": "张三", "age": 40, "income": 1000.5, "visit": "2024-05-01", "pv": "yes",
               "crops": ["rice", "tea"], "main_crop": "rice", "job": "农民", "ok": "OK", "score": 4,
               "town": "t2", "agree": "other", "agree_other": "看情况", "double_income": "999", "n": 2,
               "at": "09:30", "when": "2024-05-01T09:30:00+08:00", "started": "2024-05-06T08:00:00.000+08:00",
               "device": "collect:abc",
               "member": [{"mname": "甲", "myear": 1980, "job_rep": [{"employer": "村委"}]},
                          {"mname": "乙", "myear": 2015, "job_rep": [{"employer": "dropped"}]}]}
    clean, errors = validate_answers(definition, answers, today=TODAY)
    assert errors == []
    assert clean["double_income"] == "2001"            # recomputed: the phone's value is not trusted
    assert clean["total_years"] == "3995" and clean["first_name"] == "甲"
    assert [e["pos"] for e in clean["member"]] == ["1", "2"]
    assert clean["member"][1]["job_rep"] == [{}]       # not relevant (born 2015): dropped
    assert clean["started"] == answers["started"] and clean["device"] == "collect:abc"

    bad = dict(answers, head="名字" * 11, age=200, visit="2099-01-01", pv="no", n=3)
    clean, errors = validate_answers(definition, bad, today=TODAY)
    by_field = {e["field"]: e for e in errors}
    assert by_field["head"]["code"] == "constraint" and by_field["head"]["en"].endswith("At most 20 characters")
    assert by_field["age"]["code"] == "constraint" and by_field["visit"]["code"] == "constraint"
    assert by_field["member"]["code"] == "too_few"     # repeat_count: ${n} entries
    assert "crops" not in clean                        # relevant only when pv = yes

    clean, errors = validate_answers(definition, dict(answers, main_crop="corn"), today=TODAY)
    assert [(e["field"], e["code"]) for e in errors] == [("main_crop", "choice")]   # choice_filter
    assert "not among the choices offered here" in errors[0]["en"]

    clean, errors = validate_answers(definition, {"pv": "yes", "n": 0}, today=TODAY)
    assert {e["field"]: e["en"] for e in errors}["head"].endswith("Write the head's name")
    clean, errors = validate_answers(definition, dict(answers, ok="yes", at="25:00"), today=TODAY)
    assert {e["field"] for e in errors} == {"ok", "at"}


# ---------------------------------------------------------------------------------------------
# Bad workbooks: refused with where and why


def refused(data, attachments=None, filename="bad.xlsx"):
    with pytest.raises(xlsform.XLSFormError) as caught:
        xlsform.read_xlsform(data, filename, attachments)
    for e in caught.value.errors:
        assert set(e) == {"sheet", "row", "column", "zh", "en"} and e["zh"] and e["en"]
    return caught.value.errors


BASIC = [["type", "name", "label"], ["integer", "a", "A"], ["integer", "b", "B"]]


def test_a_workbook_without_a_survey_sheet():
    wb = Workbook()
    wb.active.title = "questions"
    out = io.BytesIO()
    wb.save(out)
    [e] = refused(out.getvalue())
    assert e["sheet"] == "survey" and "survey" in e["en"]


@pytest.mark.parametrize("rows,sheet,row_no,column,needle", [
    (BASIC + [["text", "a", "Again"]], "survey", 4, "name", "'a' is used twice (first on row 2)"),
    (BASIC + [["calculate", "c", "", "${zz} + 1"]], "survey", 4, "calculation", "unknown question ${zz}"),
    (BASIC + [["calculate", "c", "", "${d} + 1"], ["calculate", "d", "", "${c} * 2"]], "survey", 4,
     "calculation", "cycle: c → d → c"),
    (BASIC + [["calculate", "c", "", "${a} +* 2"]], "survey", 4, "calculation", "does not parse"),
    (BASIC + [["calculate", "c", "", "pulldata('x', 'y', 'z', ${a})"]], "survey", 4, "calculation",
     "unknown function pulldata()"),
    (BASIC + [["select_one nowhere", "c", "C"]], "survey", 4, "type", "'nowhere' is missing"),
    (BASIC + [["select_one_from_file nowhere.csv", "c", "C"]], "survey", 4, "type", "nowhere.csv is missing"),
    (BASIC + [["osm", "c", "C"]], "survey", 4, "type", "'osm' is not supported"),
    (BASIC + [["note", "c", "Hello ${zz}"]], "survey", 4, "label", "text refers to an unknown question ${zz}"),
    (BASIC + [["begin group", "g", "G"]], "survey", 4, "type", "no matching end group"),
    (BASIC + [["integer", "c", "C", "", "${a} > 1"]], "survey", 4, "relevant", None),
])
def test_bad_rows_are_refused_with_sheet_row_and_column(rows, sheet, row_no, column, needle):
    header = ["type", "name", "label", "calculation", "relevant"]
    rows = [header] + [r + [""] * (len(header) - len(r)) for r in rows[1:]]
    if needle is None:  # a reference to an earlier question is fine; only a later one is refused
        rows[-1][4] = "${later} > 1"
        rows.append(["integer", "later", "L", "", ""])
        errors = refused(workbook(rows))
        assert (errors[0]["sheet"], errors[0]["row"]) == ("survey", 4)
        assert "not a field before" in errors[0]["en"]
        return
    errors = refused(workbook(rows, [["list_name", "name", "label"], ["yn", "yes", "Yes"]]))
    e = errors[0]
    assert (e["sheet"], e["row"], e["column"]) == (sheet, row_no, column)
    assert needle in e["en"]


def test_a_50_mb_workbook_is_refused_before_it_is_read():
    [e] = refused(b"PK" + b"\0" * (50 << 20))
    assert "too large" in e["en"]


def test_100000_rows_are_refused():
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("survey")
    ws.append(["type", "name", "label"])
    for i in range(100000):
        ws.append([i])   # one small cell a row: the rows, not the bytes, are what is refused
    out = io.BytesIO()
    wb.save(out)
    [e] = refused(out.getvalue())
    assert e["sheet"] == "survey" and "too many rows" in e["en"]


def test_a_zip_bomb_inside_the_xlsx_is_refused_before_it_unpacks():
    base = workbook(BASIC)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/sharedStrings.xml" or info.filename.endswith("sheet1.xml"):
                data = data + b" " * (20 << 20)   # 20 MB of blanks in one part: some KB zipped
            dst.writestr(info, data)
    assert len(out.getvalue()) < 2 << 20
    [e] = refused(out.getvalue())
    assert "too large once unpacked" in e["en"]


def test_not_a_workbook_and_languages():
    [e] = refused(b"hello", filename="x.xlsx")
    assert "not a valid XLSX" in e["en"]
    survey = [["type", "name", "label::English", "label::中文", "label::Swahili (sw)"],
              ["text", "a", "Name", "姓名", "Jina"], ["text", "b", "", "", "Umri"]]
    definition, notes = xlsform.read_xlsform(workbook(survey), "langs.xlsx")
    assert definition["fields"][0]["label"] == {"zh": "姓名", "en": "Name"}
    assert definition["fields"][1]["label"] == {"zh": "Umri", "en": "Umri"}
    assert definition["id"] == "langs" and any("Swahili" in n["en"] for n in notes)


# ---------------------------------------------------------------------------------------------
# XLSForm out: the round trip and pyxform as the judge


def builtin_definitions():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "forms", "*.yaml"))):
        out.append(formdefs.load_definition_file(path))
    for path in sorted(glob.glob(os.path.join(ROOT, "forms", "history", "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
        out.append(formdefs.check_definition(data, path))
    return out


@pytest.mark.parametrize("definition", builtin_definitions(), ids=lambda d: f"{d['id']}.{d['version']}")
def test_every_built_in_form_round_trips_through_xlsform(definition):
    data = xlsform_write.write_xlsform(definition)
    back, _notes = xlsform.read_xlsform(data, "export.xlsx")
    assert back == definition


def test_an_imported_form_round_trips_too():
    definition, _ = everything()
    back, _notes = xlsform.read_xlsform(xlsform_write.write_xlsform(definition), "again.xlsx")
    definition["fields"][1]["fields"] = [f for f in definition["fields"][1]["fields"]]
    assert back == definition


@pytest.mark.parametrize("definition", builtin_definitions() + [everything()[0]],
                         ids=lambda d: f"{d['id']}.{d['version']}")
def test_pyxform_converts_every_exported_form(definition):
    pyxform = pytest.importorskip("pyxform.xls2xform")
    warnings = []
    result = pyxform.convert(xlsform=xlsform_write.write_xlsform(definition), file_type=".xlsx",
                             warnings=warnings)
    assert "<h:html" in result.xform and f'id="{definition["id"]}"' in result.xform


def test_an_edit_in_excel_wins_over_the_jiedui_column():
    definition = builtin_definitions()[0]
    data = xlsform_write.write_xlsform(definition)
    from openpyxl import load_workbook
    wb = load_workbook(io.BytesIO(data))
    ws = wb["survey"]
    header = [c.value for c in ws[1]]
    for cells in ws.iter_rows(min_row=2):
        if cells[header.index("relevant")].value:
            cells[header.index("relevant")].value = "${" + definition["fields"][0]["fields"][0]["name"] + "} != ''"
            name = cells[header.index("name")].value
            break
    out = io.BytesIO()
    wb.save(out)
    back, notes = xlsform.read_xlsform(out.getvalue(), "edited.xlsx")
    edited = [f for f in formdefs._walk(back["fields"]) if f["name"] == name][0]
    assert "xpath" in edited["relevant"] and any("edited in Excel" in n["en"] for n in notes)


# ---------------------------------------------------------------------------------------------
# Through the server: /admin/forms, the API and the command


def flask_cli(data_dir, *args):
    env = dict(os.environ, JIEDUI_DATA_DIR=str(data_dir))
    return subprocess.run([sys.executable, "-m", "flask", "--app", "server", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def form_post(api, path, data, **kw):
    return api.client.post(path, data=dict(data, csrf_token=api.token), **kw)


def upload(api, path, data, name="county.xlsx", attachments=()):
    files = {"file": (io.BytesIO(data), name)}
    if attachments:
        files["attachments"] = [(io.BytesIO(content), file_name) for file_name, content in attachments]
    return form_post(api, path, files, content_type="multipart/form-data")


def test_an_xlsform_is_previewed_published_served_and_validated(app):
    admin, cadre = Api(app.test_client()), Api(app.test_client())
    admin.login("admin")
    cadre.login("cadre1")
    data = workbook(EVERYTHING, CHOICES, SETTINGS)
    r = upload(admin, "/admin/forms/check", data)          # the CSV is missing: refused, with the row
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "towns.csv" in page and "row 29" in page
    r = upload(admin, "/admin/forms/check", data, attachments=[("towns.csv", TOWNS)])
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "检查通过" in page and "户主姓名" in page and "phone-frame" in page
    assert "county_survey" not in {f["id"] for f in cadre.get("/api/v1/bootstrap").get_json()["forms"]}
    r = upload(admin, "/admin/forms/publish", data, attachments=[("towns.csv", TOWNS)])
    assert r.status_code == 302
    served = {f["id"]: f["version"] for f in cadre.get("/api/v1/bootstrap").get_json()["forms"]}
    assert served["county_survey"] == 3
    definition = cadre.get("/api/v1/forms/county_survey").get_json()
    assert definition["fields"][0]["fields"][4]["constraint"] == {"xpath": "string-length(.) <= 20"}
    item = {"uuid": "0b7d6a8e-5f3c-4a8e-9d7e-2f1c3b4a5d6e", "form": "county_survey", "form_version": 3,
            "household_id": "v1-0001", "created_at": "2026-05-01T10:00:00+08:00",
            "answers": {"head": "张三", "pv": "no", "n": 1, "member": [{"mname": "甲", "job_rep": []}],
                        "double_income": "x", "income": 10}}
    r = cadre.post("/api/v1/submissions", {"submissions": [item]})
    assert r.get_json()["results"][0]["status"] == "created", r.get_json()
    bad = dict(item, uuid="1b7d6a8e-5f3c-4a8e-9d7e-2f1c3b4a5d6e", answers=dict(item["answers"], age=200))
    result = cadre.post("/api/v1/submissions", {"submissions": [bad]}).get_json()["results"][0]
    assert result["status"] == "rejected" and result["errors"][0]["field"] == "age"
    # the same workbook again: that version is published already, nothing changes
    r = upload(admin, "/admin/forms/check", data, attachments=[("towns.csv", TOWNS)])
    assert r.status_code == 400 and "already published" in r.get_data(as_text=True)
    # each version downloads as XLSForm from the list
    page = admin.get("/admin/forms").get_data(as_text=True)
    assert "/api/v1/forms/county_survey/3.xlsx" in page and "/api/v1/forms/pv_enrollment/2.xlsx" in page


def test_a_refused_workbook_shows_where_and_publishes_nothing(app):
    admin = Api(app.test_client())
    admin.login("admin")
    rows = [["type", "name", "label", "calculation"], ["integer", "a", "A", ""],
            ["calculate", "c", "", "${nope} + 1"]]
    r = upload(admin, "/admin/forms/publish", workbook(rows, settings={"form_id": "broken", "version": "1"}),
               name="broken.xlsx")
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "survey row 3 calculation" in page and "${nope}" in page
    assert "broken" not in [f["id"] for f in admin.get("/api/v1/bootstrap").get_json()["forms"]]


def test_get_a_form_version_as_xlsform(app):
    api = Api(app.test_client())
    assert api.client.get("/api/v1/forms/pv_enrollment/2.xlsx").status_code == 401
    api.login("cadre1")
    r = api.client.get("/api/v1/forms/pv_enrollment/2.xlsx")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "pv_enrollment-v2.xlsx" in r.headers["Content-Disposition"]
    back, _ = xlsform.read_xlsform(r.data, "pv.xlsx")
    assert back == api.get("/api/v1/forms/pv_enrollment?version=2").get_json()
    assert api.client.get("/api/v1/forms/pv_enrollment/1.xlsx").status_code == 200
    assert api.client.get("/api/v1/forms/pv_enrollment/99.xlsx").status_code == 404
    assert api.client.get("/api/v1/forms/nothing/1.xlsx").status_code == 404
    assert api.client.get("/api/v1/forms/pv_enrollment/x.xlsx").status_code == 400


def test_the_form_import_command(app, tmp_path):
    runner = app.test_cli_runner()
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "county.xlsx").write_bytes(workbook(EVERYTHING, CHOICES, SETTINGS))
    (folder / "towns.csv").write_bytes(TOWNS)
    r = runner.invoke(args=["form", "import", str(folder / "county.xlsx")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert (doc["id"], doc["version"], doc["published"]) == ("county_survey", 3, False)
    # --publish writes, so it takes the data folder as any writing command does (no server running)
    data_dir = tmp_path / "cli-data"
    r = flask_cli(data_dir, "form", "import", str(folder / "county.xlsx"), "--publish")
    assert r.returncode == 0 and json.loads(r.stdout)["published"] is True, r.stdout + r.stderr
    assert (data_dir / "files" / "forms-published" / "county_survey.yaml").exists() or \
        list(data_dir.rglob("forms-published/county_survey.yaml"))
    r = flask_cli(data_dir, "form", "import", str(folder / "county.xlsx"), "--publish")
    assert r.returncode == 1 and json.loads(r.stdout)["errors"][0]["column"] == "version"
    (folder / "towns.csv").unlink()
    (folder / "bad.xlsx").write_bytes(workbook(EVERYTHING, CHOICES[:2], SETTINGS))
    r = runner.invoke(args=["form", "import", str(folder / "bad.xlsx")])
    assert r.exit_code == 1
    errors = json.loads(r.output)["errors"]
    assert {(e["sheet"], e["row"], e["column"]) for e in errors} == {("survey", 14, "type"), ("survey", 15, "type"), ("survey", 29, "type")}
    assert all(set(e) == {"sheet", "row", "column", "zh", "en"} for e in errors)


def test_an_imported_form_s_submission_is_read_on_the_review_page_and_in_exports(app):
    admin, cadre = Api(app.test_client()), Api(app.test_client())
    admin.login("admin")
    cadre.login("cadre1")
    r = upload(admin, "/admin/forms/publish", workbook(EVERYTHING, CHOICES, SETTINGS),
               attachments=[("towns.csv", TOWNS)])
    assert r.status_code == 302
    uuid = "2b7d6a8e-5f3c-4a8e-9d7e-2f1c3b4a5d6e"
    answers = {"head": "张三", "age": 40, "pv": "yes", "crops": ["rice", "tea"], "main_crop": "rice",
               "at": "09:30", "when": "2024-05-01T09:30:00+08:00", "score": 4, "town": "t2", "agree": "other",
               "agree_other": "看情况", "where": {"lat": 28.1, "lon": 112.9, "accuracy": 5}, "ok": "OK",
               "income": 10, "n": 2, "started": "2026-05-01T09:00:00.000+08:00",
               "member": [{"mname": "甲", "myear": 1980, "job_rep": [{"employer": "村委"}, {"employer": "合作社"}]},
                          {"mname": "乙", "myear": 2015, "job_rep": []}]}
    item = {"uuid": uuid, "form": "county_survey", "form_version": 3, "household_id": "v1-0001",
            "created_at": "2026-05-01T10:00:00+08:00", "answers": answers}
    result = cadre.post("/api/v1/submissions", {"submissions": [item]}).get_json()["results"][0]
    assert result["status"] == "created", result
    page = admin.client.get(f"/review/{uuid}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "张三" in text and "村委" in text and "东山乡" in text
    for path in ("/exports/submissions.xlsx?form=county_survey", "/exports/submissions.zip?form=county_survey"):
        r = admin.client.get(path)
        assert r.status_code == 200, (path, r.get_data(as_text=True)[:300])
    from openpyxl import load_workbook
    book = load_workbook(io.BytesIO(admin.client.get("/exports/submissions.xlsx?form=county_survey").data))
    cells = {str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value}
    assert "张三" in cells and "东山乡" in cells
    nested = [[c.value for c in r] for r in book["member.job_rep"].iter_rows()]
    assert nested[2:] == [[uuid, "v1-0001", "1.1", "村委"], [uuid, "v1-0001", "1.2", "合作社"]]
    assert admin.client.get("/households/v1-0001").status_code == 200
    pdf = admin.client.get("/households/v1-0001/profile.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    from pypdf import PdfReader
    text = "".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf.data)).pages).replace(" ", "")
    assert "张三" in text and "东山乡" in text and "工作村委、合作社" in text


def test_select_one_external_takes_its_choices_from_the_external_choices_sheet():
    wb = Workbook()
    ws = wb.active
    ws.title = "survey"
    for r in [["type", "name", "label", "choice_filter"], ["select_one provinces", "province", "Province", None],
              ["select_one_external towns", "town", "Town", "province=${province}"]]:
        ws.append(r)
    cs = wb.create_sheet("choices")
    for r in [["list_name", "name", "label"], ["provinces", "hn", "Hunan"], ["provinces", "gz", "Guizhou"]]:
        cs.append(r)
    es = wb.create_sheet("external_choices")
    for r in [["list_name", "name", "label", "province"], ["towns", "cg", "Chengguan", "hn"],
              ["towns", "ds", "Dongshan", "gz"]]:
        es.append(r)
    out = io.BytesIO()
    wb.save(out)
    definition, _ = xlsform.read_xlsform(out.getvalue(), "ext.xlsx")
    town = definition["fields"][1]
    assert town["type"] == "select_one" and [c["data"] for c in town["choices"]] == [{"province": "hn"},
                                                                                     {"province": "gz"}]
    assert validate_answers(definition, {"province": "hn", "town": "cg"}, today=TODAY)[1] == []
    assert validate_answers(definition, {"province": "hn", "town": "ds"}, today=TODAY)[1][0]["code"] == "choice"


def test_a_built_in_form_comes_back_from_excel_without_notes():
    for definition in builtin_definitions():
        _back, notes = xlsform.read_xlsform(xlsform_write.write_xlsform(definition), "export.xlsx")
        assert notes == [], definition["id"]
