"""Land ledger import: three layouts, preview then confirm, three-way comparison (clashes), bad
input named by sheet, row and column with nothing written, the CLI and the admin page."""

import json


from server.core import idcard
from server.records import households
from server.services import ledger
from server.store import close_app_store, get_store
from tests import ledger_files as lf

VID = "v1"
KEYS = {"households", "members", "plots", "changes", "clashes", "ignored_columns", "errors"}


def run(app, files, **kw):
    with app.app_context():
        return ledger.run(VID, files, actor="admin", store=get_store(), **kw)[0]


def heads(app):
    with app.app_context():
        return {h["id"]: h for h in households.in_village(VID, get_store())}


def test_three_sheets_and_one_merged_sheet_import_the_same_households(app):
    report = run(app, [("ledger.xlsx", lf.three_sheets())])
    assert set(report) == KEYS and report["errors"] == []
    assert report["households"] == {"new": 2, "changed": 0, "unchanged": 0}
    assert report["members"]["new"] == 5 and report["plots"]["new"] == 4
    assert set(heads(app)) == {"v1-0001", "v1-0002", "v1-0003"}  # preview wrote nothing
    merged = run(app, [("merged.xlsx", lf.one_sheet_merged())])
    assert {k: merged[k] for k in ("households", "members", "plots")} == \
        {k: report[k] for k in ("households", "members", "plots")}
    assert merged["ignored_columns"] == ["签字"]
    assert sorted(map(json.dumps, merged["changes"])) == sorted(map(json.dumps, report["changes"]))
    done = run(app, [("ledger.xlsx", lf.three_sheets())], confirm=True)
    assert done["errors"] == [] and done["households"]["new"] == 2
    h = heads(app)["v1-0011"]
    assert h["head_name"] == "王大山" and h["group"] == "2组" and len(h["members"]) == 3
    assert {p["code"] for p in h["plots"]} == {"4306260102001", "4306260102002"}
    assert all(p["id"] == p["code"] and p["state"] == "surveyed" for p in h["plots"])
    assert h["members"][2]["id_card"] == lf.IDS["王小明"] and h["members"][2]["work_place"] == "广东东莞"
    # the one-sheet layout of the same ledger, and the same file again: nothing changes
    for files in ([("merged.xlsx", lf.one_sheet_merged())], [("ledger.xlsx", lf.three_sheets())]):
        again = run(app, files, confirm=True)
        assert again["households"] == {"new": 0, "changed": 0, "unchanged": 2}
        assert again["changes"] == [] and again["clashes"] == [] and again["errors"] == []
    assert heads(app)["v1-0011"]["version"] == h["version"]


def test_separate_csvs_in_utf8_bom_and_gbk(app):
    files = [("农户.csv", lf.csv_bytes(lf.HOUSEHOLDS, "gbk")),
             ("成员.csv", lf.csv_bytes(lf.MEMBERS, "utf-8-sig")),
             ("地块.csv", lf.csv_bytes(lf.PLOTS, "utf-8"))]
    report = run(app, files, confirm=True)
    assert report["errors"] == [] and report["plots"]["new"] == 4 and report["members"]["new"] == 5
    assert heads(app)["v1-0012"]["plots"][0]["area_mu"] == 2.35


def test_change_then_clash_never_overwritten(app, api):
    run(app, [("l.xlsx", lf.three_sheets())], confirm=True)
    # the file changes a boundary: a change, before -> after
    plots = [list(r) for r in lf.PLOTS]
    plots[1][4] = "新水渠"
    report = run(app, [("l.xlsx", lf.three_sheets(plots=plots))])
    assert report["changes"] == [{"household": "v1-0011", "field": "plots[4306260102001].east",
                                  "before": "水渠", "after": "新水渠"}]
    assert report["households"] == {"new": 0, "changed": 1, "unchanged": 1}
    assert report["plots"]["changed"] == 1
    # a cadre edits the same boundary in Jiedui meanwhile: the import shows a clash, keeps Jiedui's
    api.login("cadre1")
    h = api.get("/api/v1/households/v1-0011").get_json()
    h["plots"][0]["east"] = "干部改的"
    r = api.put("/api/v1/households/v1-0011", json={"base_version": h["version"],
                                                    "changes": {"plots": h["plots"], "members": h["members"]}})
    assert r.status_code == 200, r.get_json()
    saved = heads(app)["v1-0011"]
    assert saved["members"][0]["id_card"] == lf.IDS["王大山"]  # masked on the way out, kept on the way in
    report = run(app, [("l.xlsx", lf.three_sheets(plots=plots))], confirm=True)
    assert report["changes"] == []
    assert report["clashes"] == [{"household": "v1-0011", "field": "plots[4306260102001].east",
                                  "jiedui": "干部改的", "file": "新水渠", "last_import": "水渠"}]
    assert heads(app)["v1-0011"]["plots"][0]["east"] == "干部改的"
    # the same file again: the Jiedui edit stands, nothing to report
    again = run(app, [("l.xlsx", lf.three_sheets(plots=plots))])
    assert again["clashes"] == [] and again["changes"] == []
    # a Jiedui edit the file does not touch is kept too
    assert run(app, [("l.xlsx", lf.three_sheets())])["clashes"][0]["file"] == "水渠"
    taken = run(app, [("l.xlsx", lf.three_sheets())], confirm=True,
                take=["v1-0011:plots[4306260102001].east"])
    assert taken["changes"][0]["after"] == "水渠"
    assert heads(app)["v1-0011"]["plots"][0]["east"] == "水渠"


def bad_rows():
    members = [list(r) for r in lf.MEMBERS]
    members[2][3] = lf.IDS["刘桂花"][:-1] + ("0" if lf.IDS["刘桂花"][-1] != "0" else "1")  # check digit
    members[5][3] = lf.IDS["王大山"]  # the same person in a second household
    plots = [list(r) for r in lf.PLOTS]
    plots[1][3] = 0                   # area <= 0
    plots[2][3] = 20000               # area > 10000
    plots[3][2] = "4306260102001"     # a plot code of household 11 in household 12
    plots[4][4] = "东" * 101            # boundary too long
    plots[4][5] = "西\x07边"            # a control character
    hh = list(lf.HOUSEHOLDS) + [(11, "王大山", "2组", "13800001111")]  # duplicate household row
    return hh, members, plots


def test_every_error_in_one_pass_and_nothing_written(app):
    hh, members, plots = bad_rows()
    before = heads(app)
    report = run(app, [("农户.csv", lf.csv_bytes(hh)), ("家庭成员.csv", lf.csv_bytes(members)),
                       ("承包地块.csv", lf.csv_bytes(plots))], confirm=True)
    found = {(e["sheet"], e["row"]) for e in report["errors"]}
    assert ("家庭成员", 3) in found and ("家庭成员", 6) in found
    assert {("承包地块", 2), ("承包地块", 3), ("承包地块", 4), ("承包地块", 5)} <= found
    assert ("农户", 4) in found
    text = " ".join(e["en"] for e in report["errors"])
    for words in ("check digit", "two households", "more than 0", "Plot code 4306260102001",
                  "Boundary text too long", "control characters", "Duplicate household"):
        assert words in text, words
    assert all(e["zh"] and e["en"] and "sheet" in e and "column" in e for e in report["errors"])
    assert heads(app) == before


def test_caps_on_size_and_rows(app):
    big = [("huge.csv", b"a" * (ledger.MAX_BYTES + 1))]
    assert "larger than" in run(app, big)["errors"][0]["en"]
    rows = [lf.PLOTS[0]] + [(1, f"地{i}", None, 1, "", "", "", "", "", "") for i in range(ledger.MAX_ROWS + 50)]
    report = run(app, [("many.csv", lf.csv_bytes(rows))])
    assert "More than" in report["errors"][0]["en"]


def test_member_id_cards_masked_for_non_admins(app, api):
    run(app, [("l.xlsx", lf.three_sheets())], confirm=True)
    api.login("super")
    shown = api.get("/api/v1/households/v1-0011").get_json()["members"][0]["id_card"]
    assert shown == idcard.mask(lf.IDS["王大山"]) and "*" in shown
    page = api.get("/households/v1-0011").get_data(as_text=True)
    assert lf.IDS["王大山"] not in page and idcard.mask(lf.IDS["王大山"]) in page
    api.client.post("/logout", headers={"X-CSRFToken": api.token})
    api.token = None
    api.login("admin")
    assert api.get("/api/v1/households/v1-0011").get_json()["members"][0]["id_card"] == lf.IDS["王大山"]


def test_cli_preview_confirm_and_exit_status(app, tmp_path):
    close_app_store(app)
    path = tmp_path / "ledger.xlsx"
    path.write_bytes(lf.three_sheets())
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import-ledger", str(path), "--village", VID])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == KEYS and report["households"]["new"] == 2
    result = runner.invoke(args=["import-ledger", str(path), "--village", VID, "--confirm"])
    assert result.exit_code == 0 and json.loads(result.stdout)["households"]["new"] == 2
    result = runner.invoke(args=["import-ledger", str(path), "--village", VID, "--confirm"])
    assert json.loads(result.stdout)["households"] == {"new": 0, "changed": 0, "unchanged": 2}
    hh, members, plots = bad_rows()
    plots[4][5] = "西边"
    path.write_bytes(lf.three_sheets(hh, members, plots))
    result = runner.invoke(args=["import-ledger", str(path), "--village", VID, "--confirm"])
    assert result.exit_code == 1 and json.loads(result.stdout)["errors"]
    close_app_store(app)


def test_a_members_list_without_ledger_fields_keeps_the_id_numbers(app, api):
    """A visit's family update (or an older phone) sends members without ID numbers: they stay.
    An ID number sent empty is removed on purpose."""
    run(app, [("l.xlsx", lf.three_sheets())], confirm=True)
    api.login("cadre1")
    h = api.get("/api/v1/households/v1-0011").get_json()
    plain = [{k: m.get(k) for k in ("name", "relation", "sex", "birth_year", "health", "schooling", "work")}
             for m in h["members"]]
    plain[0]["work"] = "务农"
    r = api.put("/api/v1/households/v1-0011", json={"base_version": h["version"], "changes": {"members": plain}})
    assert r.status_code == 200, r.get_json()
    stored = heads(app)["v1-0011"]["members"]
    assert stored[0]["work"] == "务农" and stored[0]["id_card"] == lf.IDS["王大山"]
    assert stored[2]["work_place"] == "广东东莞"
    plain[1]["id_card"] = ""
    r = api.put("/api/v1/households/v1-0011", json={"base_version": r.get_json()["household"]["version"],
                                                    "changes": {"members": plain}})
    assert r.status_code == 200
    assert "id_card" not in heads(app)["v1-0011"]["members"][1]
    # a visit recording a birth (the visit form's members effect) keeps them too
    from tests.helpers import push, visit
    item = visit("v1-0011", family_changes=["birth"],
                 members=[{"name": "王大山", "relation": "户主", "sex": "male", "birth_year": 1965},
                          {"name": "王小宝", "relation": "孙子", "sex": "male", "birth_year": 2026}])
    assert push(api, item).get_json()["results"][0]["status"] == "created"
    after = heads(app)["v1-0011"]["members"]
    assert [m["name"] for m in after] == ["王大山", "王小宝"]
    assert after[0]["id_card"] == lf.IDS["王大山"] and after[0]["phone"] == "13800001111"
