"""How the phone app is served on slow 3G: the shell gzipped with the policy every page sends, and
what the phone downloads on its first sync gzipped too, only when the phone says it accepts gzip."""

import gzip
import json
import os
import re
import shutil
import subprocess
import sys

from server.web.security import CONTENT_SECURITY_POLICY
from tests.conftest import Api


def test_the_shell_travels_gzipped_under_the_pages_policy(client):
    r = client.get("/app/", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(r.get_data()).decode()
    assert 'const HOME_MODULES = ["app", ' in html
    # the page policy, plus the hashes of the shell's own inline stylesheet and loader
    assert re.sub(r" 'sha256-[A-Za-z0-9+/=]+'", "", r.headers["Content-Security-Policy"]) == CONTENT_SECURITY_POLICY
    assert "<style>" in html and '<link rel="stylesheet"' not in html
    assert r.headers["Cache-Control"] == "no-cache"
    plain = client.get("/app/")
    assert "Content-Encoding" not in plain.headers and b"HOME_MODULES" in plain.get_data()


def test_the_phones_data_is_gzipped_only_when_asked(app):
    api = Api(app.test_client())
    api.login("cadre1")
    zipped = api.get("/api/v1/forms/household_visit", headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200 and zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    definition = json.loads(gzip.decompress(zipped.get_data()))
    assert definition["id"] == "household_visit"
    assert len(zipped.get_data()) * 3 < len(json.dumps(definition).encode())
    plain = api.get("/api/v1/forms/household_visit")
    assert "Content-Encoding" not in plain.headers and plain.get_json()["id"] == "household_visit"
    small = api.get("/api/v1/csrf", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers  # not worth it below a kilobyte


def js_strings(path):
    """The key: "text" pairs of one of the phone's string tables."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return dict(re.findall(r'^\s+([a-z_]+): "([^"\n]*)",?$', text, re.M))


def test_the_phone_names_categories_and_review_states_as_the_server_does():
    """One set of words: the phone's labels of household categories (both languages) and of review
    states (Chinese) are the server's (issue 10 found 'Poverty-alleviated' beside 'Out of poverty')."""
    from server.core.i18n import CATEGORY_LABELS
    from server.forms.labels import STATES
    zh, en = js_strings("static/js/i18n.js"), js_strings("static/js/i18n-en.js")
    for code, (zh_word, en_word) in CATEGORY_LABELS.items():
        assert zh[f"cat_{code}"] == zh_word and en[f"cat_{code}"] == en_word, code
    phone_states = {"received": "review_received", "has_issues": "review_issues",
                    "approved": "review_approved", "superseded": "review_superseded"}
    for code, key in phone_states.items():
        assert zh[key] == STATES[code][0], code


STATIC = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")


def phone_module(app):
    """The module that serves the phone app, found through its view (wherever the layout puts it)."""
    return sys.modules[app.view_functions["phone.shell"].__module__]


def served_list(text, name):
    return json.loads(re.search(rf"const {name} = (\[.*?\]|\{{.*?\}});", text, re.S).group(1))


def test_the_service_worker_precaches_every_module_the_icons_and_the_shell(client):
    """SHELL is derived from the files as the worker is served: nothing to keep by hand."""
    r = client.get("/app/sw.js")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"
    shell = served_list(r.get_data(as_text=True), "SHELL")
    modules = [os.path.relpath(os.path.join(d, f), STATIC).replace(os.sep, "/")
               for d, _, files in os.walk(os.path.join(STATIC, "js")) for f in files if f.endswith(".js")]
    assert any("/" in m[len("js/"):] for m in modules), "modules in folders under js/ are found too"
    icons = [f"icons/{f}" for f in os.listdir(os.path.join(STATIC, "icons"))]
    assert sorted(shell) == sorted(["/app/", "/app/manifest.webmanifest", "/app/css/app.css",
                                    *(f"/app/{rel}" for rel in modules + icons)])
    for url in shell:
        assert client.get(url).status_code == 200, url
    again = client.get("/app/sw.js", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


def test_the_service_workers_version_changes_with_any_precached_file(app, tmp_path):
    phone = phone_module(app)
    static = tmp_path / "static"
    shutil.copytree(STATIC, static)
    before = phone.built(str(static))
    assert re.fullmatch(r"[0-9a-f]{12}", before.version)
    assert f'const VERSION = "{before.version}";' in before.text["sw.js"]
    for rel in ["index.html", "css/app.css", "js/sync/outbox.js", "js/widgets/photo.js"]:
        path = static / rel
        path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
        after = phone.built(str(static))
        assert after.version != before.version, rel
        before = after


def test_the_page_preloads_the_home_screens_graph_and_each_screen_comes_with_its_imports(client):
    """HOME_MODULES (the page) and NEEDS (on-demand.js) are derived from the modules' imports: the
    home screen's modules are asked for at once, a screen opened later with everything it needs
    that the home screen did not load, so no module waits for another to be read."""
    phone = phone_module(client.application)
    home = served_list(client.get("/app/").get_data(as_text=True), "HOME_MODULES")
    needs = served_list(client.get("/app/js/on-demand.js").get_data(as_text=True), "NEEDS")
    built = phone.built(STATIC)
    assert home[0] == "app" and "sync" in home and "on-demand" in home
    graph = {phone._module(rel): [phone._module(m) for m in static] for rel, (static, _) in built.graph.items()}
    for name in home:
        assert set(graph[name]) <= set(home), f"{name} imports a module the page does not preload"
    screens = {"households-screen", "records-screen", "settings", "form-screen"}
    assert screens | {"answers", "sha256", "i18n-en"} <= set(needs)
    for root, modules in needs.items():
        assert root in modules and not set(modules) & set(home), root
        for name in modules:
            assert set(graph[name]) <= set(home) | set(modules), f"{root}: {name}'s imports are not fetched with it"
    assert {"form", "widgets/photo", "widgets/repeat"} <= set(needs["form-screen"])
    reachable = set(home).union(*needs.values())
    assert reachable == set(graph), f"neither preloaded nor loaded on demand: {set(graph) - reachable}"
    for rel, (static, _) in built.graph.items():
        with open(os.path.join(STATIC, rel), encoding="utf-8") as f:
            text = f.read()
        assert len(static) == text.count(' from "'), f"{rel}: an import the server does not read"
        if rel != "js/on-demand.js":
            assert "import(" not in text, f"{rel}: load modules with onDemand(), so what they need comes alongside"


def test_index_html_is_the_same_page_as_the_shell(client):
    page, named = client.get("/app/"), client.get("/app/index.html")
    assert named.status_code == 200 and named.get_data() == page.get_data()
    assert named.headers["Content-Security-Policy"] == page.headers["Content-Security-Policy"]


def test_what_the_first_screen_needs_stays_small(client):
    """The page and the modules it preloads for the home screen, gzipped as a phone gets them: the
    critical path on slow 3G. Screens opened later (forms, records, the lock's set-up) come on
    demand and count only in the whole shell's budget (tests/js/shell.test.js)."""
    import gzip
    page = client.get("/app/").get_data()
    home = served_list(page.decode("utf-8"), "HOME_MODULES")
    total = len(gzip.compress(page, 9))
    for name in home:
        with open(os.path.join(STATIC, "js", f"{name}.js"), "rb") as f:
            total += len(gzip.compress(f.read(), 9))
    assert total <= 60 * 1024, f"the first screen needs {total} bytes gzipped"


def test_a_phone_without_a_pin_starts_without_the_locks_code(client):
    """The app PIN's modules (the lock, its screens, the encryption) are not on the home screen's
    path: the page asks for them with the home modules only when the phone keeps a lock record,
    as it asks for the English texts only on a phone that reads English."""
    page = client.get("/app/").get_data(as_text=True)
    home = served_list(page, "HOME_MODULES")
    later = served_list(page, "LATER_MODULES")
    assert not {"lock", "lock-screen", "sealed", "vault", "i18n-en"} & set(home)
    assert later["english"] == ["i18n-en"]
    assert set(later["locked"]) == {"lock", "lock-screen", "sealed", "vault"}
    assert 'localStorage.getItem("jiedui.lock")' in page and 'localStorage.getItem("jiedui.lang")' in page
    needs = served_list(client.get("/app/js/on-demand.js").get_data(as_text=True), "NEEDS")
    assert set(needs["lock-screen"]) == {"lock-screen", "sealed", "vault"}  # the PIN screen brings the encryption


def test_modules_travel_without_their_comments_and_still_parse(client, tmp_path):
    """Whole-line comments are left home (a quarter of the start's gzipped bytes); the code is the
    same line for line (an error's line number is the file's), and node parses every served module."""
    served_dir = tmp_path / "served"
    for rel in sorted(phone_module(client.application).built(STATIC).text):
        if not rel.startswith("js/"):
            continue
        r = client.get(f"/app/{rel}")
        assert r.status_code == 200 and r.mimetype == "text/javascript", rel
        served = r.get_data(as_text=True)
        with open(os.path.join(STATIC, rel), encoding="utf-8") as f:
            source = f.read()
        assert served.count("\n") == source.count("\n"), rel
        for mine, theirs in zip(served.split("\n"), source.split("\n")):
            stripped = theirs.strip()
            if mine != theirs:  # blanked: a comment line, or a placeholder filled in
                assert mine == "" and (stripped.startswith(("//", "/*", "*")) or stripped.endswith("*/")) \
                    or rel == "js/on-demand.js" and "NEEDS" in theirs, (rel, theirs)
        target = served_dir / rel.replace(".js", ".mjs")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(served, encoding="utf-8")
    node = shutil.which("node")
    if node:
        for path in sorted(served_dir.rglob("*.mjs")):
            done = subprocess.run([node, "--check", str(path)], capture_output=True, text=True)
            assert done.returncode == 0, (path.name, done.stderr)
    page = client.get("/app/js/app.js")
    again = client.get("/app/js/app.js", headers={"If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304 and page.headers["Cache-Control"] == "no-cache"
    assert "// " not in client.get("/app/js/db.js").get_data(as_text=True).split("\n")[0]
