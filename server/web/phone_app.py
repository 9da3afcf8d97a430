"""Serves the phone app (static/) under /app/, with the headers its service worker needs, and
gzips what a phone downloads (the shell, and the data of its first sync) when it accepts gzip."""

import base64
import gzip
import hashlib
import json
import os
import posixpath
import re

from flask import Blueprint, current_app, redirect, request, send_from_directory

from server.web.security import policy_allowing

bp = Blueprint("phone", __name__)

COMPRESSIBLE = ("text/html", "text/css", "text/javascript", "application/javascript",
                "application/json", "application/manifest+json")


@bp.get("/app")
def app_no_slash():
    return redirect("/app/")


STYLESHEET_LINK = '<link rel="stylesheet" href="/app/css/app.css">'
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)

# The one list of what a phone keeps for offline use, besides the page itself (/app/): files, and
# folders taken whole, under static/. The service worker's list, the page's preloads and the
# imports each module loaded on demand brings are all derived from these files as they are
# served (see Built): no module list is kept by hand.
PRECACHED = ("manifest.webmanifest", "css/app.css", "icons/", "js/")
HOME = "js/app.js"  # the module the page starts; its static imports are preloaded with it
# What the served files say instead of their placeholders (each must be in the file once).
FILLED = {
    "index.html": ("const HOME_MODULES = [];\n  const LATER_MODULES = {};",
                   "const HOME_MODULES = {home};\n  const LATER_MODULES = {later};"),
    "sw.js": ('const VERSION = "";\nconst SHELL = [];', "const VERSION = {version};\nconst SHELL = {shell};"),
    "js/on-demand.js": ("const NEEDS = {};", "const NEEDS = {needs};"),
}
_STATIC_IMPORT = re.compile(r'^(?:import|export)\s(?:[^;"]*?\sfrom\s+)?"(\.\.?/[^"]+)";', re.M)
_ON_DEMAND = re.compile(r'\bonDemand\(\s*"([^"]+)"\s*\)')
_built = (None, None)  # (what it was built from, Built): replaced whole, never edited


class Built:
    """What the phone is served from static/ that is not a file as it is: the page (app.css inline,
    HOME_MODULES, LATER_MODULES), the service worker (SHELL, VERSION) and on-demand.js (NEEDS)."""

    def __init__(self, static_dir, files):
        texts = {rel: _read(static_dir, rel) for rel in files if rel.endswith(".js")}
        graph = {rel: imports for rel, imports in ((rel, _imports(rel, texts[rel])) for rel in texts)}
        home = _closure(graph, [HOME])
        roots = sorted({root for _, lazy in graph.values() for root in lazy})
        needs = {_module(root): sorted(_module(m) for m in _closure(graph, [root]) - home) for root in roots}
        shell = ["/app/", *(f"/app/{rel}" for rel in files)]
        digest = hashlib.sha256()
        for rel in ["index.html", *files]:
            with open(os.path.join(static_dir, rel), "rb") as f:
                digest.update(f.read())
        self.version = digest.hexdigest()[:12]
        self.home = [_module(HOME), *sorted(_module(m) for m in home - {HOME})]
        self.needs, self.shell, self.graph = needs, shell, graph
        # What the page asks for beside the home modules when it knows the start will need it: the
        # English texts on a phone that reads English, the lock's modules on a phone with a PIN.
        # Otherwise each would be one more round trip after app.js has run (seconds on slow 3G).
        self.later = {"english": needs.get("i18n-en", []),
                      "locked": sorted({*needs.get("lock", []), *needs.get("lock-screen", [])})}
        values = {"home": json.dumps(self.home), "later": json.dumps(self.later),
                  "version": json.dumps(self.version),
                  "shell": json.dumps(shell, indent=2), "needs": json.dumps(needs)}
        self.text = {}
        for rel, (placeholder, filled) in FILLED.items():
            source = _read(static_dir, rel)
            if source.count(placeholder) != 1:
                raise RuntimeError(f"static/{rel} lost its {placeholder!r}")
            self.text[rel] = source.replace(placeholder, filled.format(**values))
        for rel, source in texts.items():  # every module as served: its comments left home
            self.text[rel] = _without_comments(self.text.get(rel, source))
        css = _read(static_dir, "css/app.css")
        if STYLESHEET_LINK not in self.text["index.html"]:
            raise RuntimeError(f"index.html lost its {STYLESHEET_LINK}")
        html = self.text["index.html"].replace(STYLESHEET_LINK, f"<style>{css}</style>", 1)
        inline = _INLINE.findall(html)
        self.policy = policy_allowing(styles=[_sha256(body) for kind, body in inline if kind == "style"],
                                      scripts=[_sha256(body) for kind, body in inline if kind == "script"])
        self.text["index.html"] = html
        self.etag = {rel: hashlib.sha256(text.encode()).hexdigest()[:20] for rel, text in self.text.items()}


def _without_comments(text):
    """A module as the phone gets it: whole-line comments (// lines, /* */ blocks standing on their
    own lines) blanked. They are a quarter of what the home screen's modules weigh gzipped (prose
    compresses poorly), and on slow 3G every kilobyte is 20 ms. The line breaks stay, so a line
    number in an error is the file's. Only whole lines, so a "//" or "/*" inside a string is never
    touched; a module with a string that spans lines (a template or a backslash) is sent as it is."""
    lines = text.split("\n")
    if any(line.count("`") % 2 or line.endswith("\\") for line in lines):
        return text
    out, i = [], 0
    while i < len(lines):
        head = lines[i].lstrip()
        if head.startswith("//"):
            out.append("")
            i += 1
            continue
        if head.startswith("/*"):
            end = i if "*/" in head[2:] else next((j for j in range(i + 1, len(lines)) if "*/" in lines[j]), None)
            if end is not None and lines[end].rstrip().endswith("*/") and lines[end].count("*/") == 1 \
                    and (end > i or head.count("*/") == 1):
                out.extend([""] * (end - i + 1))
                i = end + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _read(static_dir, rel):
    with open(os.path.join(static_dir, rel), encoding="utf-8") as f:
        return f.read()


def _module(rel):
    """js/sync/outbox.js -> "sync/outbox": how the page and on-demand.js name a module."""
    return rel[len("js/"):-len(".js")]


def _imports(rel, text):
    """(the modules `rel` imports statically, those it loads with onDemand()), as paths under static/."""
    here = posixpath.dirname(rel)
    static = [posixpath.normpath(posixpath.join(here, spec)) for spec in _STATIC_IMPORT.findall(text)]
    return static, [f"js/{path}" for path in _ON_DEMAND.findall(text)]


def _closure(graph, roots):
    seen, todo = set(), list(roots)
    while todo:
        rel = todo.pop()
        if rel not in seen:
            seen.add(rel)
            todo.extend(graph.get(rel, ([], []))[0])
    return seen


def precached_files(static_dir):
    """{path under static/: (mtime, size)} of every file PRECACHED names, with one stat each
    (os.scandir: glob costs ten times as much, and this runs on every open of the app)."""
    found = {}
    for name in PRECACHED:
        todo = [name]
        while todo:
            rel = todo.pop()
            if not rel.endswith("/"):
                st = os.stat(os.path.join(static_dir, rel))
                found[rel] = (st.st_mtime_ns, st.st_size)
                continue
            for entry in os.scandir(os.path.join(static_dir, rel)):
                if entry.is_dir():
                    todo.append(f"{rel}{entry.name}/")
                else:
                    st = entry.stat()
                    found[rel + entry.name] = (st.st_mtime_ns, st.st_size)
    return found


def built(static_dir):
    """The derived files, rebuilt when any file they come from changes."""
    global _built
    files = precached_files(static_dir)
    for rel in ("index.html", "sw.js"):
        st = os.stat(os.path.join(static_dir, rel))
        files[rel] = (st.st_mtime_ns, st.st_size)
    key = (static_dir, *sorted(files.items()))
    built_from, result = _built  # one read: another request may replace it meanwhile
    if built_from != key:
        result = Built(static_dir, sorted(set(files) - {"index.html", "sw.js"}))
        _built = (key, result)
    return result


@bp.get("/app/")
def shell():
    """index.html with app.css inlined: on slow 3G the splash paints after one round trip instead
    of two, and the page's small inline script asks for the modules only after that paint. Both
    are allowed by their hashes, so the policy still forbids any other inline style or script."""
    page = built(current_app.config["STATIC_APP_DIR"])
    resp = _derived(page, "index.html", "text/html")
    resp.headers["Content-Security-Policy"] = page.policy
    return compress(resp.make_conditional(request))


def _derived(page, rel, mimetype):
    resp = current_app.response_class(page.text[rel], mimetype=mimetype)
    resp.headers["Cache-Control"] = "no-cache"
    resp.set_etag(page.etag[rel])
    return resp


def _sha256(text):
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@bp.get("/app/<path:path>")
def asset(path):
    if path == "index.html":
        return shell()  # the page as /app/ serves it (its module list filled in)
    page = built(current_app.config["STATIC_APP_DIR"]) if path.endswith(".js") else None
    if page and path in page.text:  # the modules (without their comments) and the worker
        resp = _derived(page, path, "text/javascript")
        resp = resp.make_conditional(request)
    else:
        resp = send_from_directory(current_app.config["STATIC_APP_DIR"], path)
    # Revalidate every time: the service worker is what keeps the app usable offline.
    resp.headers["Cache-Control"] = "no-cache"
    if path == "sw.js":
        resp.headers["Service-Worker-Allowed"] = "/app/"
    if path.endswith(".webmanifest"):
        resp.mimetype = "application/manifest+json"
    if path.endswith(".js"):
        resp.mimetype = "text/javascript"
    return compress(resp)


@bp.after_app_request
def compress_phone_data(resp):
    """What the phone downloads on its first sync (form definitions, a village's households, the
    cadre's own submissions) is JSON that gzip shrinks five- to sevenfold: on slow 3G that is the
    difference between seconds and a good part of a minute before Today can show anything.
    Only GET answers of the phone's API, only when the phone says it accepts gzip."""
    if (request.method == "GET" and request.path.startswith("/api/v1/")
            and not resp.direct_passthrough and "Content-Encoding" not in resp.headers
            and (resp.content_length or 0) > 1024):
        return compress(resp)
    return resp


def compress(resp):
    """Phones on slow 3G: the shell is text and shrinks to a third, so send it gzipped."""
    if (resp.status_code != 200 or resp.mimetype not in COMPRESSIBLE
            or "gzip" not in request.headers.get("Accept-Encoding", "")):
        return resp
    resp.direct_passthrough = False
    resp.set_data(gzip.compress(resp.get_data(), compresslevel=6))
    resp.headers["Content-Encoding"] = "gzip"
    resp.headers.add("Vary", "Accept-Encoding")
    return resp
