"""Issue 9 findings 4 (anonymous memory growth) and 9 (login timing), and a property-based test that
throws generated JSON at every JSON endpoint as a logged-in cadre."""

import gc
import hashlib
import json
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import create_app
from server.records import users
from tests.conftest import PASSWORD, Api
from tests.helpers import CHEAP_HASH, app_config, jpeg_bytes, new_uuid, visit_item


def csrf(client):
    return client.get("/api/v1/csrf").get_json()["csrf_token"]


# ---- finding 4: anonymous memory growth -------------------------------------------------------------


def test_sixty_logins_with_huge_usernames_keep_no_memory(app):
    """Form posts up to werkzeug's form limit (just under 500 kB of text) with distinct usernames:
    nothing of them may stay behind (the throttle used to key on the whole name, for good)."""
    client = app.test_client()
    token = csrf(client)
    post = lambda i: client.post("/login", data={"username": f"{i:03d}" + "u" * 450_000,  # noqa: E731
                                                 "password": "wrong-wrong", "csrf_token": token})
    assert post(999).status_code in (401, 429)  # warm up caches (templates, the dummy hash)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(60):
            r = post(i)
            assert r.status_code in (401, 429) and len(r.get_data()) < 20_000
            del r
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 3 * 1024 * 1024, f"{grown / 1e6:.1f} MB kept after 60 logins of 450 kB names"


def test_ten_megabyte_usernames_are_refused_before_they_are_read(app):
    client = app.test_client()
    token = csrf(client)
    huge = "u" * (10 * 1024 * 1024)
    r = client.post("/login", json={"username": huge, "password": "x"}, headers={"X-CSRFToken": token})
    assert r.status_code == 413 and r.get_json()["error"] == "too_large"
    r = client.post("/login", data={"username": huge, "password": "x", "csrf_token": token},
                    headers={"Accept": "application/json"})
    assert r.status_code == 413 and r.is_json
    assert app.extensions["jiedui_login_throttle"].size() <= 1


# ---- finding 9: an unknown user takes as long as a wrong password -----------------------------------


def test_an_unknown_username_is_checked_against_a_hash_of_the_same_cost(app, monkeypatch):
    """The test app hashes cheaply (tests/helpers.CHEAP_HASH): the dummy hash follows the method the
    accounts are hashed with, so both answers cost the same. bench/login_timing.py times it with the
    production method."""
    checked = []
    real = users.check_password_hash

    def spy(pwhash, password):
        checked.append(pwhash.split("$")[0])
        return real(pwhash, password)

    monkeypatch.setattr(users, "check_password_hash", spy)
    client = Api(app.test_client())
    assert client.login("nobody.at.all", "wrong-wrong").status_code == 401
    assert client.login("cadre1", "wrong-wrong").status_code == 401
    assert checked == [CHEAP_HASH, CHEAP_HASH]


def pbkdf2_cost(monkeypatch):
    """Every PBKDF2 iteration any password check pays, counted (werkzeug and the top-up both call
    hashlib.pbkdf2_hmac): cost as work done, not as a time."""
    import hashlib
    paid = []
    real = hashlib.pbkdf2_hmac

    def counted(name, password, salt, iterations, *args):
        paid.append(iterations)
        return real(name, password, salt, iterations, *args)
    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counted)
    return paid


def cheaper_than_the_rest(app, name):
    """`name`'s hash made with half the iterations of the app's method (an older account)."""
    from server.store import get_store
    method = users.password_method()                    # "pbkdf2:sha256:N"
    cheap = f"{method.rpartition(':')[0]}:{users._pbkdf2_iterations(method) // 2}"
    get_store().write(lambda tx: tx.put("core", "users", dict(
        users.get(name), password_hash=users.hash_password(PASSWORD, cheap))))


def test_every_password_check_costs_the_same(app, monkeypatch):
    """Demo accounts (a cheaper hash) answered a wrong password in ~40 ms, unknown names in ~140:
    which names were demo accounts showed. Unknown, malformed, cheap-hash and real accounts now
    pay the same number of iterations."""
    with app.app_context():
        standard = users._pbkdf2_iterations(users.password_method())   # the test app's cheap one
        cheaper_than_the_rest(app, "cadre2")
        users._dummy_hash()                                 # made once, before counting
    paid = pbkdf2_cost(monkeypatch)
    costs = {}
    for name in ("cadre1", "cadre2", "nobody.at.all", "Not A Name!", "x" * 60):
        paid.clear()
        r = Api(app.test_client()).login(name, "wrong-wrong")
        assert r.status_code in (401, 413), (name, r.status_code)
        costs[name] = sum(paid)
    assert set(costs.values()) == {standard}, costs
    paid.clear()
    assert Api(app.test_client()).login("cadre1", "w" * 300).status_code == 401   # too long
    assert sum(paid) == standard


def test_an_older_hash_is_rehashed_at_a_successful_login_and_sessions_stay(app):
    with app.app_context():
        cheaper_than_the_rest(app, "cadre2")
    first = Api(app.test_client())
    assert first.login("cadre2").status_code == 200
    with app.app_context():
        assert users.get("cadre2")["password_hash"].startswith(users.password_method() + "$")
    assert first.get("/api/v1/bootstrap").status_code == 200        # the session still works
    again = Api(app.test_client())
    assert again.login("cadre2").status_code == 200                 # so does the password
    assert again.login("cadre2", "wrong-wrong").status_code == 401


def test_demo_accounts_are_hashed_like_any_other(tmp_path):
    from server import create_app
    from server.forms import formdefs
    from server.services import demo
    from server.store import close_app_store, get_store
    app = create_app({"DATA_DIR": str(tmp_path / "data"), "TESTING": True, "SNAPSHOT_EVERY": 0})
    try:
        with app.app_context():
            demo.load_demo(get_store(), formdefs.registry())
            hashes = [u["password_hash"] for u in users.list_all()]
        assert hashes and all(h.startswith(users.PASSWORD_METHOD + "$") for h in hashes)
    finally:
        close_app_store(app)


def test_a_server_hashes_with_the_production_method_and_a_cheap_one_needs_testing(tmp_path):
    """PASSWORD_HASH_METHOD is the tests' alone: refused without TESTING, ignored once TESTING is off,
    and an app that never set it (a server: no TESTING) hashes, and checks unknown names, with
    PASSWORD_METHOD."""
    with pytest.raises(ValueError, match="TESTING"):
        create_app({"DATA_DIR": str(tmp_path / "a"), "PASSWORD_HASH_METHOD": CHEAP_HASH})
    with pytest.raises(ValueError, match="TESTING"):
        create_app({"DATA_DIR": str(tmp_path / "a"), "TESTING": "yes", "PASSWORD_HASH_METHOD": CHEAP_HASH})
    server = create_app({"DATA_DIR": str(tmp_path / "b")})
    with server.app_context():
        assert users.password_method() == users.PASSWORD_METHOD
        assert users.hash_password("x" * 8).startswith(users.PASSWORD_METHOD + "$")
        assert users._dummy_hash().startswith(users.PASSWORD_METHOD + "$")
    cheap = create_app(app_config(tmp_path / "c"))
    with cheap.app_context():
        assert users.hash_password("x" * 8).startswith(CHEAP_HASH + "$")
        cheap.config["TESTING"] = False
        assert users.hash_password("x" * 8).startswith(users.PASSWORD_METHOD + "$")
    assert users.password_method() == users.PASSWORD_METHOD  # outside any app: a command, a worker


# ---- generated JSON at every JSON endpoint ------------------------------------------------------------

# Valid JSON of the wrong kind (types, bounds, formats, markup, unknown keys) and poison the strict
# reader must refuse (NaN, Infinity, lone surrogates as raw escapes, deep nesting, huge strings).
WRONG = ["-0", "0", "7", "2.5", "1e308", "9007199254740993", "-1", "true", "false", "null", '""', '"²"',
         '"١٢"', '"x"', '"2026-05-04"', '"9999-99-99"', '"<b>x</b>"', '"v1-0001"', '"../../etc/passwd"',
         '"p.jpg\\n"', '"\\u0000"', '"2026-05-04T10:00:00+08:00"', "[]", "{}"]
POISON = ["NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400", '"\\ud800"', '"a\\udfff b"',
          '"\\udc00\\ud800"']
KEYS = ["uuid", "form", "form_version", "household_id", "created_at", "answers", "attachments",
        "base_version", "supersedes", "changes", "submissions", "username", "password", "remember",
        "head_name", "phone", "pv_status", "stage", "capacity_kw", "members", "plots", "population",
        "category", "name", "sha256", "size", "type", "visit_date", "topics", "__proto__", ""]

wrong = st.one_of(st.sampled_from(WRONG), st.text(max_size=12).map(json.dumps),
                  st.integers(min_value=-2**70, max_value=2**70).map(str),
                  st.floats(allow_nan=False, allow_infinity=False).map(repr))
poison = st.one_of(st.sampled_from(POISON),
                   st.integers(1, 3).map(lambda n: '"' + "字" * (n * 40_000) + '"'),  # 120-360 kB
                   st.integers(33, 3000).map(lambda n: "[" * n + "]" * n))
good_key = st.one_of(st.sampled_from(KEYS), st.text(max_size=8)).map(json.dumps)
poison_key = st.sampled_from([good_key] * 6 + [st.just('"\\ud800"'), st.just('"\\udfff"')]).flatmap(lambda s: s)


def _object(children, key):
    return st.lists(st.tuples(key, children), max_size=5).map(
        lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}")


def _array(children):
    return st.lists(children, max_size=5).map(lambda xs: "[" + ",".join(xs) + "]")




def json_of(leaf, key):
    return st.recursive(leaf, lambda children: st.one_of(_object(children, key), _array(children)),
                        max_leaves=8)


# Three bodies in four are valid JSON of the wrong shape, so they get past the reader to the owners'
# checks; the fourth may hold poison anywhere.
wrong_json = json_of(wrong, good_key)
any_json = json_of(st.one_of(wrong, poison), poison_key)
json_text = st.sampled_from([wrong_json, wrong_json, wrong_json, any_json]).flatmap(lambda s: s)


def valid_visit_text(**replace):
    item = visit_item(uuid=new_uuid())
    fields = {k: json.dumps(v, ensure_ascii=False) for k, v in item.items()}
    fields.update(replace)
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"


@st.composite
def submissions_body(draw):
    shape = draw(st.sampled_from([0, 1, 2, 2, 3, 3, 3]))
    if shape == 0:
        return draw(json_text)
    if shape == 1:
        return '{"submissions":' + draw(json_text) + "}"
    items = []
    for _ in range(draw(st.integers(1, 3))):
        replace = draw(st.dictionaries(st.sampled_from(["uuid", "form", "form_version", "household_id",
                                                        "created_at", "answers", "attachments",
                                                        "base_version", "supersedes", "extra_key"]),
                                       json_text, max_size=3))
        if shape == 3:  # inside the answers
            answers = dict(visit_item()["answers"])
            text = {k: json.dumps(v, ensure_ascii=False) for k, v in answers.items()}
            text.update(draw(st.dictionaries(st.sampled_from(list(answers) + ["photo_1", "gps", "members",
                                                                              "unknown_q"]),
                                             json_text, max_size=3)))
            replace["answers"] = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in text.items()) + "}"
        items.append(valid_visit_text(**replace))
    return '{"submissions":[' + ",".join(items) + "]}"


@st.composite
def household_body(draw):
    if draw(st.integers(0, 3)) == 0:
        return draw(json_text)
    field = st.sampled_from(["head_name", "phone", "address", "group", "category", "population", "members",
                             "plots", "pv_status", "cadre_ids", "village_id", "version"]).map(json.dumps)
    changes = draw(st.lists(st.tuples(st.one_of(field, field, poison_key), json_text), max_size=4))
    body = '{"changes":{' + ",".join(f"{k}:{v}" for k, v in changes) + "}"
    if draw(st.booleans()):
        body += ',"base_version":' + draw(st.sampled_from([st.integers(0, 3).map(str)] * 3 + [json_text])
                                          .flatmap(lambda s: s))
    return body + "}"


@st.composite
def login_body(draw):
    if draw(st.integers(0, 3)) == 0:
        return draw(json_text)
    return ('{"username":' + draw(json_text) + ',"password":' + draw(json_text)
            + ',"remember":' + draw(json_text) + "}")


def maybe_broken(text, draw):
    raw = text.encode("utf-8")
    if draw(st.sampled_from([False] * 9 + [True])):  # bytes that are not UTF-8, or a truncated body
        raw = raw[: draw(st.integers(0, len(raw)))] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b""]))
    return raw


def check_reply(r):
    assert r.status_code < 500, (r.status_code, r.get_data()[:300])
    assert r.is_json, (r.status_code, r.mimetype, r.get_data()[:200])
    # the reply itself is strict JSON (no NaN), whatever was sent
    json.loads(r.get_data(as_text=True), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])


def send(api, method, url, raw, content_type="application/json", headers=None):
    return api.client.open(url, method=method, data=raw, content_type=content_type,
                           headers={"X-CSRFToken": api.token, **(headers or {})})


def a_valid_visit_is_still_acknowledged_and_readable(api):
    item = visit_item(uuid=new_uuid())
    r = api.post("/api/v1/submissions", {"submissions": [item]})
    assert r.status_code == 200 and r.get_json()["results"][0]["status"] == "created"
    r = api.get(f"/api/v1/submissions/{item['uuid']}")
    assert r.status_code == 200 and r.get_json()["answers"]["visit_type"] == "phone"
    assert api.get("/api/v1/households/v1-0001").status_code == 200


def logged_in_cadre(app):
    api = Api(app.test_client())
    assert api.login("cadre1").status_code == 200
    return api


def test_generated_json_never_breaks_the_phone_api(app):
    api = logged_in_cadre(app)

    @FUZZ
    @given(st.data())
    def run(data):
        endpoint = data.draw(st.sampled_from(["login", "submissions", "household", "faults"]))
        if endpoint == "login":
            r = send(api, "POST", "/login", maybe_broken(data.draw(login_body()), data.draw))
        elif endpoint == "submissions":
            r = send(api, "POST", "/api/v1/submissions", maybe_broken(data.draw(submissions_body()), data.draw))
        elif endpoint == "household":
            hid = data.draw(st.sampled_from(["v1-0001", "v1-0002", "v2-0001", "nothing", "%00"]))
            r = send(api, "PUT", f"/api/v1/households/{hid}", maybe_broken(data.draw(household_body()), data.draw))
        else:  # only tests/fault_app.py has it
            r = send(api, "POST", "/api/v1/_test/faults", maybe_broken(data.draw(json_text), data.draw))
            assert r.status_code == 404
        check_reply(r)

    run()
    a_valid_visit_is_still_acknowledged_and_readable(api)


@st.composite
def review_body(draw):
    if draw(st.integers(0, 4)) == 0:
        return draw(json_text)
    state = draw(st.sampled_from([json.dumps("approved")] + [json.dumps("has_issues")] * 3 + [None])) \
        or draw(json_text)
    parts = ['"state":' + state]
    if draw(st.booleans()):
        parts.append('"comment":' + draw(st.one_of(json_text, st.text(max_size=30).map(json.dumps))))
    if draw(st.booleans()):
        position = st.one_of(st.sampled_from(["0", "\u00b2", "-1", "00", "+0", " 0", "9999999999", "0x0",
                                              "\u0661", "1_0", ""]), st.text(max_size=3))
        path = st.one_of(position.map(lambda p: f"help_given.{p}.product"),
                         st.sampled_from(["present", "visit_type", "members.0.name", "section_visit",
                                          "a.b.c.d", "", "."])).map(json.dumps)
        comment = st.one_of(st.text(max_size=20).map(json.dumps), st.text(max_size=20).map(json.dumps), json_text)
        keys = draw(st.lists(st.tuples(st.one_of(path, path, poison_key), comment), max_size=4))
        parts.append('"fields":{' + ",".join(f"{k}:{v}" for k, v in keys) + "}")
    return "{" + ",".join(parts) + "}"


def test_generated_json_never_breaks_the_review_api(app):
    """The supervisor's JSON endpoint too: a decision with junk states, comments and field paths
    (repeat positions written in other digits, signs, huge numbers) is a 4xx JSON reply, and a
    valid decision still lands afterwards."""
    cadre = logged_in_cadre(app)
    item = visit_item(uuid=new_uuid(),
                      help_given=[{"product": "红薯", "quantity": 100, "unit": "斤", "price": 1.5}])
    r = cadre.post("/api/v1/submissions", {"submissions": [item]})
    assert r.get_json()["results"][0]["status"] == "created", r.get_json()
    supervisor = Api(app.test_client())
    assert supervisor.login("super").status_code == 200

    # every odd way of writing a repeat position, always tried (the fuzzing below draws them rarely)
    for position in ("\u00b2", "\u0661", "-1", "+0", " 0", "00", "0x0", "1_0", "9999999999", ""):
        r = supervisor.post(f"/api/v1/submissions/{item['uuid']}/review",
                            {"state": "has_issues", "fields": {f"help_given.{position}.product": "?"}})
        check_reply(r)
        assert r.status_code == 400, (position, r.get_json())

    @FUZZ
    @given(st.data())
    def run(data):
        target = data.draw(st.sampled_from([item["uuid"]] * 4 + ["nothing", "%00", new_uuid()]))
        r = send(supervisor, "POST", f"/api/v1/submissions/{target}/review",
                 maybe_broken(data.draw(review_body()), data.draw))
        check_reply(r)

    run()
    r = supervisor.post(f"/api/v1/submissions/{item['uuid']}/review", {"state": "approved"})
    assert r.status_code == 200
    assert cadre.get(f"/api/v1/submissions/{item['uuid']}").get_json()["review"]["state"] == "approved"


def test_junk_attachments_never_break_the_phone_api(app):
    api = logged_in_cadre(app)
    photo = jpeg_bytes()
    item = visit_item(uuid=new_uuid(), visit_type="home", photo_1="p1.jpg")
    item["attachments"] = [{"name": "p1.jpg", "sha256": hashlib.sha256(photo).hexdigest(),
                            "size": len(photo), "type": "image/jpeg"}]
    assert api.post("/api/v1/submissions", {"submissions": [item]}).get_json()["results"][0]["status"] == "created"

    @FUZZ
    @given(st.data())
    def run(data):
        body = data.draw(st.one_of(st.binary(max_size=2000), json_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                                   st.just(photo)))
        name = data.draw(st.sampled_from(["p1.jpg", "p2.jpg", "p1.jpg%0A", "..%2Fp1.jpg", "%E5%AD%97.jpg", "a" * 300]))
        sub = data.draw(st.sampled_from([item["uuid"], new_uuid(), "not-a-uuid"]))
        checksum = data.draw(st.one_of(st.just(hashlib.sha256(body).hexdigest()),
                                       st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=70)))
        content_type = data.draw(st.sampled_from(["application/octet-stream", "image/jpeg", "application/json",
                                                  "text/plain"]))
        r = send(api, "PUT", f"/api/v1/submissions/{sub}/attachments/{name}", body, content_type,
                 {"X-Content-SHA256": checksum})
        check_reply(r)

    run()
    r = send(api, "PUT", f"/api/v1/submissions/{item['uuid']}/attachments/p1.jpg", photo,
             "image/jpeg", {"X-Content-SHA256": hashlib.sha256(photo).hexdigest()})
    assert r.status_code == 200 and r.get_json()["status"] in ("stored", "duplicate")
    a_valid_visit_is_still_acknowledged_and_readable(api)


def test_a_storm_from_the_cadres_own_network_does_not_stop_the_cadres_phone(app):
    """Thirty wrong passwords for the account from the same address (one office network): a phone
    that logged in before still logs in at once; a browser that never did must wait."""
    phone = logged_in_cadre(app)
    phone.post("/logout", {})
    stranger = Api(app.test_client())
    stranger.csrf()
    for i in range(30):
        stranger.client.post("/login", json={"username": "cadre1", "password": f"junk-{i}"},
                             headers={"X-CSRFToken": stranger.token})
    assert phone.login("cadre1", PASSWORD).status_code == 200
    assert stranger.login("cadre1", PASSWORD).status_code == 429


# ---- no int()/float()/isdigit() on client text --------------------------------------------------------


def test_the_household_edit_page_refuses_nan_and_unicode_digits_in_plot_areas(app):
    api = logged_in_cadre(app)
    for area in ("nan", "inf", "1e999", "١٥", "１.５"):
        r = api.client.post("/households/v1-0001/edit", data={
            "csrf_token": api.token, "head_name": "张v11", "base_version": "1",
            "plots.0.name": "大田", "plots.0.area_mu": area})
        assert r.status_code == 400 and "面积须为数字" in r.get_data(as_text=True), area
    assert api.get("/api/v1/households/v1-0001").get_json()["plots"][0]["area_mu"] == 1.5


def test_a_roster_with_unicode_digits_is_reported_row_by_row_not_a_500():
    from server.services.roster import parse_roster
    text = "户主姓名,家庭人口,联系电话,组别\n张三,²,13800001234,²\n李四,١٢,13800001235,3\n"
    rows, errors = parse_roster("r.csv", text.encode())
    assert {e["row"] for e in errors} == {2, 3}
    assert all(e["column"] for e in errors)
