"""Issue 9 finding 6: login throttling slows a guesser without locking the real user out, keeps memory
bounded, and trusts X-Forwarded-For only as far as JIEDUI_PROXY_HOPS says."""

import pytest

from server import create_app
from server.store import close_app_store, get_store
from server.web.throttle import LoginThrottle
from tests.conftest import PASSWORD, Api, seed_world
from tests.helpers import app_config


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(app):
    fake = FakeClock()
    app.extensions["jiedui_login_throttle"].clock = fake
    return fake


def client_at(app, address=None, forwarded_for=None):
    client = app.test_client()
    if address:
        client.environ_base["REMOTE_ADDR"] = address
    api = Api(client)
    if forwarded_for:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return api


def test_a_stranger_hammering_an_account_does_not_stop_its_owner_logging_in(app, clock):
    stranger = client_at(app, "203.0.113.9")
    statuses = [stranger.login("cadre1", f"guess-{i}").status_code for i in range(60)]
    assert statuses.count(401) >= 5 and 429 in statuses  # the guesser is slowed down
    owner = client_at(app, "198.51.100.7")
    assert owner.login("cadre1").status_code == 200


def test_an_owner_who_mistyped_is_still_let_in_from_a_phone_that_logged_in_before(app, clock):
    phone = client_at(app, "198.51.100.7")
    assert phone.login("cadre1").status_code == 200
    phone.post("/logout", {})
    for i in range(12):  # a guesser from many addresses keeps the account's delay up
        client_at(app, f"203.0.113.{i}").login("cadre1", "guess")
        client_at(app, f"203.0.113.{i}").login("cadre1", "guess again")
    assert phone.login("cadre1", "typo-typo").status_code == 401  # the owner's address isn't clean now
    assert phone.login("cadre1").status_code == 200  # ... but the phone is trusted (device cookie)
    newcomer = client_at(app, "198.51.100.7")  # same address, no device cookie: the account delay
    assert newcomer.login("cadre1").status_code == 429


def test_delays_grow_and_end_rather_than_a_ten_minute_lock(app, clock):
    guesser = client_at(app, "203.0.113.9")
    waits = []
    for i in range(8):
        r = guesser.login("cadre2", f"nope-{i}")
        if r.status_code == 429:
            wait = r.get_json()["retry_after"]
            assert r.headers["Retry-After"] == str(wait)
            waits.append(wait)
            clock.now += wait  # wait as told, then try again
            assert guesser.login("cadre2", f"nope-{i}").status_code == 401
    assert waits and waits == sorted(waits) and waits[-1] > waits[0], waits
    assert max(waits) <= 60
    clock.now += 61
    assert guesser.login("cadre2").status_code == 200  # the right password after the wait


def test_failures_are_forgotten_after_a_quarter_of_an_hour(app, clock):
    guesser = client_at(app, "203.0.113.9")
    for i in range(6):
        guesser.login("cadre2", "wrong-wrong")
    assert guesser.login("cadre2").status_code == 429
    clock.now += 15 * 60 + 1
    assert guesser.login("cadre2").status_code == 200


def test_unknown_usernames_are_throttled_alike_so_429_reveals_no_account(app, clock):
    def statuses(name):
        guesser = client_at(app, "203.0.113.50")
        return [guesser.login(name, "wrong-wrong").status_code for _ in range(9)]
    real = statuses("cadre2")
    clock.now += 3600
    assert statuses("nobody.here") == real


def test_the_throttle_keeps_bounded_memory_and_never_stores_long_names(app, clock):
    throttle = app.extensions["jiedui_login_throttle"]
    small = LoginThrottle(clock=clock, max_keys=50)
    for i in range(500):
        attempt, _ = small.begin(f"10.0.{i // 250}.{i % 250}", f"user{i}")
        attempt.failed()
    assert small.size() <= 4 * 50
    guesser = client_at(app, "203.0.113.9")
    for i in range(30):
        r = guesser.login(("x" * 33) + str(i), "wrong-wrong")
        assert r.status_code in (401, 429)
    keys = [k for m in (throttle.accounts, throttle.unknown_accounts) for k in m._items]
    assert all(len(k) <= 32 for k in keys)


def make_app(tmp_path, hops):
    app = create_app(app_config(str(tmp_path / "data"), PROXY_HOPS=hops))
    with app.app_context():
        seed_world(get_store())
    return app


def test_behind_one_proxy_the_address_comes_from_x_forwarded_for(tmp_path):
    app = make_app(tmp_path, 1)
    try:
        for _ in range(60):  # every request arrives from the proxy, 127.0.0.1
            client_at(app, "127.0.0.1", "203.0.113.9").login("admin", "guess-guess")
        owner = client_at(app, "127.0.0.1", "198.51.100.7")
        assert owner.login("admin").status_code == 200
        assert client_at(app, "127.0.0.1", "203.0.113.9").login("admin").status_code == 429
    finally:
        close_app_store(app)


def test_without_proxy_hops_a_forged_x_forwarded_for_changes_nothing(tmp_path):
    app = make_app(tmp_path, 0)
    try:
        statuses = [client_at(app, "203.0.113.9", f"10.9.{i}.1").login("nobody.x", "guess").status_code
                    for i in range(15)]
        assert 429 in statuses  # a new forged address each time did not make a new client
    finally:
        close_app_store(app)


def test_proxy_hops_setting_is_checked():
    from server.web.security import proxy_hops
    assert proxy_hops(None) == 0 and proxy_hops("") == 0 and proxy_hops("2") == 2
    for bad in ("²", "-1", "one", "9"):
        with pytest.raises(ValueError):
            proxy_hops(bad)


def test_a_form_login_that_is_throttled_shows_the_wait_on_the_page(app, clock):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    token = client.get("/api/v1/csrf").get_json()["csrf_token"]
    for _ in range(7):
        r = client.post("/login", data={"username": "cadre1", "password": "nope-nope", "csrf_token": token})
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert "秒后再试" in r.get_data(as_text=True)
    assert Api(app.test_client()).login("cadre1", PASSWORD).status_code == 200
