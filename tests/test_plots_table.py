"""The plots of a household as one table (issue 25 item 2): several rows added, changed and
removed in one save (one version, one history entry), bad rows named by row and column with
nothing saved, a stale base merged as a clash; and the village's publicity period."""

from tests.helpers import household, login


def _row(i, name="", code="", area="", east="", west="", south="", north="", contract_no="", state="", note="",
         plot_id=""):
    return {f"plots.{i}.name": name, f"plots.{i}.code": code, f"plots.{i}.area_mu": area,
            f"plots.{i}.east": east, f"plots.{i}.west": west, f"plots.{i}.south": south,
            f"plots.{i}.north": north, f"plots.{i}.contract_no": contract_no, f"plots.{i}.state": state,
            f"plots.{i}.note": note, f"plots.{i}.id": plot_id}


def _form(api, version, *rows):
    data = {"csrf_token": api.token, "base_version": str(version), "plots.present": "1"}
    for r in rows:
        data.update(r)
    return data


def test_the_edit_page_shows_the_plots_as_one_table_with_its_module(client):
    api = login(client, "cadre1")
    html = api.get("/households/v1-0001/edit").get_data(as_text=True)
    assert 'class="stack plots-table"' in html and 'name="plots.0.east" ' in html and "水渠" in html
    assert 'src="/app/pages/plots-table.js"' in html and "<script>" not in html  # no inline script (CSP)
    assert 'id="plot-row-template"' in html and 'name="plots.__i__.code"' in html
    assert api.get("/app/pages/plots-table.js").status_code == 200


def test_several_plots_added_changed_and_removed_in_one_save(client):
    api = login(client, "cadre1")
    before = household(api)
    old_id = before["plots"][0].get("id", "")  # the seed's plot has none yet: it gets one
    # Rows as the page sends them after a removal and two additions: indices with gaps.
    form = _form(api, before["version"],
                 _row(0, "大田", "430626-01", "2.25", "水渠", "村道", "李家", "山林", "HT-1", "surveyed", "",
                      plot_id=old_id),
                 _row(3, "坡地", "430626-02", "0.8", "王家", "荒山", "小溪", "公路", state="signed", note="新开"),
                 _row(5, "菜园", "", "0.3", "屋后", "", "", ""),
                 _row(6))  # the empty last row is no plot
    r = api.client.post("/households/v1-0001/edit", data=form)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    after = household(api)
    assert after["version"] == before["version"] + 1  # one save, one version
    plots = after["plots"]
    assert [p["name"] for p in plots] == ["大田", "坡地", "菜园"]
    assert plots[0]["id"] == (old_id or plots[0]["id"]) and plots[0]["area_mu"] == 2.25 and plots[0]["code"] == "430626-01"
    assert plots[0]["contract_no"] == "HT-1" and plots[0]["state"] == "surveyed"
    assert plots[1]["east"] == "王家" and plots[1]["north"] == "公路" and plots[1]["note"] == "新开"
    assert plots[1]["id"] and plots[2]["id"] and len({p["id"] for p in plots}) == 3
    history = [e for e in api.get("/households/v1-0001").get_data(as_text=True).split() if e]
    assert history  # the detail page renders with the new plots
    # Removing all rows is a save too: an empty table.
    r = api.client.post("/households/v1-0001/edit", data=_form(api, after["version"], _row(0)))
    assert r.status_code == 302 and household(api)["plots"] == []
    assert household(api)["version"] == before["version"] + 2


def test_bad_rows_are_named_by_row_and_column_and_nothing_is_saved(client):
    api = login(client, "cadre1")
    # v1-0002 holds a code first: a code is the village's.
    other = household(api, "v1-0002")
    r = api.put("/api/v1/households/v1-0002", json={"base_version": other["version"], "changes": {"plots": [
        {"name": "河滩", "area_mu": 1.0, "code": "TAKEN-1"}]}})
    assert r.status_code == 200
    before = household(api)
    form = _form(api, before["version"],
                 _row(0, "大田", area="0"),
                 _row(1, "坡地", area="10001"),
                 _row(2, "菜园", area="1", east="东" * 101),
                 _row(3, "旱地", area="1", west="村\x07道"),
                 _row(4, "水田", code="TAKEN-1", area="1"))
    r = api.client.post("/households/v1-0001/edit", data=form)
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "承包地块 1 面积（亩）" in html and "承包地块 2 面积（亩）" in html
    assert "承包地块 3 东至" in html and "最多 100 字" in html
    assert "承包地块 4 西至" in html
    assert household(api) == before  # nothing saved
    assert html.count('aria-invalid="true"') >= 4  # the bad cells are marked in the table
    # The code clash is found once the rest is right, by row and column, naming the other household.
    form = _form(api, before["version"], _row(0, "大田", area="1.5"), _row(1, "水田", code="TAKEN-1", area="1"))
    r = api.client.post("/households/v1-0001/edit", data=form)
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "承包地块 2 地块编码" in html and "v1-0002" in html
    assert household(api) == before
    # The same through the API: a JSON error naming plots.1.code; another village may use the code.
    r = api.put("/api/v1/households/v1-0001", json={"base_version": before["version"], "changes": {"plots": [
        {"name": "水田", "area_mu": 0}, {"name": "x", "code": "TAKEN-1", "area_mu": 1}]}})
    assert r.status_code == 400
    fields = {e["field"] for e in r.get_json()["errors"]}
    assert "plots.0.area_mu" in fields
    r = api.put("/api/v1/households/v1-0001", json={"base_version": before["version"], "changes": {"plots": [
        {"name": "x", "code": "TAKEN-1", "area_mu": 1}]}})
    assert r.status_code == 400 and [e["field"] for e in r.get_json()["errors"]] == ["plots.0.code"]
    assert household(api) == before
    sup = login(client, "super")
    v2 = household(sup, "v2-0001")
    r = sup.put("/api/v1/households/v2-0001", json={"base_version": v2["version"], "changes": {"plots": [
        {"name": "x", "code": "TAKEN-1", "area_mu": 1}]}})
    assert r.status_code == 200


def test_a_stale_table_save_is_merged_as_a_clash_never_a_silent_overwrite(client):
    api = login(client, "cadre1")
    start = household(api)
    # Someone else changes the plots after the page was opened.
    r = api.put("/api/v1/households/v1-0001", json={"base_version": start["version"], "changes": {"plots": [
        dict(start["plots"][0], area_mu=3.0)]}})
    assert r.status_code == 200 and r.get_json()["clash"] is None
    # The page opened at the old version saves its table.
    form = _form(api, start["version"], _row(0, "大田", area="1.75", east="水渠", plot_id=start["plots"][0].get("id", "")),
                 _row(1, "坡地", area="0.5"))
    r = api.client.post("/households/v1-0001/edit", data=form, follow_redirects=True)
    assert r.status_code == 200 and "冲突" in r.get_data(as_text=True)
    after = household(api)
    assert after["version"] == start["version"] + 2 and [p["name"] for p in after["plots"]] == ["大田", "坡地"]
    from server.store import get_store
    with _ctx(client):
        found = get_store().search("v1", "clashes", lambda c: c.get("household_id") == "v1-0001")
    assert len(found) == 1 and found[0]["kind"] == "hard" and found[0]["fields"] == ["plots"]
    assert found[0]["overwritten"]["plots"][0]["area_mu"] == 3.0  # the other value kept for review


def _ctx(client):
    return client.application.app_context()


def test_the_village_publicity_period_is_set_on_its_page_and_kept_by_the_owner(client):
    api = login(client, "admin")
    html = api.get("/admin/villages/v1").get_data(as_text=True)
    assert 'name="publicity_days"' in html and 'value="7"' in html
    base = {"csrf_token": api.token, "name": "青石村", "township": "长寿镇", "county": "平江县"}
    for bad in ("0", "61", "abc", "7.5"):
        r = api.client.post("/admin/villages/v1", data=dict(base, publicity_days=bad))
        assert r.status_code == 400 and "公示天数" in r.get_data(as_text=True), bad
    r = api.client.post("/admin/villages/v1", data=dict(base, publicity_days="10"))
    assert r.status_code == 302
    assert 'value="10"' in api.get("/admin/villages/v1").get_data(as_text=True)
    from server.records import villages
    with _ctx(client):
        assert villages.get("v1")["publicity_days"] == 10
        doc, errors = villages.update("v1", actor="test", publicity_days=61)
        assert doc is None and errors[0]["field"] == "publicity_days"
        doc, errors = villages.update("v1", actor="test", name="青石村")  # other fields keep the period
        assert not errors and doc["publicity_days"] == 10
        doc, errors = villages.update("v2", actor="test", name="白沙村")  # never set: never written
        assert "publicity_days" not in doc
    # The 公示表 reads it: its period line says 10 days.
    from tests.helpers import pdf_text
    pdf = api.get("/villages/v1/ledger-notice.pdf?start=2026-05-01")
    assert pdf.status_code == 200
    text = pdf_text(pdf.data)
    assert "2026-05-10" in text or "2026年5月10日" in text or "10 天" in text or "10天" in text


def test_the_publicity_period_from_the_command_line(app, runner):
    from server.records import villages
    from server.store import close_app_store, get_store
    close_app_store(app)  # a command takes the data folder for itself, as when no server runs
    r = runner.invoke(args=["village", "update", "v2", "--publicity-days", "61"])
    assert r.exit_code != 0 and "公示天数" in r.output
    r = runner.invoke(args=["village", "update", "v2", "--publicity-days", "14"])
    assert r.exit_code == 0, r.output
    with app.app_context():
        assert villages.get("v2", get_store(app))["publicity_days"] == 14
