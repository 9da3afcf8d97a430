"""A lost phone gives nothing away (issue 24, item 4), on a 360x740 phone: where the county
requires an app PIN, the cadre sets one at login, what IndexedDB holds is ciphertext (read raw
from the page: no household name in it), the app locks on start and after idle minutes, ten wrong
PINs erase the pulled data but keep the unsent visit for a fresh login; and a deactivation that
asks for it makes the phone send what is unsent, erase itself and say so in the audit log."""

import json
import urllib.parse

import pytest

from tests.browser.phone_steps import (
    fill_visit,
    open_new_form,
    open_page,
    server_submissions,
    set_faults,
    submit,
    wait_pending,
    wait_synced,
)
from tests.conftest import PASSWORD
from tests.live import Client, LiveServer, seed

PIN = "258036"
NAMES = ["张v11", "张v12", "张v13"]  # the head names of village v1's households (tests/conftest.py)
LOCK = "#lock-screen"

# Every store and localStorage as they lie on the phone: sealed records' bytes as text (latin1,
# so any UTF-8 name inside would show), everything else as JSON.
RAW = """async () => {
  const db = await new Promise((ok, ko) => { const r = indexedDB.open('jiedui'); r.onsuccess = () => ok(r.result); r.onerror = () => ko(r.error); });
  const out = {};
  const text = (v) => {
    if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return String.fromCharCode(...new Uint8Array(v.buffer || v));
    if (v instanceof Blob) return '[blob]';
    if (Array.isArray(v)) return v.map(text);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, text(x)]));
    return v;
  };
  for (const name of db.objectStoreNames) {
    const tx = db.transaction(name);
    const [keys, values] = await Promise.all([tx.objectStore(name).getAllKeys(), tx.objectStore(name).getAll()]
      .map((q) => new Promise((ok) => { q.onsuccess = () => ok(q.result); })));
    out[name] = keys.map((k, i) => [k, values[i] && values[i]['jiedui-sealed'] === 1, JSON.stringify(text(values[i]))]);
  }
  db.close();
  const local = {};
  for (let i = 0; i < localStorage.length; i++) local[localStorage.key(i)] = localStorage.getItem(localStorage.key(i));
  return { stores: out, local };
}"""


def raw(page):
    return page.evaluate(RAW)


@pytest.fixture
def lock_server(tmp_path, request):
    """The server of a county that requires the app PIN (idle minutes from the test's marker)."""
    idle = getattr(request, "param", "5")
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    live = LiveServer(data, faults=True, extra_env={"JIEDUI_PHONE_LOCK": "1",
                                                    "JIEDUI_PHONE_LOCK_IDLE_MINUTES": idle}).start()
    yield live
    live.stop()


def login_and_set_pin(page, base, username="cadre1"):
    page.goto(base + "/login?next=/app/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/app/**")
    page.wait_for_selector(f"{LOCK}[data-lock=setup]")
    page.fill("input[name=pin]", "12345")  # too short
    page.fill("input[name=pin2]", "12345")
    page.click("[data-action=set-pin]")
    page.wait_for_selector(f"{LOCK} .error:has-text('6')")
    page.fill("input[name=pin]", PIN)
    page.fill("input[name=pin2]", PIN)
    page.click("[data-action=set-pin]")


def enter_pin(page, pin):
    page.fill(f"{LOCK} input[name=pin]", pin)
    page.click("[data-action=unlock]")


def test_a_pin_set_at_login_keeps_indexeddb_ciphertext_and_locks_on_start(lock_server, launch_phone):
    page = open_page(launch_phone("pin"))
    login_and_set_pin(page, lock_server.url)
    wait_synced(page)
    page.goto(lock_server.url + "/app/#/households")
    page.wait_for_selector(f".hh-card:has-text('{NAMES[0]}')")
    held = raw(page)
    assert len(held["stores"]["households"]) == 3
    everything = json.dumps(held, ensure_ascii=False)
    for name in NAMES + ["13800138000", "李干部"]:
        assert name not in everything, name
    for store, rows in held["stores"].items():
        assert all(sealed for _key, sealed, _text in rows), (store, rows)
    assert set(held["local"]) >= {"jiedui.lock", "jiedui.device"}
    lock_record = json.loads(held["local"]["jiedui.lock"])
    assert lock_record["iterations"] == 200000 and lock_record["idle_minutes"] == 5

    page.reload()  # the app locks on start: nothing of the households before the PIN
    page.wait_for_selector(f"{LOCK}[data-lock=unlock]")
    assert not any(name in page.content() for name in NAMES)
    assert page.is_hidden("nav.tabs") and page.is_hidden("header [data-action=sync]")
    enter_pin(page, "000000")
    page.wait_for_selector(f"{LOCK} .error[data-left='9']")
    enter_pin(page, PIN)
    page.wait_for_selector(LOCK, state="detached")
    page.goto(lock_server.url + "/app/#/households")
    page.wait_for_selector(f".hh-card:has-text('{NAMES[0]}')")

    # A new PIN rewraps the key: the records stay as they were, and only the new PIN opens them.
    before = raw(page)["stores"]["households"]
    page.goto(lock_server.url + "/app/#/settings")
    page.click("[data-action=change-pin]")
    page.fill("input[name=old_pin]", PIN)
    page.fill("input[name=new_pin]", "147258")
    page.fill("input[name=new_pin2]", "147258")
    page.click("[data-action=save-pin]")
    page.wait_for_selector("[data-section=pin] form", state="hidden")
    assert raw(page)["stores"]["households"] == before
    page.reload()
    page.wait_for_selector(f"{LOCK}[data-lock=unlock]")
    enter_pin(page, PIN)
    page.wait_for_selector(f"{LOCK} .error[data-left='9']")
    enter_pin(page, "147258")
    page.wait_for_selector(LOCK, state="detached")
    assert page.script_errors == []


@pytest.mark.parametrize("lock_server", ["0.05"], indirect=True)
def test_the_app_locks_after_idle_minutes(lock_server, launch_phone):
    page = open_page(launch_phone("idle"))
    login_and_set_pin(page, lock_server.url)  # 3 s without a touch locks the app
    page.wait_for_selector(f"{LOCK}[data-lock=unlock]")
    assert not any(name in page.content() for name in NAMES)
    enter_pin(page, PIN)
    page.wait_for_selector(LOCK, state="detached")
    page.wait_for_selector("#main .page-title")
    page.wait_for_selector(f"{LOCK}[data-lock=unlock]")  # and again, once idle again
    assert not any(name in page.content() for name in NAMES)
    assert page.script_errors == []


def test_ten_wrong_pins_erase_the_pulled_data_and_keep_the_unsent_visit(lock_server, launch_phone):
    client = Client(lock_server.url)
    client.login("cadre1", PASSWORD)
    page = open_page(launch_phone("wrong"))
    login_and_set_pin(page, lock_server.url)
    wait_synced(page)
    set_faults(client, fail_before_store=1000)  # the visit cannot leave yet
    open_new_form(page, lock_server.url, "v1-0001", "household_visit")
    fill_visit(page, present="户主本人王某")
    submit(page)
    wait_pending(page, 1)

    page.reload()
    page.wait_for_selector(f"{LOCK}[data-lock=unlock]")
    for left in range(9, 0, -1):
        enter_pin(page, "111111")
        page.wait_for_selector(f"{LOCK} .error[data-left='{left}']")
    enter_pin(page, "111111")
    page.wait_for_selector(f"{LOCK}[data-lock=login]")
    page.wait_for_selector(f"{LOCK} [data-state=login]")  # the old login was ended
    held = raw(page)
    for store in ("households", "drafts", "sent", "meta"):
        assert held["stores"][store] == [], store
    assert [sealed for _k, sealed, _t in held["stores"]["outbox"]] == [True]
    assert "王某" not in json.dumps(held, ensure_ascii=False)

    # Only a fresh login with the password lets the PIN be tried again; then the visit goes.
    set_faults(client, fail_before_store=0)
    page.click(f"{LOCK} [data-action=login]")
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", "cadre1")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector(f"{LOCK}[data-lock=unlock]")
    enter_pin(page, PIN)
    page.wait_for_selector(LOCK, state="detached")
    wait_synced(page)
    wait_pending(page, 0)
    supervisor = Client(lock_server.url)
    supervisor.login("super", PASSWORD)
    assert [s["answers"]["present"] for s in server_submissions(supervisor, "v1-0001")] == ["户主本人王某"]
    assert page.script_errors == []


@pytest.mark.parametrize("with_pin", [True, False], ids=["pin", "no-pin"])
def test_deactivation_with_erase_sends_the_unsent_visit_then_erases_the_phone(with_pin, request, launch_phone):
    live = request.getfixturevalue("lock_server" if with_pin else "server")
    cadre = Client(live.url)
    cadre.login("cadre1", PASSWORD)
    page = open_page(launch_phone("erase"))
    if with_pin:
        login_and_set_pin(page, live.url)
    else:
        page.goto(live.url + "/login?next=/app/")
        page.fill("input[name=username]", "cadre1")
        page.fill("input[name=password]", PASSWORD)
        page.click("form button[type=submit]")
    wait_synced(page)
    page.wait_for_function("() => !!localStorage.getItem('jiedui.device')")
    # The logged-in push fails from here on: only the device token's last push can carry the visit.
    set_faults(cadre, fail_before_store=1000)
    open_new_form(page, live.url, "v1-0002", "household_visit")
    fill_visit(page, present="最后一次走访")
    submit(page)
    wait_pending(page, 1)

    admin = Client(live.url)
    admin.login("admin", PASSWORD)
    status, body = admin.call("POST", "/admin/users/cadre1", urllib.parse.urlencode(
        {"action": "deactivate", "erase_phones": "1"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and "清除" in body.decode()

    page.click("header [data-action=sync]")  # the next contact: 401, then the erase
    page.wait_for_selector(f"{LOCK}[data-lock=erased]")
    held = raw(page)
    assert all(rows == [] for rows in held["stores"].values()), held["stores"]
    assert "jiedui.lock" not in held["local"] and "jiedui.device" not in held["local"]
    assert not any(k.startswith("jiedui.journal.") for k in held["local"])
    supervisor = Client(live.url)
    supervisor.login("super", PASSWORD)
    assert [s["answers"]["present"] for s in server_submissions(supervisor, "v1-0002")] == ["最后一次走访"]
    status, audit_page = admin.call("GET", "/admin/audit?action=phone_erased")
    assert status == 200 and audit_page.decode().count('<td data-label="操作">手机已清除</td>') == 1
    page.reload()  # nothing comes back: the login page or an empty app, never the old data
    page.wait_for_load_state()
    assert not any(name in page.content() for name in NAMES)
    assert page.script_errors == []


def test_a_locked_phone_asked_to_erase_sends_after_the_pin_then_erases(lock_server, launch_phone):
    cadre = Client(lock_server.url)
    cadre.login("cadre1", PASSWORD)
    page = open_page(launch_phone("locked-erase"))
    login_and_set_pin(page, lock_server.url)
    wait_synced(page)
    page.wait_for_function("() => !!localStorage.getItem('jiedui.device')")
    set_faults(cadre, fail_before_store=1000)
    open_new_form(page, lock_server.url, "v1-0003", "household_visit")
    fill_visit(page, present="锁着的手机")
    submit(page)
    wait_pending(page, 1)
    admin = Client(lock_server.url)
    admin.login("admin", PASSWORD)
    status, _body = admin.call("POST", "/admin/users/cadre1", urllib.parse.urlencode(
        {"action": "deactivate", "erase_phones": "1"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200

    page.reload()  # locked at start; the erase check needs no PIN and no session
    page.wait_for_selector(f"{LOCK}[data-lock=erase]")
    assert not any(name in page.content() for name in NAMES)
    enter_pin(page, PIN)  # the cadre's PIN sends the visit first
    page.wait_for_selector(f"{LOCK}[data-lock=erased]")
    assert all(rows == [] for rows in raw(page)["stores"].values())
    supervisor = Client(lock_server.url)
    supervisor.login("super", PASSWORD)
    assert [s["answers"]["present"] for s in server_submissions(supervisor, "v1-0003")] == ["锁着的手机"]
    assert page.script_errors == []
