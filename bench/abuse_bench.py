"""Does the server keep answering while it is abused? Floods against the real server (waitress,
threads), each measured beside a baseline without abuse, in the same run:

- issue9: issue 9's worst requests from N clients (10 MB usernames as JSON and as a form, thousands
  of nested brackets, 300,000 unknown answer keys, wrong-password floods, lone-surrogate and NaN
  household edits);
- images: N clients uploading issue 24's scan-bomb JPEG (7680x5200, 1,000 scans, ~300 KB) and a
  PNG claiming 13000x13000, and asking for previews;
- exports: one cadre asking for 12 exports at once, again and again (the attachments ZIP and the
  XLSX of 2,000 visits), while another user works.

For each: p50/p99 of GET /api/v1/csrf (is the server still answering?) and of a valid 20-visit push
(is real work still getting through?), the server's peak RSS, and how the abusive requests were
answered, by status (never a 5xx). With --runs 3 each figure is the median of three runs.

Usage: .venv/bin/python bench/abuse_bench.py [--seconds 20] [--clients 8] [--floods issue9,images,exports] [--runs 1]
"""

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.conftest import PASSWORD  # noqa: E402
from tests.live import Client, LiveServer, seed  # noqa: E402


def visit(household):
    return {"uuid": str(uuid.uuid4()), "form": "household_visit", "form_version": 2,
            "household_id": household, "created_at": "2026-05-01T10:00:00+08:00",
            "answers": {"visit_date": "2026-05-01", "visit_type": "phone", "present": "户主本人",
                        "topics": ["income_jobs"], "family_changes": ["none"], "risk": "no",
                        "notes": "家中房屋安全，饮水正常。" * 4}}


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def pct(values, p):
    if not values:
        return float("nan")
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# ---- the abusive requests -------------------------------------------------------------------------

HUGE_NAME = "u" * (10 * 1024 * 1024)
HUGE_LOGIN_JSON = json.dumps({"username": HUGE_NAME, "password": "x"}).encode()
HUGE_LOGIN_FORM = ("username=" + HUGE_NAME + "&password=x").encode()
DEEP = ("[" * 5000 + "]" * 5000).encode()
UNKNOWN_KEYS = None


def unknown_keys_body():
    global UNKNOWN_KEYS
    if UNKNOWN_KEYS is None:
        item = visit("v1-0001")
        item["answers"].update({f"k{i}": 0 for i in range(300_000)})
        UNKNOWN_KEYS = json.dumps({"submissions": [item]}).encode()
    return UNKNOWN_KEYS


def abuser(base, n, stop, tally):
    """One abusive client: logged in as a cadre (so bodies reach the parsers), cycling through the
    worst requests of issue 9."""
    client = Client(base)
    client.login("cadre1", PASSWORD)
    kinds = [
        ("huge username (JSON)", lambda: client.call("POST", "/login", HUGE_LOGIN_JSON)),
        ("huge username (form)", lambda: client.call(  # the CSRF token goes in the header
            "POST", "/login", HUGE_LOGIN_FORM,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})),
        ("deep JSON", lambda: client.call("POST", "/api/v1/submissions", DEEP)),
        ("300,000 unknown keys", lambda: client.call("POST", "/api/v1/submissions", unknown_keys_body())),
        ("wrong password", lambda: client.call("POST", "/login", {"username": "cadre2",
                                                                   "password": f"guess-{time.time()}"})),
        ("lone surrogate edit", lambda: client.call("PUT", "/api/v1/households/v1-0002",
                                                    b'{"changes": {"head_name": "a\\ud800"}}')),
        ("NaN edit", lambda: client.call("PUT", "/api/v1/households/v1-0003",
                                         b'{"changes": {"pv_status": {"stage": "installed", "capacity_kw": NaN}}}')),
    ]
    i = n
    while not stop.is_set():
        name, send = kinds[i % len(kinds)]
        i += 1
        try:
            status, _body = send()
        except (OSError, urllib.error.URLError) as e:
            status = f"error {e.__class__.__name__}"
        tally[(name, status)] += 1


# ---- what is measured ------------------------------------------------------------------------------


def measure(base, seconds):
    """csrf GETs and 20-visit pushes, interleaved, for `seconds`."""
    pusher = Client(base)
    assert pusher.login("super", PASSWORD)[0] == 200
    csrf_times, push_times, failures = [], [], 0
    households = ["v1-0001", "v1-0002", "v1-0003", "v2-0001", "v2-0002"]
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        for _ in range(5):
            t = time.perf_counter()
            with urllib.request.urlopen(base + "/api/v1/csrf", timeout=60) as r:
                r.read()
            csrf_times.append(time.perf_counter() - t)
        batch = [visit(households[(n + k) % len(households)]) for k in range(20)]
        n += 1
        t = time.perf_counter()
        status, body = pusher.call("POST", "/api/v1/submissions", {"submissions": batch}, timeout=120)
        push_times.append(time.perf_counter() - t)
        if status != 200 or any(r["status"] != "created" for r in body["results"]):
            failures += 1
    return csrf_times, push_times, failures


# ---- image and export floods (issue 24) -----------------------------------------------------------


def _declare(client, household, name, data, mime):
    import hashlib
    item = visit(household)
    item["answers"]["photo_1"] = name
    item["attachments"] = [{"name": name, "sha256": hashlib.sha256(data).hexdigest(),
                            "size": len(data), "type": mime}]
    status, body = client.call("POST", "/api/v1/submissions", {"submissions": [item]})
    return item["uuid"] if status == 200 else None


def image_abuser(base, n, stop, tally, bombs):
    """Uploads the scan bomb and the PNG bomb again and again (each a new visit declaring it)."""
    import hashlib
    client = Client(base)
    client.login("cadre1", PASSWORD)
    i = n
    while not stop.is_set():
        name, data, mime = bombs[i % len(bombs)]
        i += 1
        try:
            sub = _declare(client, "v1-0001", name, data, mime)
            status, _body = client.call(
                "PUT", f"/api/v1/submissions/{sub}/attachments/{name}", data,
                headers={"X-Content-SHA256": hashlib.sha256(data).hexdigest(),
                         "Content-Type": "application/octet-stream"}, timeout=120)
        except (OSError, urllib.error.URLError, TypeError) as e:
            status = f"error {e.__class__.__name__}"
        tally[(f"upload {name}", status)] += 1


def export_abuser(base, n, stop, tally):
    """One of twelve threads of one cadre asking for exports."""
    client = Client(base)
    client.login("cadre1", PASSWORD)
    paths = ["/exports/attachments.zip?form=household_visit", "/exports/submissions.xlsx?form=household_visit"]
    i = n
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        try:
            status, _body = client.call("GET", path, headers={"Accept": "application/json"}, timeout=120)
        except (OSError, urllib.error.URLError) as e:
            status = f"error {e.__class__.__name__}"
        tally[(path.split("?")[0], status)] += 1


def fill_for_exports(base, visits=2000):
    """Visits (and a photo on some) for exports that take real work."""
    import hashlib
    import io
    from PIL import Image
    client = Client(base)
    client.login("cadre1", PASSWORD)
    photo = io.BytesIO()
    Image.new("RGB", (1280, 960), (120, 90, 40)).save(photo, "JPEG", quality=85)
    photo = photo.getvalue()
    for start in range(0, visits, 100):
        batch = [visit(f"v1-000{1 + k % 3}") for k in range(100)]
        client.call("POST", "/api/v1/submissions", {"submissions": batch}, timeout=300)
    for _ in range(40):
        sub = _declare(client, "v1-0002", "photo_1.jpg", photo, "image/jpeg")
        client.call("PUT", f"/api/v1/submissions/{sub}/attachments/photo_1.jpg", photo,
                    headers={"X-Content-SHA256": hashlib.sha256(photo).hexdigest(),
                             "Content-Type": "application/octet-stream"})


def image_bombs():
    from tests.bombs import png_bomb, scan_bomb
    return [("scan_bomb.jpg", scan_bomb((7680, 5200), 1000), "image/jpeg"),
            ("png_bomb.png", png_bomb(), "image/png")]


def one_run(args, floods):
    """{phase: (csrf_times, push_times, failures, peak_rss, tally)} of one fresh server."""
    out = {}
    bombs = image_bombs() if "images" in floods else None
    with tempfile.TemporaryDirectory(prefix="jiedui-abuse-") as tmp:
        seed(tmp)
        server = LiveServer(tmp).start()
        pid = server.proc.pid
        try:
            if "exports" in floods:
                fill_for_exports(server.url)
            base = measure(server.url, args.seconds)
            out["baseline"] = base + (proc_status(pid, "VmHWM"), collections.Counter())
            for flood in floods:
                stop, tally = threading.Event(), collections.Counter()
                if flood == "issue9":
                    targets = [(abuser, (server.url, n, stop, tally)) for n in range(args.clients)]
                elif flood == "images":
                    targets = [(image_abuser, (server.url, n, stop, tally, bombs)) for n in range(args.clients)]
                else:
                    targets = [(export_abuser, (server.url, n, stop, tally)) for n in range(12)]
                threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in targets]
                for t in threads:
                    t.start()
                result = measure(server.url, args.seconds)
                stop.set()
                for t in threads:
                    t.join(180)
                out[flood] = result + (proc_status(pid, "VmHWM"), tally)
        finally:
            server.stop()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=8, help="abusive clients at once")
    parser.add_argument("--floods", default="issue9,images,exports",
                        help="comma-separated: issue9, images, exports")
    parser.add_argument("--runs", type=int, default=1, help="fresh servers; figures are medians")
    args = parser.parse_args()
    floods = [f for f in args.floods.split(",") if f]
    if "issue9" in floods:
        unknown_keys_body()
    runs = [one_run(args, floods) for _ in range(args.runs)]
    med = statistics.median
    print(f"{args.runs} run(s), {args.seconds:g} s a phase, {args.clients} clients (exports: 12 threads of one cadre)")
    base_csrf = med(pct(r["baseline"][0], 99) for r in runs)
    base_push = med(pct(r["baseline"][1], 99) for r in runs)
    for phase in ["baseline"] + floods:
        csrf50 = med(pct(r[phase][0], 50) for r in runs) * 1000
        csrf99 = med(pct(r[phase][0], 99) for r in runs) * 1000
        push50 = med(pct(r[phase][1], 50) for r in runs) * 1000
        push99 = med(pct(r[phase][1], 99) for r in runs) * 1000
        fails = sum(r[phase][2] for r in runs)
        hwm = med(r[phase][3] for r in runs) / 2**20
        print(f"{phase:<9} csrf p50 {csrf50:7.1f} ms p99 {csrf99:7.1f} ms (x{csrf99 / 1000 / base_csrf:4.1f})"
              f" | 20-visit push p50 {push50:7.1f} ms p99 {push99:7.1f} ms (x{push99 / 1000 / base_push:4.1f}),"
              f" {fails} not stored | peak RSS {hwm:5.0f} MB")
    for phase in floods:
        tally = collections.Counter()
        for r in runs:
            tally.update(r[phase][4])
        print(f"{phase}: abusive requests answered")
        for (name, status), count in sorted(tally.items(), key=str):
            print(f"  {name:<40} {status}: {count}")
        broken = sum(c for (_n, st), c in tally.items() if not isinstance(st, int) or st >= 500 and st != 503)
        print(f"  5xx other than 503 busy, or broken connections: {broken}")


if __name__ == "__main__":
    main()
