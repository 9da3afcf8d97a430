"""Households in scope, pull sync with the seq cursor, edits merged per field, pages."""

import threading


def test_households_api_pages_by_seq_cursor_within_scope(api):
    api.login("cadre1")
    seen, since = [], 0
    while True:
        body = api.get(f"/api/v1/households?since={since}&limit=2").get_json()
        if not body["households"]:
            break
        assert len(body["households"]) <= 2
        seen += [h["id"] for h in body["households"]]
        assert body["next"] > since
        since = body["next"]
    assert sorted(seen) == ["v1-0001", "v1-0002", "v1-0003"]


def test_supervisor_sees_both_villages_and_cadre_only_theirs(api):
    api.login("super")
    ids = {h["id"] for h in api.get("/api/v1/households").get_json()["households"]}
    assert ids == {"v1-0001", "v1-0002", "v1-0003", "v2-0001", "v2-0002"}
    boot = api.get("/api/v1/bootstrap").get_json()
    assert {v["id"] for v in boot["villages"]} == {"v1", "v2"}


def test_other_villages_household_is_404_like_a_missing_one(api):
    api.login("cadre1")
    other = api.get("/api/v1/households/v2-0001")
    missing = api.get("/api/v1/households/v1-9999")
    weird = api.get("/api/v1/households/..%2F..%2Fetc")
    assert other.status_code == missing.status_code == weird.status_code == 404
    assert other.get_json()["error"] == missing.get_json()["error"]
    assert api.get("/households/v2-0001").status_code == 404


def test_bad_cursor_parameters_are_clear_400s(api):
    api.login("cadre1")
    for q in ("since=abc", "since=-1", "limit=0", "limit=99999"):
        r = api.get(f"/api/v1/households?{q}")
        assert r.status_code == 400 and r.get_json()["error"] == "bad_parameter"


def test_edit_on_current_version_applies_and_bumps_version(api):
    api.login("cadre1")
    r = api.client.put("/api/v1/households/v1-0001", json={"changes": {"phone": "13912345678"},
                       "base_version": 1}, headers={"X-CSRFToken": api.token})
    assert r.status_code == 200
    body = r.get_json()
    assert body["household"]["version"] == 2 and body["clash"] is None
    assert api.get("/api/v1/households/v1-0001").get_json()["phone"] == "13912345678"


def put(api, hid, changes, base):
    return api.client.put(f"/api/v1/households/{hid}", json={"changes": changes, "base_version": base},
                          headers={"X-CSRFToken": api.token})


def test_stale_edit_of_another_field_is_a_soft_clash_and_both_apply(api):
    api.login("cadre1")
    put(api, "v1-0002", {"address": "新地址 8 号"}, 1)
    r = put(api, "v1-0002", {"phone": "13700000000"}, 1)  # made offline from version 1
    body = r.get_json()
    assert body["clash"]["kind"] == "soft"
    h = api.get("/api/v1/households/v1-0002").get_json()
    assert h["address"] == "新地址 8 号" and h["phone"] == "13700000000" and h["version"] == 3


def test_stale_edit_of_the_same_field_is_a_hard_clash_keeping_the_other_value(api):
    api.login("cadre1")
    put(api, "v1-0003", {"address": "甲"}, 1)
    body = put(api, "v1-0003", {"address": "乙"}, 1).get_json()
    assert body["clash"]["kind"] == "hard"
    assert body["clash"]["overwritten"] == {"address": "甲"}
    assert api.get("/api/v1/households/v1-0003").get_json()["address"] == "乙"
    page = api.get("/households/v1-0003").get_data(as_text=True)
    assert "严重冲突" in page or "hard clash" in page


def test_bad_edits_are_refused_and_change_nothing(api):
    api.login("cadre1")
    for changes in ({"category": "rich"}, {"population": "three"}, {"id": "x"},
                    {"members": [{"relation": "子"}]}, {"phone": "12"},
                    {"phone": "12345678901"}):
        r = put(api, "v1-0001", changes, 1)
        assert r.status_code == 400, changes
    r = api.client.put("/api/v1/households/v1-0001", data="not json", headers={"X-CSRFToken": api.token})
    assert r.status_code == 400
    assert api.get("/api/v1/households/v1-0001").get_json()["version"] == 1


def test_concurrent_edits_lose_no_update(app, api):
    api.login("cadre1")
    clients = []
    for _ in range(4):
        from tests.conftest import Api
        c = Api(app.test_client())
        c.login("cadre1")
        clients.append(c)

    def edit(c, i):
        for n in range(10):
            h = c.get("/api/v1/households/v1-0001").get_json()
            members = h["members"] + [{"name": f"t{i}-{n}"}]
            put(c, "v1-0001", {"members": members}, h["version"])

    threads = [threading.Thread(target=edit, args=(c, i)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    h = api.get("/api/v1/households/v1-0001").get_json()
    assert h["version"] == 41  # every one of the 40 edits was applied and counted


def test_household_pages_list_search_view_and_edit(api):
    api.login("cadre1")
    html = api.get("/households?q=张v12").get_data(as_text=True)
    assert "v1-0002" in html and "v1-0001" not in html and "v2-0001" not in html
    html = api.get("/households/v1-0001").get_data(as_text=True)
    assert "大田" in html and "水渠" in html and "李干部" in html
    form = {"csrf_token": api.token, "base_version": "1", "head_name": "张新名", "phone": "13800138000",
            "address": "1号", "group": "1组", "category": "jiance", "population": "4",
            "members.0.name": "张新名", "members.0.birth_year": "1970", "members.1.name": "",
            "plots.0.name": "大田", "plots.0.area_mu": "2.5", "plots.0.contract_signed": "on"}
    r = api.client.post("/households/v1-0001/edit", data=form)
    assert r.status_code == 302
    h = api.get("/api/v1/households/v1-0001").get_json()
    assert h["head_name"] == "张新名" and h["category"] == "jiance" and h["population"] == 4
    assert h["plots"][0]["area_mu"] == 2.5 and h["plots"][0]["contract_signed"] is True
    form["population"] = "many"
    r = api.client.post("/households/v1-0001/edit", data=form)
    assert r.status_code == 400 and "Population" in r.get_data(as_text=True) or "家庭人口" in r.get_data(as_text=True)


def test_admin_pairs_a_household_with_cadres_of_its_village_only(api):
    api.login("admin")
    r = api.client.post("/households/v1-0001/pairing", data={"csrf_token": api.token,
                                                             "cadre_ids": ["cadre2"]})
    assert r.status_code == 302
    assert api.get("/api/v1/households/v1-0001").get_json()["cadre_ids"] == ["cadre1"]
    api.client.post("/households/v1-0001/pairing", data={"csrf_token": api.token, "cadre_ids": []})
    assert api.get("/api/v1/households/v1-0001").get_json()["cadre_ids"] == []
