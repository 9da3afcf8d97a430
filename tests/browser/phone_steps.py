"""Steps the browser tests share: log in on the phone, wait for the offline shell, fill a visit the
way a cadre does (through the DOM test hooks of DESIGN.md), and read what the server holds.

Every wait is on a condition (a selector, an attribute of #sync-status, a URL), bounded by WAIT_MS,
so a broken app fails a test in seconds instead of hanging it."""

from PIL import Image

from tests.conftest import PASSWORD

WAIT_MS = 20_000
VISIT_DATE = "2025-10-08"  # in the past, as the form requires
STATUS = "#sync-status"


def open_page(ctx):
    """The phone's one tab (a persistent context starts with one), with the tests' timeouts."""
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.set_default_timeout(WAIT_MS)
    page.set_default_navigation_timeout(WAIT_MS)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.script_errors = errors  # uncaught exceptions in the app, for the tests to assert none
    return page


def fill_login(page, username):
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/app/**")


def log_in(page, base, username="cadre1"):
    """Logs in through the login page and waits for the app's first sync (households pulled)."""
    page.goto(base + "/login?next=/app/")
    fill_login(page, username)
    wait_synced(page)


def wait_synced(page):
    page.wait_for_selector(f"{STATUS}:not([data-last-sync=''])")


def wait_pending(page, n):
    page.wait_for_selector(f"{STATUS}[data-pending='{n}']")


def wait_synced_after(page, last_sync):
    """Waits for a sync that succeeded after `last_sync` (an earlier data-last-sync) and left
    nothing waiting: the attributes the static page starts with cannot satisfy it."""
    page.wait_for_function(
        """(before) => { const s = document.querySelector('#sync-status');
            return !!s && !!s.dataset.lastSync && s.dataset.lastSync > before
                && s.dataset.pending === '0' && s.dataset.state === 'idle'; }""", arg=last_sync)


def last_sync(page):
    return page.get_attribute(STATUS, "data-last-sync")


def pending(page):
    return page.get_attribute(STATUS, "data-pending")


def wait_service_worker(page, tries=5):
    """Waits until the service worker is active and controls this page (reloading if needed),
    so the app shell is cached and the app opens offline."""
    ready = page.evaluate("""(ms) => Promise.race([navigator.serviceWorker.ready.then(() => true),
        new Promise((resolve) => setTimeout(() => resolve(false), ms))])""", WAIT_MS)
    assert ready, "no active service worker"
    for _ in range(tries):
        if page.evaluate("navigator.serviceWorker.controller !== null"):
            return
        page.reload()
        page.wait_for_selector("#main :is(.hh-card, .page-title)")
    raise AssertionError("the service worker never took control of the app")


def open_new_form(page, base, household_id, form):
    page.goto(f"{base}/app/#/households/{household_id}/forms/{form}")
    page.wait_for_selector("form.form")
    page.wait_for_selector("[data-action=submit]")


# ---- forms in sections: one section shows at a time; the others' inputs stay in the page --------

def current_section(page):
    return page.get_attribute("form.form", "data-section")


def section_of(page, field):
    """The section holding the input named `field` (None on a form without sections)."""
    return page.evaluate("""(name) => { const el = document.querySelector(`[name="${name}"]`);
        const s = el && el.closest('section.form-section'); return s ? s.dataset.section : null; }""", field)


def open_section(page, section):
    """Jumps to a section the way a cadre does: the list of all sections, then the section."""
    if section is None or current_section(page) == section:
        return
    if page.get_attribute("details.section-menu", "open") is None:
        page.click("details.section-menu > summary")
    page.click(f"[data-action=goto-section][data-section={section}]")
    page.wait_for_selector(f"form.form[data-section={section}]")


def show(page, field):
    """Opens the section of `field` so the cadre (and Playwright) can reach its input."""
    open_section(page, section_of(page, field))


def fill(page, field, value):
    show(page, field)
    page.fill(f"[name='{field}']", value)


def check(page, field, value):
    show(page, field)
    page.check(f"input[name='{field}'][value='{value}']")


def small_jpeg(path, color=(120, 160, 90)):
    Image.new("RGB", (64, 48), color).save(path, "JPEG", quality=85)
    return str(path)


def add_photo(page, field, jpeg_path):
    show(page, field)
    page.set_input_files(f"input[name={field}]", jpeg_path)
    page.wait_for_selector(f"#f-{field} .photo-preview img")


def sign(page, field="signature"):
    """Draws two strokes on the signature pad and waits until the app stored the drawing."""
    show(page, field)
    pad = page.locator(f"#f-{field} canvas.sig-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 20, y + 40)
    page.mouse.down()
    page.mouse.move(x + 120, y + 90, steps=8)
    page.mouse.move(x + 220, y + 30, steps=8)
    page.mouse.up()
    page.mouse.move(x + 60, y + 80)
    page.mouse.down()
    page.mouse.move(x + 200, y + 80, steps=6)
    page.mouse.up()
    # a function, not a bare expression (evaluated with eval, which the pages' CSP forbids)
    page.wait_for_function(f"() => document.querySelector('input[name={field}]').value !== ''")


def add_member(page, index, member):
    show(page, "family_changes")
    page.click("[data-action=add-repeat][data-repeat=members]")
    page.fill(f"input[name='members.{index}.name']", member["name"])
    page.fill(f"input[name='members.{index}.relation']", member["relation"])
    page.check(f"input[name='members.{index}.sex'][value={member['sex']}]")
    if member.get("birth_year") is not None:
        page.fill(f"input[name='members.{index}.birth_year']", str(member["birth_year"]))


def fill_visit(page, *, visit_type="home", present="户主本人", topics=("income_jobs",),
               changes=("none",), members=(), photo=None, signature=False, visit_date=VISIT_DATE):
    """Fills the household visit form, section by section; `members` is the full member list
    (when changes != none)."""
    fill(page, "visit_date", visit_date)
    check(page, "visit_type", visit_type)
    fill(page, "present", present)
    for topic in topics:
        check(page, "topics", topic)
    for change in changes:
        check(page, "family_changes", change)
    for i, member in enumerate(members):
        add_member(page, i, member)
    check(page, "risk", "no")
    if photo:
        add_photo(page, "photo_1", photo)
    if signature:
        sign(page)


def submit(page):
    """Submits the open form; returns once the item is in the outbox (the app shows #/outbox)."""
    page.click("[data-action=submit]")
    page.wait_for_url("**#/outbox")


def press_sync(page):
    page.click("header [data-action=sync]")


def outbox_items(page):
    """The outbox as IndexedDB holds it (works on any page of the app's origin)."""
    return page.evaluate("""async () => {
        const { getDatabase } = await import('/app/js/db.js');
        return (await getDatabase().all('outbox')).map((i) => ({ uuid: i.uuid, state: i.state,
            household_id: i.household_id }));
    }""")


# ---- what the server holds ----------------------------------------------------------------------

def server_submissions(client, household_id):
    status, body = client.call("GET", f"/api/v1/submissions?household_id={household_id}")
    assert status == 200, body
    return body["submissions"]


def server_submission(client, uuid):
    status, body = client.call("GET", f"/api/v1/submissions/{uuid}")
    assert status == 200, body
    return body


def server_household(client, household_id):
    status, body = client.call("GET", f"/api/v1/households/{household_id}")
    assert status == 200, body
    return body


def set_faults(client, **counts):
    status, body = client.call("POST", "/api/v1/_test/faults", counts)
    assert status == 200, body
    return body


def cadre_client(server, username="cadre1"):
    """A cadre talking to the server directly (what another phone of theirs would send)."""
    from tests.live import Client
    c = Client(server.url)
    status, body = c.login(username, PASSWORD)
    assert status == 200, body
    return c


def post_visit(client, household_id, visit_date, *, followups=(), promises=(), present="户主本人"):
    """Sends a household visit (form version 2) straight to the server; returns its uuid."""
    import uuid
    answers = {"visit_date": visit_date, "visit_type": "home", "present": present,
               "topics": ["income_jobs"], "family_changes": ["none"], "risk": "no"}
    if followups:
        answers["followups"] = [{"action": a, "due_date": d} for a, d in followups]
    if promises:
        answers["promises"] = [{"followup_id": i, "status": s, "note": n} for i, s, n in promises]
    item = {"uuid": str(uuid.uuid4()), "form": "household_visit", "form_version": 2,
            "household_id": household_id, "created_at": f"{visit_date}T09:00:00+08:00", "answers": answers}
    status, body = client.call("POST", "/api/v1/submissions", {"submissions": [item]})
    assert status == 200 and body["results"][0]["status"] == "created", body
    return item["uuid"]


def goto(page, base, route):
    """Opens an app route (works offline once the service worker controls the page)."""
    page.goto(f"{base}/app/#{route}")
    page.wait_for_selector("#main .page-title")
