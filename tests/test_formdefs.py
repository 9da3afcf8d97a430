"""Form definitions: the shipped forms, start-up checks, the version archive, and the server-side
validation of every answer type."""

import json
import pathlib
import random
import shutil

import pytest

from server.forms import effects, formdefs
from server.forms.formdefs import FormDefinitionError, FormRegistry, validate_answers
from tests.helpers import ALL_TYPES, TODAY

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORMS = ROOT / "forms"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return FormRegistry.load(FORMS, tmp_path_factory.mktemp("archive"))


@pytest.fixture
def visit(registry):
    return registry.get("household_visit")


@pytest.fixture
def pv(registry):
    return registry.get("pv_enrollment")


def codes(errors):
    return {(e["field"], e["code"]) for e in errors}


def good_visit():
    """A complete home visit, as a cadre would send it."""
    return {
        "visit_date": "2024-06-14", "visit_type": "home", "present": "户主本人、配偶",
        "topics": ["income_jobs", "health_insurance", "pv"],
        "family_changes": ["birth"],
        "members": [
            {"name": "张建国", "relation": "户主", "sex": "male", "birth_year": 1968,
             "health": "健康", "schooling": "初中", "work": "务农"},
            {"name": "张小花", "relation": "孙女", "sex": "female", "birth_year": 2024},
        ],
        "income_wages": 18000, "income_farming": 3200.5, "income_pv": 1500,
        "income_total": 1,  # stale: the server recomputes it
        "needs": ["sales", "medical"], "needs_detail": "红薯卖不出去；老人慢性病需要办卡",
        "help_given": [{"product": "红薯", "quantity": 200, "unit": "斤", "price": 1.5}],
        "followups": [{"action": "联系镇卫生院办理慢病卡", "due_date": "2024-06-30"}],
        "risk": "no",
        "photo_1": "IMG_0001.jpg",
        "location": {"lat": 27.8, "lon": 109.6, "accuracy": 12.5},
        "signature": "signature-1.png",
        "notes": "<script>alert(1)</script> 备注原样保存",
    }


def good_pv():
    return {"interested": "yes", "consent": "yes", "roof_type": "flat_concrete",
            "roof_area_m2": 60, "orientation": "south", "shading": "none", "structure_ok": "yes",
            "capacity_kw": 9, "funding_mode": "subsidised", "lecture_attended": "yes",
            "lecture_date": "2024-05-20", "grid_stage": "applied", "roof_photo_1": "roof1.jpg",
            "location": {"lat": 27.8, "lon": 109.6, "accuracy": 5}, "signature": "sig.png"}


# ---------------------------------------------------------------------------------------------
# The shipped forms


def test_shipped_forms_load_with_the_fixed_field_names(registry):
    assert [f["id"] for f in registry.current()] == ["household_visit", "land_ledger", "pv_enrollment"]
    visit = registry.get("household_visit")
    assert visit["version"] == 3 and registry.versions("household_visit") == [1, 2, 3]
    assert all(f["type"] == "group" for f in visit["fields"])  # sections, in conversation order
    assert [f["name"] for f in visit["fields"]] == [
        "section_visit", "section_family", "section_income", "section_needs", "section_help",
        "section_promises", "section_record"]
    names = [f["name"] for f in formdefs.answer_fields(visit)]
    assert names == ["visit_date", "visit_type", "present", "topics", "family_changes", "members",
                     "income_wages", "income_farming", "income_livestock", "income_pv",
                     "income_transfers", "income_total", "needs", "needs_detail", "risk",
                     "risk_reason", "help_given", "promises", "followups", "photo_1", "photo_2",
                     "photo_3", "location", "signature", "notes"]
    by_name = {f["name"]: f for f in formdefs.answer_fields(visit)}
    choice_names = lambda f: [c["name"] for c in by_name[f]["choices"]]  # noqa: E731
    assert choice_names("visit_type") == ["home", "phone", "group"]
    assert choice_names("topics") == ["income_jobs", "health_insurance", "schooling", "housing_safety",
                                      "drinking_water", "industry", "land_ledger", "sales_help", "pv"]
    assert choice_names("family_changes") == ["birth", "death", "marriage_out", "illness",
                                              "migrant_work", "none"]
    assert choice_names("risk") == ["yes", "no"]
    assert [c["name"] for c in by_name["members"]["fields"]] == [
        "name", "relation", "sex", "birth_year", "health", "schooling", "work"]
    assert [c["name"] for c in by_name["help_given"]["fields"]] == ["product", "quantity", "unit", "price",
                                                                    "channel"]
    channel = by_name["help_given"]["fields"][-1]
    assert channel["type"] == "select_one" and not channel.get("required")
    assert [c["name"] for c in channel["choices"]] == ["canteen", "staff", "online", "market", "other"]
    old = {f["name"]: f for f in formdefs.answer_fields(registry.get("household_visit", 2))}
    assert [c["name"] for c in old["help_given"]["fields"]] == ["product", "quantity", "unit", "price"]
    assert [c["name"] for c in by_name["followups"]["fields"]] == ["action", "due_date"]
    assert by_name["promises"]["prefill"] == "open_followups"
    assert [c["name"] for c in by_name["promises"]["fields"]] == ["followup_id", "status", "note"]
    assert set(visit["effects"]) == {"visit_date", "members", "followups", "followup_answers", "help_value"}

    pv = registry.get("pv_enrollment")
    by_name = {f["name"]: f for f in formdefs.answer_fields(pv)}
    assert list(by_name) == ["interested", "consent", "roof_type", "roof_area_m2", "orientation",
                             "shading", "structure_ok", "roof_photo_1", "roof_photo_2", "capacity_kw",
                             "expected_kwh_year", "funding_mode", "grid_stage", "lecture_attended",
                             "lecture_date", "location", "signature", "notes"]
    assert choice_names("funding_mode") == ["self_funded", "subsidised", "village_collective", "roof_rental"]
    assert choice_names("grid_stage") == ["none", "applied", "approved", "installed", "connected"]
    assert pv["settings"] == {"pv_yield_kwh_per_kw": 1100}


def test_every_field_and_choice_is_bilingual_with_a_hint(registry):
    for form in registry.current():
        definition = registry.get(form["id"])
        assert definition["title"]["zh"] and definition["title"]["en"]
        stack = list(definition["fields"])
        while stack:
            field = stack.pop()
            assert field["label"]["zh"] and field["label"]["en"], field["name"]
            assert field["hint"]["zh"] and field["hint"]["en"], field["name"]
            for choice in field.get("choices", []):
                assert choice["label"]["zh"] and choice["label"]["en"]
            stack.extend(field.get("fields", []))


def test_a_complete_visit_is_accepted_and_cleaned(visit):
    clean, errors = validate_answers(visit, good_visit(), today=TODAY)
    assert errors == []
    assert clean["income_total"] == 22700.5
    assert clean["notes"] == "<script>alert(1)</script> 备注原样保存"   # stored as text
    assert clean["members"][1] == {"name": "张小花", "relation": "孙女", "sex": "female",
                                   "birth_year": 2024}
    assert "risk_reason" not in clean


def test_a_complete_pv_enrollment_is_accepted_and_computed(pv):
    answers = good_pv()
    answers["expected_kwh_year"] = 5   # whatever the phone computed, the server recomputes
    clean, errors = validate_answers(pv, answers, today=TODAY)
    assert errors == []
    assert clean["expected_kwh_year"] == 9900
    clean, errors = validate_answers(pv, answers, today=TODAY, settings={"pv_yield_kwh_per_kw": 1250})
    assert errors == [] and clean["expected_kwh_year"] == 11250


def test_server_validation_computes_and_is_stable(visit, pv):
    """Computed values are the server's (the shared vectors hold the phone to the same rules), and
    stored answers validate to themselves."""
    for definition, answers in ((visit, good_visit()), (pv, good_pv())):
        clean, errors = validate_answers(definition, answers, today=TODAY)
        assert errors == []
        assert validate_answers(definition, clean, today=TODAY) == (clean, [])
    clean, _ = validate_answers(visit, good_visit(), today=TODAY)
    assert clean["income_total"] == 18000 + 3200.5 + 1500
    clean, _ = validate_answers(pv, good_pv(), today=TODAY)
    assert clean["expected_kwh_year"] == 9 * 1100


# ---------------------------------------------------------------------------------------------
# Start-up checks: a broken file stops start-up, naming the file and the field

MINIMAL = """\
id: sample
version: 1
title: {zh: 样例, en: Sample}
subject: household
fields:
  - name: answer
    type: select_one
    label: {zh: 回答, en: Answer}
    choices:
      - {name: "yes", label: {zh: 是, en: "Yes"}}
      - {name: "no", label: {zh: 否, en: "No"}}
  - name: amount
    type: decimal
    label: {zh: 数额, en: Amount}
    min: 0
"""


def write_form(folder, text, name="sample.yaml"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


BROKEN = [
    ("yaml syntax", MINIMAL + "  - name: [unclosed\n", None, "line"),
    ("bare yes becomes a boolean", MINIMAL.replace('{name: "yes"', "{name: yes"), "answer", "quote yes/no"),
    ("unknown type", MINIMAL.replace("type: decimal", "type: money"), "amount", "type must be one of"),
    ("missing English label", MINIMAL.replace("{zh: 数额, en: Amount}", "{zh: 数额}"), "amount", "label"),
    ("misspelt key", MINIMAL.replace("    min: 0", "    requried: true"), "amount", "unknown keys: requried"),
    ("duplicate name", MINIMAL.replace("name: amount", "name: answer"), "answer", "used twice"),
    ("relevant refers to a later field",
     MINIMAL.replace("    type: select_one", "    type: select_one\n    relevant: {field: amount, op: answered}"),
     "answer", "not a field before"),
    ("relevant refers to an unknown field",
     MINIMAL + "    relevant: {field: nothing, op: answered}\n", "amount", "'nothing'"),
    ("malformed constraint", MINIMAL + "    constraint: {field: \".\", op: bigger, value: 1}\n",
     "amount", "constraint.op"),
    ("constraint refers to an unknown field", MINIMAL + "    constraint: {field: \".\", op: gt, value: {field: zz}}\n",
     "amount", "unknown field 'zz'"),
    ("compute from a select field", MINIMAL + "  - {name: total, type: decimal, label: {zh: 合计, en: Total}, "
     "compute: {sum: [answer]}}\n", "total", "not a number field"),
    ("compute with an undeclared setting", MINIMAL + "  - {name: total, type: decimal, label: {zh: 合计, en: Total}, "
     "compute: {mul: [amount, {setting: yield}]}}\n", "total", "not declared"),
    ("compute on a text field", MINIMAL + "  - {name: total, type: text, label: {zh: 合计, en: Total}, "
     "compute: {sum: [amount]}}\n", "total", "only for integer and decimal"),
    ("unquoted date bound", MINIMAL + "  - {name: day, type: date, label: {zh: 日, en: Day}, min: 2014-01-01}\n",
     "day", "quoted ISO date"),
    ("min above max", MINIMAL.replace("    min: 0", "    min: 5\n    max: 1"), "amount", "min is larger than max"),
    ("select without choices", MINIMAL + "  - {name: pick, type: select_one, label: {zh: 选, en: Pick}}\n",
     "pick", "choices must be"),
    ("choices on a number", MINIMAL.replace("    min: 0", "    choices: [{name: a, label: {zh: 甲, en: A}}]"),
     "amount", "choices are only"),
    ("repeats nested too deeply", MINIMAL + """\
  - name: outer
    type: repeat
    label: {zh: 外, en: Outer}
    fields:
      - name: inner
        type: repeat
        label: {zh: 内, en: Inner}
        fields:
          - name: third
            type: repeat
            label: {zh: 三, en: Third}
            fields:
              - name: fourth
                type: repeat
                label: {zh: 四, en: Fourth}
                fields: [{name: x, type: text, label: {zh: 甲, en: X}}]
""", "outer.inner.third.fourth", "nested at most 3 deep"),
    ("repeat without fields", MINIMAL + "  - {name: rows, type: repeat, label: {zh: 行, en: Rows}}\n",
     "rows", "fields must be"),
    ("id differs from the file name", MINIMAL.replace("id: sample", "id: other"), "id", "file name"),
    ("version is not a number", MINIMAL.replace("version: 1", "version: one"), "version", "version"),
    ("version is zero", MINIMAL.replace("version: 1", "version: 0"), "version", ">= 1"),
    ("unknown subject", MINIMAL.replace("subject: household", "subject: village"), "subject", "subject"),
    ("the old updates key", MINIMAL + "updates: [pv_status]\n", None, "unknown top-level keys"),
    ("an unknown effect", MINIMAL + "effects: {plots: amount}\n", "effects", "effects may hold only"),
    ("an effect names no question", MINIMAL + "effects: {visit_date: when}\n", "effects.visit_date",
     "not a question"),
    ("an effect on the wrong type", MINIMAL + "effects: {visit_date: amount}\n", "effects.visit_date",
     "must be a date"),
    ("a case sets what households lack", MINIMAL + "effects: {household: [{set: {plots: 1}}]}\n",
     "effects.household#1", "set may change only"),
    ("promise answers without prefill", MINIMAL + """\
  - name: promises
    type: repeat
    label: {zh: 承诺, en: Promises}
    fields:
      - {name: fid, type: text, label: {zh: 号, en: Id}}
      - name: status
        type: select_one
        label: {zh: 状态, en: Status}
        choices: [{name: done, label: {zh: 办结, en: Done}}]
effects: {followup_answers: {repeat: promises, id: fid, status: status}}
""", "effects.followup_answers", "prefill"),
    ("a profile shows an unknown field", MINIMAL + "profile: {fields: [nope]}\n", "profile.fields",
     "not a question"),
    ("sections and loose questions mixed", MINIMAL + """\
  - name: part
    type: group
    label: {zh: 部分, en: Part}
    fields: [{name: x, type: text, label: {zh: 甲, en: X}}]
""", None, "every top-level question must be inside one"),
    ("a section inside a repeat", MINIMAL + """\
  - name: rows
    type: repeat
    label: {zh: 行, en: Rows}
    fields:
      - name: part
        type: group
        label: {zh: 部分, en: Part}
        fields: [{name: x, type: text, label: {zh: 甲, en: X}}]
""", "rows.part", "only stand at the top level"),
    ("not a mapping", "- just\n- a list\n", None, "mapping"),
]


@pytest.mark.parametrize("name,text,field,needle", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_definition_stops_start_up_naming_file_and_field(tmp_path, name, text, field, needle):
    write_form(tmp_path / "forms", text)
    with pytest.raises(FormDefinitionError) as caught:
        FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    message = str(caught.value)
    assert "sample.yaml" in message
    assert needle in message
    if field:
        assert f"field {field}" in message
        assert caught.value.field == field
    assert not (tmp_path / "archive" / "sample").exists()   # nothing archived from a failed start


def test_one_broken_file_among_good_ones_stops_start_up_and_archives_nothing(tmp_path):
    shutil.copytree(FORMS, tmp_path / "forms")
    write_form(tmp_path / "forms", MINIMAL.replace("type: decimal", "type: money"))
    with pytest.raises(FormDefinitionError, match="sample.yaml"):
        FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    assert not (tmp_path / "archive").exists() or not any((tmp_path / "archive").iterdir())


def test_empty_or_missing_forms_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormDefinitionError, match="no form definitions"):
        FormRegistry.load(tmp_path / "empty", tmp_path / "archive")
    with pytest.raises(FormDefinitionError, match="does not exist"):
        FormRegistry.load(tmp_path / "missing", tmp_path / "archive")


def test_two_files_with_one_id_are_an_error(tmp_path):
    write_form(tmp_path / "forms", MINIMAL)
    write_form(tmp_path / "forms", MINIMAL, name="sample.yml")
    with pytest.raises(FormDefinitionError, match="also used by"):
        FormRegistry.load(tmp_path / "forms", tmp_path / "archive")


# ---------------------------------------------------------------------------------------------
# Versions and the archive


def test_each_version_is_archived_with_its_sha256(tmp_path):
    write_form(tmp_path / "forms", MINIMAL)
    registry = FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    record = json.loads((tmp_path / "archive" / "sample" / "1.json").read_text(encoding="utf-8"))
    assert record["id"] == "sample" and record["version"] == 1
    assert record["definition"] == registry.get("sample")
    assert record["sha256"] == registry.sha256("sample") == registry.current()[0]["sha256"]
    assert record["source"] == "sample.yaml"


def test_comments_and_layout_do_not_count_as_a_change(tmp_path):
    path = write_form(tmp_path / "forms", MINIMAL)
    first = FormRegistry.load(tmp_path / "forms", tmp_path / "archive").sha256("sample")
    path.write_text("# a comment\n" + MINIMAL.replace("min: 0", "min:   0   # never negative"),
                    encoding="utf-8")
    assert FormRegistry.load(tmp_path / "forms", tmp_path / "archive").sha256("sample") == first


def test_a_changed_definition_without_a_new_version_stops_start_up(tmp_path):
    path = write_form(tmp_path / "forms", MINIMAL)
    FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    path.write_text(MINIMAL.replace("min: 0", "min: 1"), encoding="utf-8")
    with pytest.raises(FormDefinitionError) as caught:
        FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    message = str(caught.value)
    assert "sample.yaml" in message and "field version" in message
    assert "give it version 2" in message


def test_a_new_version_is_current_and_the_old_one_still_validates(tmp_path):
    path = write_form(tmp_path / "forms", MINIMAL)
    FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    path.write_text(MINIMAL.replace("version: 1", "version: 2").replace("min: 0", "min: 10")
                    + "  - {name: extra, type: text, label: {zh: 新, en: New}, required: true}\n",
                    encoding="utf-8")
    registry = FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    assert registry.current()[0]["version"] == 2
    assert registry.versions("sample") == [1, 2]
    assert registry.sha256("sample", 1) != registry.sha256("sample", 2)
    old = registry.get("sample", 1)
    # A submission made with version 1 is judged by version 1's rules ...
    assert validate_answers(old, {"answer": "yes", "amount": 5}) == ({"answer": "yes", "amount": 5}, [])
    # ... and the same answers fail version 2's.
    _, errors = validate_answers(registry.get("sample"), {"answer": "yes", "amount": 5})
    assert codes(errors) == {("amount", "min"), ("extra", "required")}
    # The old version survives the file's later history, even the form file disappearing.
    path.unlink()
    write_form(tmp_path / "forms", MINIMAL.replace("id: sample", "id: other"), name="other.yaml")
    registry = FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    assert registry.get("sample") is None
    assert registry.get("sample", 1) == old and registry.get("sample", 2) is not None


def test_a_version_below_an_archived_one_is_refused_unless_it_is_the_same(tmp_path):
    path = write_form(tmp_path / "forms", MINIMAL.replace("version: 1", "version: 3"))
    FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    path.write_text(MINIMAL.replace("version: 1", "version: 2"), encoding="utf-8")
    with pytest.raises(FormDefinitionError, match="version 3 is already archived"):
        FormRegistry.load(tmp_path / "forms", tmp_path / "archive")


def test_a_damaged_archive_names_the_archived_file(tmp_path):
    write_form(tmp_path / "forms", MINIMAL)
    FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    archived = tmp_path / "archive" / "sample" / "1.json"
    record = json.loads(archived.read_text(encoding="utf-8"))
    record["definition"]["title"]["en"] = "Tampered"
    archived.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(FormDefinitionError, match=r"1\.json.*sha256"):
        FormRegistry.load(tmp_path / "forms", tmp_path / "archive")
    archived.write_text("{not json", encoding="utf-8")
    with pytest.raises(FormDefinitionError, match=r"1\.json.*unreadable"):
        FormRegistry.load(tmp_path / "forms", tmp_path / "archive")


def test_server_settings_reach_the_served_definition_not_the_archive(tmp_path):
    registry = FormRegistry.load(FORMS, tmp_path / "archive", settings={"pv_yield_kwh_per_kw": 1300,
                                                                       "unrelated": "x"})
    served = registry.get("pv_enrollment")
    assert served["settings"] == {"pv_yield_kwh_per_kw": 1300}
    plain = FormRegistry.load(FORMS, tmp_path / "archive")
    assert plain.sha256("pv_enrollment") != registry.sha256("pv_enrollment")   # phones refetch
    assert plain.sha256("household_visit") == registry.sha256("household_visit")
    clean, errors = validate_answers(served, good_pv(), today=TODAY)
    assert errors == [] and clean["expected_kwh_year"] == 11700


def test_lookups_of_unknown_forms_answer_none_and_share_definitions(registry):
    assert registry.get("nope") is None
    assert registry.get("pv_enrollment", 99) is None
    assert registry.get("pv_enrollment", "1") is None
    assert registry.get("pv_enrollment", True) is None
    assert registry.get(["pv_enrollment"]) is None
    assert registry.sha256("nope") is None
    # definitions are shared, not copied per lookup (a copy per item cost a third of a push)
    assert registry.get("pv_enrollment") is registry.get("pv_enrollment")


# ---------------------------------------------------------------------------------------------
# Validating answers, type by type

GOOD_BAD = {
    "t": (["short", "<b>x</b>", "中文十个字以内的话"], [(5, "type"), (True, "type"), ("x" * 11, "max"),
                                                  ("a\x00b", "bad_text"), ("a\x07", "bad_text"),
                                                  ("\ud800", "bad_text"), (["x"], "type")]),
    "ta": (["line 1\nline 2\r\n\ttabbed", "字" * 5000], [("字" * 5001, "max"), ({"a": 1}, "type")]),
    "i": ([0, 100, 7.0], [(7.5, "type"), (True, "type"), ("7", "type"), (-1, "min"), (101, "max"),
                          (1e16, "type")]),
    "d": ([-1.5, 0, 2.5, 1], [(False, "type"), ("1.5", "type"), (-1.6, "min"), (2.51, "max"),
                              ([1], "type")]),
    "day": (["2020-01-01", TODAY, "2024-02-29"], [("2024-02-30", "type"), ("2024/01/01", "type"),
                                                  ("20240101", "type"), ("2024-1-1", "type"),
                                                  (20240101, "type"), ("2019-12-31", "min"),
                                                  ("2024-06-16", "constraint")]),
    "one": (["a", "b"], [("c", "choice"), ("A", "choice"), (1, "choice"), (True, "choice"), (["a"], "choice")]),
    "many": ([["a"], ["b", "a"]], [("a", "type"), (["a", "c"], "choice"), (["a", "a"], "duplicate"),
                                   ([1], "choice"), ({"a": True}, "type")]),
    "gps": ([{"lat": 27.8, "lon": 109.6, "accuracy": 10}, {"lat": -90, "lon": 180}, {"lat": 0, "lon": 0, "accuracy": 0}],
            [({"lat": 27.8}, "type"), ({"lat": 91, "lon": 0}, "range"), ({"lat": 0, "lon": -181}, "range"),
             ({"lat": 1, "lon": 2, "alt": 3}, "type"), ({"lat": 1, "lon": 2, "accuracy": -1}, "type"),
             ({"lat": True, "lon": 2}, "type"), ({"lat": "27.8", "lon": "109.6"}, "type"), ([27.8, 109.6], "type")]),
    "pic": (["IMG_0001.jpg", "a", "photo-1.2.png"], [("../etc/passwd", "bad_name"), ("a/b.jpg", "bad_name"),
                                                    (".hidden", "bad_name"), ("x..jpg", "bad_name"),
                                                    ("a" * 101, "bad_name"), ("名字.jpg", "bad_name"),
                                                    ("a b.jpg", "bad_name"), ("C:\\x.jpg", "bad_name"),
                                                    (7, "bad_name")]),
    "sig": (["sig.png"], [("..", "bad_name"), ("/abs.png", "bad_name")]),
}
BASE = {"rows": [{"item": "x"}]}


@pytest.mark.parametrize("field", sorted(GOOD_BAD))
def test_good_values_are_accepted_as_they_are(field):
    for value in GOOD_BAD[field][0]:
        clean, errors = validate_answers(ALL_TYPES, {**BASE, field: value}, today=TODAY)
        assert errors == [], (field, value)
        assert clean[field] == value and type(clean[field]) is not bool


@pytest.mark.parametrize("field", sorted(GOOD_BAD))
def test_bad_values_are_refused_with_a_bilingual_message(field):
    for value, code in GOOD_BAD[field][1]:
        clean, errors = validate_answers(ALL_TYPES, {**BASE, field: value}, today=TODAY)
        assert [(e["field"], e["code"]) for e in errors] == [(field, code)], (field, value)
        label = next(f["label"] for f in ALL_TYPES["fields"] if f["name"] == field)
        assert label["zh"] in errors[0]["zh"] and label["en"] in errors[0]["en"]
        assert field not in clean


def test_integer_given_as_whole_float_is_stored_as_int():
    clean, errors = validate_answers(ALL_TYPES, {**BASE, "i": 7.0}, today=TODAY)
    assert errors == [] and clean["i"] == 7 and isinstance(clean["i"], int)


def test_unanswered_values_are_left_out():
    clean, errors = validate_answers(ALL_TYPES, {**BASE, "t": "", "ta": " \u3000 ", "i": None, "many": [],
                                                 "gps": {}, "info": ""}, today=TODAY)
    assert errors == []
    assert clean == {"rows": [{"item": "x"}]}


def test_a_note_takes_no_answer():
    _, errors = validate_answers(ALL_TYPES, {**BASE, "info": "something"}, today=TODAY)
    assert codes(errors) == {("info", "not_answerable")}


def test_unknown_fields_are_refused_at_every_level():
    answers = {**BASE, "nope": 1, "rows": [{"item": "x", "colour": "red"}]}
    _, errors = validate_answers(ALL_TYPES, answers, today=TODAY)
    assert codes(errors) == {("nope", "unknown_field"), ("rows.0.colour", "unknown_field")}
    assert all(e["zh"] and e["en"] for e in errors)
    weird = "x" * 500 + "\ud800\x00"
    _, errors = validate_answers(ALL_TYPES, {**BASE, weird: 1}, today=TODAY)
    assert len(errors) == 1 and len(errors[0]["field"]) <= 100
    json.dumps(errors).encode("utf-8")   # safe to send back


@pytest.mark.parametrize("answers", [None, [], "text", 5, True, [{"t": "x"}]])
def test_answers_that_are_not_an_object_are_one_clear_error(answers):
    clean, errors = validate_answers(ALL_TYPES, answers, today=TODAY)
    assert clean == {}
    assert errors[0]["field"] == "" and errors[0]["code"] == "not_object"


def test_repeat_counts_entries_and_nested_errors():
    cases = [
        ({}, {("rows", "too_few")}),
        ({"rows": []}, {("rows", "too_few")}),
        ({"rows": [{"item": "a"}, {"item": "b"}, {"item": "c"}]}, {("rows", "too_many")}),
        ({"rows": "a,b"}, {("rows", "type")}),
        ({"rows": [{"item": "a"}, "b"]}, {("rows.1", "type")}),
        ({"rows": [{"qty": 2}]}, {("rows.0.item", "required")}),
        ({"rows": [{"item": "a", "qty": "2"}]}, {("rows.0.qty", "type")}),
        ({"rows": [{"item": "a", "shot": "../x"}]}, {("rows.0.shot", "bad_name")}),
        ({"rows": [{"item": "a"}] * 500}, {("rows", "too_many")}),
    ]
    for answers, expected in cases:
        _, errors = validate_answers(ALL_TYPES, answers, today=TODAY)
        assert codes(errors) == expected, answers


def test_repeat_entries_compute_from_entry_and_top_level():
    clean, errors = validate_answers(ALL_TYPES, {"i": 3, "rows": [{"item": "a", "qty": 2, "total": 99},
                                                                  {"item": "b"}]}, today=TODAY)
    assert errors == []
    assert clean["rows"] == [{"item": "a", "qty": 2, "total": 6}, {"item": "b"}]


def test_required_when_relevant_and_dropped_when_not(visit):
    answers = good_visit()
    answers["risk"] = "yes"
    _, errors = validate_answers(visit, answers, today=TODAY)
    assert codes(errors) == {("risk_reason", "required")}
    assert "风险原因" in errors[0]["zh"] and "Reason for the risk" in errors[0]["en"]
    answers["risk_reason"] = "户主突发脑梗，医疗支出大"
    clean, errors = validate_answers(visit, answers, today=TODAY)
    assert errors == [] and clean["risk_reason"] == "户主突发脑梗，医疗支出大"
    # Back to "no": the reason is no longer asked, so a stale one is dropped, even a malformed one.
    for stale in ("户主突发脑梗", 42):
        answers.update(risk="no", risk_reason=stale)
        clean, errors = validate_answers(visit, answers, today=TODAY)
        assert errors == [] and "risk_reason" not in clean


def test_irrelevance_cascades_through_later_questions(pv):
    answers = good_pv()
    answers["interested"] = "no"
    clean, errors = validate_answers(pv, answers, today=TODAY)
    assert errors == []
    assert set(clean) == {"interested", "lecture_attended", "lecture_date", "location", "signature"}


def test_phone_visits_need_no_location_or_signature(visit):
    answers = good_visit()
    answers["visit_type"] = "phone"
    clean, errors = validate_answers(visit, answers, today=TODAY)
    assert errors == []
    assert "location" not in clean and "signature" not in clean


def test_visit_constraints(visit):
    answers = good_visit()
    answers["visit_date"] = "2024-06-16"
    answers["followups"] = [{"action": "x", "due_date": "2024-06-01"}]
    answers["help_given"] = [{"product": "蜂蜜", "quantity": 0, "unit": "斤", "price": 30}]
    answers["members"][0]["birth_year"] = 2025
    _, errors = validate_answers(visit, answers, today=TODAY)
    assert codes(errors) == {("visit_date", "constraint"), ("followups.0.due_date", "constraint"),
                             ("help_given.0.quantity", "constraint"), ("members.0.birth_year", "constraint")}
    by_field = {e["field"]: e for e in errors}
    assert by_field["visit_date"]["zh"] == "「走访日期」：走访日期不能晚于今天"
    assert by_field["followups.0.due_date"]["en"].startswith("“Follow-up actions” #1 “Due date”:")
    # "No change" cannot be combined with a change; on its own, no member list is asked for.
    answers = good_visit()
    answers["family_changes"] = ["none", "birth"]
    _, errors = validate_answers(visit, answers, today=TODAY)
    assert codes(errors) == {("family_changes", "constraint")}
    answers = good_visit()
    answers["family_changes"] = ["none"]
    clean, errors = validate_answers(visit, answers, today=TODAY)
    assert errors == [] and "members" not in clean


def test_members_are_required_when_the_family_changed(visit):
    answers = good_visit()
    del answers["members"]
    _, errors = validate_answers(visit, answers, today=TODAY)
    assert codes(errors) == {("members", "too_few")}


def test_today_defaults_to_the_calendar_day_in_china(visit):
    answers = good_visit()
    answers["visit_date"] = "2999-01-01"
    del answers["followups"]
    _, errors = validate_answers(visit, answers)
    assert codes(errors) == {("visit_date", "constraint")}


def test_random_json_never_raises(visit, pv):
    rng = random.Random(20240615)

    def junk(depth=0):
        makers = [
            lambda: None, lambda: True, lambda: rng.randint(-10 ** 6, 10 ** 6), lambda: rng.random() * 1e4,
            lambda: rng.choice(["", "yes", "no", "home", "none", "2024-06-01", "../x", "a.jpg", "\ud800", "中"]),
            lambda: rng.choice([float("nan"), float("inf"), 1e300]),
            lambda: {"lat": rng.uniform(-100, 100), "lon": rng.uniform(-200, 200)},
            lambda: [junk(depth + 1) for _ in range(rng.randrange(4))],
            lambda: {rng.choice(["lat", "lon", "accuracy", "name", "x"]): junk(depth + 1)
                     for _ in range(rng.randrange(4))},
        ]
        return makers[rng.randrange(len(makers) if depth < 3 else len(makers) - 2)]()

    for definition in (visit, pv, ALL_TYPES):
        names = [f["name"] for f in formdefs.answer_fields(definition)]
        for _ in range(300):
            answers = {name: junk() for name in names if rng.random() < 0.7}
            if rng.random() < 0.2:
                answers["members"] = [{c: junk() for c in ("name", "sex", "birth_year", "zz")}
                                      for _ in range(rng.randrange(3))]
            clean, errors = validate_answers(definition, answers, today=TODAY)
            assert isinstance(clean, dict)
            for e in errors:
                assert set(e) == {"field", "code", "zh", "en"}
                assert isinstance(e["field"], str) and e["zh"] and e["en"]
            json.dumps([clean, errors], allow_nan=False).encode("utf-8")   # storable and sendable
            formdefs.attachment_names(definition, answers)
            effects.of(definition, clean)


# ---------------------------------------------------------------------------------------------
# What answers mean elsewhere


def test_attachment_names_lists_photos_and_signatures_once(visit):
    answers = good_visit()
    answers.update(photo_2="IMG_0002.jpg", photo_3="IMG_0001.jpg")
    assert formdefs.attachment_names(visit, answers) == ["IMG_0001.jpg", "IMG_0002.jpg", "signature-1.png"]
    assert formdefs.attachment_names(visit, {"photo_1": "../../etc/passwd", "signature": 5}) == []
    assert formdefs.attachment_names(visit, "junk") == []
    assert formdefs.attachment_names(ALL_TYPES, {"pic": "p.jpg", "rows": [{"shot": "r.jpg"}, "x"]}) == \
        ["p.jpg", "r.jpg"]


def test_visit_effects_update_members_date_the_visit_and_count_help(visit):
    clean, _ = validate_answers(visit, good_visit(), today=TODAY)
    found = effects.of(visit, clean)
    assert found["changes"] == {"population": 2, "members": [
        {"name": "张建国", "relation": "户主", "sex": "male", "birth_year": 1968, "health": "健康",
         "schooling": "初中", "work": "务农"},
        {"name": "张小花", "relation": "孙女", "sex": "female", "birth_year": 2024, "health": "",
         "schooling": "", "work": ""}]}
    assert found["visit_date"] == "2024-06-14"
    assert found["followups"] == [{"index": 0, "action": "联系镇卫生院办理慢病卡", "due_date": "2024-06-30"}]
    assert found["help_value"] == 300.0
    answers = good_visit()
    answers["family_changes"] = ["none"]
    del answers["members"]
    clean, _ = validate_answers(visit, answers, today=TODAY)
    assert effects.of(visit, clean)["changes"] == {}


def test_pv_enrollment_effects_set_the_pv_status(pv):
    clean, _ = validate_answers(pv, good_pv(), today=TODAY)
    assert effects.of(pv, clean, at="2024-06-15T10:00:00+08:00")["changes"] == {"pv_status": {
        "stage": "applied", "capacity_kw": 9, "expected_kwh_year": 9900, "funding_mode": "subsidised",
        "lecture_attended": "yes", "lecture_date": "2024-05-20",
        "updated_at": "2024-06-15T10:00:00+08:00"}}
    for changes in ({"interested": "no"}, {"consent": "no"}):
        clean, errors = validate_answers(pv, {**good_pv(), **changes}, today=TODAY)
        assert errors == []
        status = effects.of(pv, clean)["changes"]["pv_status"]
        assert status["stage"] == "declined" and status["capacity_kw"] is None
    assert effects.of(pv, {})["changes"] == {}
    assert effects.of(pv, ["x"])["changes"] == {}
    assert effects.of(ALL_TYPES, {"rows": [{"item": "x"}]})["changes"] == {}
