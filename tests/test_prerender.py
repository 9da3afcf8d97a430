"""Profiles ready before anyone prints (issue 14 #3): a household whose data changed is re-rendered
in the background once it has been still for PRINT_IDLE_SECONDS, so its print comes from the cache;
the background printer stands aside while people print, and remembers what it saw across restarts.
Rounds are driven with explicit times (`step(now)`), so nothing here waits on a clock."""

import os

import pytest

from server import create_app
from server.printing import jobs, prerender
from server.printing.jobs import cache_dir
from server.store import close_app_store, get_store
from tests.conftest import Api, seed_world
from tests.helpers import app_config, visit2


def cached(app, household="v1-0001"):
    folder = cache_dir(app.config["FILES_DIR"], household.split("-")[0])
    return [n for n in os.listdir(folder) if n.startswith(household + "_")] if os.path.isdir(folder) else []


@pytest.fixture
def printer(app):
    app.config["PUBLIC_BASE_URL"] = "https://jiedui.example.test"   # the QR link, as deployed
    p = prerender.Prerenderer(app, idle=60, poll=0)
    yield p
    jobs.discard_background_pool()


@pytest.mark.slow
def test_a_changed_household_is_rendered_once_it_has_been_still(app, api, printer):
    printer.step(0)                                   # first round: notes where the store stands
    api.login("cadre1")
    assert api.post("/api/v1/submissions", {"submissions": [visit2(notes="第一次")]}).status_code == 200
    assert printer.step(10) is False                  # changed at 10: not still long enough
    assert list(printer.pending) == ["v1-0001"]
    api.post("/api/v1/submissions", {"submissions": [visit2(notes="第二次")]})
    assert printer.step(50) is False                  # changed again at 50: the clock restarts
    assert printer.step(105) is False and cached(app) == []
    assert printer.step(111) is True                  # still for 61 s: rendered, by the background pool
    assert printer.pending == {} and printer.rendered == 1 and len(cached(app)) == 1
    r = api.get("/households/v1-0001/profile.pdf")
    assert r.status_code == 200 and r.headers["X-Profile-Cache"] == "hit"
    assert printer.step(500) is False                 # nothing changed since: nothing to do
    assert printer.rendered == 1


def test_it_stands_aside_while_people_print(app, api, printer):
    printer.step(0)
    api.login("cadre1")
    api.post("/api/v1/submissions", {"submissions": [visit2()]})
    printer.step(10)
    jobs.lane.enter(10)                               # a single print is waiting for the workers
    try:
        assert printer.step(100) is False
        assert printer.stood_aside == 1 and list(printer.pending) == ["v1-0001"]
    finally:
        jobs.lane.leave()
    assert printer.step(101) is True and printer.rendered == 1


def test_what_it_saw_survives_a_restart(app, api, printer):
    printer.step(0)
    api.login("cadre1")
    api.post("/api/v1/submissions", {"submissions": [visit2(household="v1-0002")]})
    printer.step(1)
    assert list(printer.pending) == ["v1-0002"]
    again = prerender.Prerenderer(app, idle=0, poll=0)    # the server restarted before rendering
    assert list(again.pending) == ["v1-0002"] and again.cursors == printer.cursors
    assert again.step(2) is True and len(cached(app, "v1-0002")) == 1


def test_a_push_landing_while_the_first_round_reads_is_noted(app, api, printer):
    """A server's first request starts the printer; a push at that moment is not taken for old."""
    store = app.extensions["jiedui_store"]
    api.login("cadre1")

    class PushedWhileListed:  # the real store; a phone's push lands as the printer lists villages
        def __getattr__(self, name):
            return getattr(store, name)

        def village_ids(self):
            ids = store.village_ids()
            assert api.post("/api/v1/submissions", {"submissions": [visit2()]}).status_code == 200
            return ids
    with app.app_context():
        printer.scan(PushedWhileListed(), 0)
        printer.scan(store, 1)
    assert list(printer.pending) == ["v1-0001"]


def test_the_server_renders_ahead_on_its_own(tmp_path):
    """The real thing: the background thread starts with the server's first request."""
    app = create_app(app_config(tmp_path / "data", PRINT_PRERENDER=True, PRINT_IDLE_SECONDS=0,
                                PRINT_POLL_SECONDS=0.05))
    with app.app_context():
        seed_world(get_store())
    try:
        api = Api(app.test_client())
        api.login("cadre1")
        first = api.get("/households/v1-0002/profile.pdf")           # starts it; its QR link is
        assert first.status_code == 200                              # the address people print from
        printer = prerender.start(app)
        assert printer.wait_until(lambda p: p.cursors, 30)          # it has read where the store is
        pushed = api.post("/api/v1/submissions", {"submissions": [visit2(household="v1-0003")]})
        assert pushed.status_code == 200
        assert printer.wait_until(lambda p: p.rendered >= 1 and not p.pending, 120)
        r = api.get("/households/v1-0003/profile.pdf")
        assert r.headers["X-Profile-Cache"] == "hit"
    finally:
        prerender.stop(app)
        close_app_store(app)
