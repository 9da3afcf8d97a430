"""Does the server keep answering while it is abused? Issue 9's worst requests from 8 clients at
once (10 MB usernames as JSON and as a form, thousands of nested brackets, 300,000 unknown answer
keys, wrong-password floods, lone-surrogate and NaN household edits) against the real server
(waitress, threads). Measured first without abuse (baseline), then under it, in the same run:

- p50/p99 of GET /api/v1/csrf (the cheapest request: is the server still answering?)
- p50/p99 of a valid 20-visit push (is real work still getting through?)
- the server's peak RSS (VmHWM of the server process, /proc/<pid>/status)
- how many abusive requests were answered, by status (never a 5xx)

Usage: .venv/bin/python bench/abuse_bench.py [--seconds 20] [--clients 8]
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


def report(label, csrf_times, push_times, failures, hwm):
    print(f"{label:<10} csrf p50 {pct(csrf_times, 50) * 1000:7.1f} ms  p99 {pct(csrf_times, 99) * 1000:7.1f} ms"
          f"  ({len(csrf_times)} requests) | 20-visit push p50 {pct(push_times, 50) * 1000:7.1f} ms"
          f"  p99 {pct(push_times, 99) * 1000:7.1f} ms  ({len(push_times)} pushes, {failures} not stored)"
          f" | peak RSS {hwm / 2**20:6.0f} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=8, help="abusive clients at once")
    args = parser.parse_args()
    unknown_keys_body()
    with tempfile.TemporaryDirectory(prefix="jiedui-abuse-") as tmp:
        seed(tmp)
        server = LiveServer(tmp).start()
        pid = server.proc.pid
        try:
            base_csrf, base_push, base_fail = measure(server.url, args.seconds)
            base_hwm = proc_status(pid, "VmHWM")
            report("baseline", base_csrf, base_push, base_fail, base_hwm)

            stop, tally = threading.Event(), collections.Counter()
            threads = [threading.Thread(target=abuser, args=(server.url, n, stop, tally), daemon=True)
                       for n in range(args.clients)]
            for t in threads:
                t.start()
            abuse_csrf, abuse_push, abuse_fail = measure(server.url, args.seconds)
            stop.set()
            for t in threads:
                t.join(120)
            abuse_hwm = proc_status(pid, "VmHWM")
            report("abused", abuse_csrf, abuse_push, abuse_fail, abuse_hwm)
            print(f"ratios     csrf p99 x{pct(abuse_csrf, 99) / pct(base_csrf, 99):.1f}"
                  f" | push p99 x{pct(abuse_push, 99) / pct(base_push, 99):.1f}"
                  f" | peak RSS x{abuse_hwm / base_hwm:.2f} (+{(abuse_hwm - base_hwm) / 2**20:.0f} MB)"
                  f" | RSS now {proc_status(pid, 'VmRSS') / 2**20:.0f} MB")
            print(f"abusive requests answered ({args.clients} clients, {args.seconds:g} s):")
            for (name, status), count in sorted(tally.items(), key=str):
                print(f"  {name:<24} {status}: {count}")
            server_errors = sum(c for (_n, s), c in tally.items() if not isinstance(s, int) or s >= 500)
            print(f"5xx or broken connections: {server_errors}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
