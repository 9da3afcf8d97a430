"""Fixtures: a real app over a real data folder in tmp_path, and a small known world in it."""

import os
import shutil
import sys

import pytest
from hypothesis import settings as hypothesis_settings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Property tests draw the same examples every run (a failure replays); HYPOTHESIS_PROFILE=explore
# draws new ones. Loaded before the test modules build their settings, which inherit it.
hypothesis_settings.register_profile("replay", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "replay"))

from tests import cheap_apps  # noqa: E402

cheap_apps.install()

from server import create_app  # noqa: E402
from server.core import clock  # noqa: E402
from server.records import households, users, villages  # noqa: E402
from server.store import close_app_store, get_store  # noqa: E402
from tests.helpers import app_config, reseed  # noqa: E402

PASSWORD = "correct-horse-42"
# Developers without PostgreSQL may opt out explicitly; otherwise (and always in CI) a cluster that
# cannot start fails every PostgreSQL test loudly instead of skipping it.
SKIP_POSTGRES = os.environ.get("JIEDUI_TEST_POSTGRES", "1") == "0"
STORES = ["tinydb", pytest.param("postgres", marks=pytest.mark.postgres)]
# The markers postgres and tinydb_only are declared in pyproject.toml ([tool.pytest.ini_options]).


def pytest_collection_modifyitems(config, items):
    """A tinydb_only test's PostgreSQL variant is not a test at all: deselect it. Tests marked slow
    go first (order otherwise kept), so with several workers (make test) the suite does not end
    with one worker still in a long test and the others idle."""
    drop = [i for i in items if i.get_closest_marker("tinydb_only") and i.get_closest_marker("postgres")]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [i for i in items if i not in drop]
    items.sort(key=lambda i: not i.get_closest_marker("slow"))


@pytest.fixture(scope="session")
def pg_cluster():
    """One PostgreSQL cluster for the whole run (tests/pg.py), stopped at the end."""
    if SKIP_POSTGRES:
        pytest.skip("JIEDUI_TEST_POSTGRES=0: PostgreSQL tests skipped on request")
    from tests.pg import Cluster, PostgresUnavailable
    try:
        cluster = Cluster().start()
    except PostgresUnavailable as e:
        pytest.fail(f"PostgreSQL could not be started for the tests: {e}\n"
                    f"(install it with `sh scripts/apt-ensure.sh postgresql`, or set "
                    f"JIEDUI_TEST_POSTGRES=0 to skip these tests on purpose)", pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster):
    """A URL to a fresh, empty schema of the session's cluster."""
    return pg_cluster.new_schema()


@pytest.fixture(params=STORES)
def store_kind(request):
    return request.param


@pytest.fixture
def database_url(store_kind, request):
    """None for the TinyDB store; a fresh PostgreSQL schema's URL for the other."""
    return request.getfixturevalue("pg_url") if store_kind == "postgres" else None


def seed_world(store):
    """Two villages, a few households, one account of each kind (plus a cadre per village)."""
    def write(tx):
        villages.put(tx, {"id": "v1", "name": "青石村", "township": "长寿镇", "county": "平江县"})
        villages.put(tx, {"id": "v2", "name": "白沙村", "township": "长寿镇", "county": "平江县"})
        for vid, n in (("v1", 3), ("v2", 2)):
            for i in range(1, n + 1):
                households.create(tx, "test", households.new_household(
                    vid, f"{vid}-{i:04d}", head_name=f"张{vid}{i}", phone="13800138000",
                    address=f"{i}号", group="1组", category="tuopin", population=3,
                    members=[{"name": f"张{vid}{i}", "relation": "户主", "sex": "male",
                              "birth_year": 1970, "health": "健康", "schooling": "初中", "work": "务农"}],
                    plots=[{"name": "大田", "area_mu": 1.5, "east": "水渠", "west": "村道",
                            "south": "李家", "north": "山林", "contract_signed": True}],
                    cadre_ids=[f"cadre{vid[1]}"], updated_at="2026-01-01T00:00:00+00:00"),
                    write_audit=False)
    store.write(write)
    users.create("cadre1", "cadre", PASSWORD, villages=["v1"], display_name="李干部",
                 unit="县农业农村局", store=store)
    users.create("cadre2", "cadre", PASSWORD, villages=["v2"], display_name="王干部",
                 unit="县委党校", store=store)
    users.create("super", "supervisor", PASSWORD, villages=["v1", "v2"], display_name="赵督导",
                 store=store)
    users.create("admin", "admin", PASSWORD, display_name="管理员", store=store)


@pytest.fixture(autouse=True)
def _seeded_ids(request):
    """Every test's ids (tests/helpers.new_uuid) start from its own node id: a run replays."""
    reseed(request.node.nodeid)


@pytest.fixture(scope="session")
def seeded_tinydb(tmp_path_factory):
    """copy_to(folder): the TinyDB data folder of seed_world, built once per session (and again
    should the local day turn, as seeding stamps today) and copied, as a test app left it on close:
    snapshots, catalogue, form archive, secret key. Seeding through an app was most of each test's
    set-up."""
    built = {}

    def copy_to(target):
        day = clock.today_iso()
        if day not in built:
            folder = tmp_path_factory.mktemp("seeded") / "data"
            app = create_app(app_config(folder))
            with app.app_context():
                seed_world(get_store())
            close_app_store(app)
            built[day] = folder
        shutil.copytree(built[day], target)
    return copy_to


@pytest.fixture
def app(tmp_path, database_url, request):
    """The app on each store: TinyDB in tmp_path (a copy of the session's seeded folder), and
    PostgreSQL (a fresh schema, seeded here) beside it. The store is open when the test starts."""
    config = app_config(tmp_path / "data")
    if database_url:
        config["DATABASE_URL"] = database_url
    else:
        request.getfixturevalue("seeded_tinydb")(tmp_path / "data")
    app = create_app(config)
    with app.app_context():
        if database_url:
            seed_world(get_store())
        else:
            get_store()
    yield app
    close_app_store(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Api:
    """Talks to the app as the phone does: CSRF token header, JSON bodies."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def csrf(self):
        self.token = self.client.get("/api/v1/csrf").get_json()["csrf_token"]
        return self.token

    def login(self, username, password=PASSWORD):
        self.csrf()
        r = self.client.post("/login", json={"username": username, "password": password,
                                             "remember": True}, headers={"X-CSRFToken": self.token})
        if r.status_code == 200:
            self.token = r.get_json()["csrf_token"]
        return r

    def post(self, url, body, **kw):
        return self.client.post(url, json=body, headers={"X-CSRFToken": self.token or self.csrf()}, **kw)

    def put(self, url, **kw):
        headers = kw.pop("headers", {})
        headers["X-CSRFToken"] = self.token or self.csrf()
        return self.client.put(url, headers=headers, **kw)

    def get(self, url, **kw):
        return self.client.get(url, **kw)


@pytest.fixture
def api(client):
    return Api(client)
