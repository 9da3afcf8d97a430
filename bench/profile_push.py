"""Where the CPU of a push goes: cProfile over N pushes of 20 visits through the real app (Flask's
test client, the real store in a temporary folder with --stored visits already in it).

Usage: .venv/bin/python bench/profile_push.py [--pushes 200] [--stored 20000] [--top 25] [--split]
       .venv/bin/python bench/profile_push.py --single [--dense 20000] [--pushes 300] [--top 30]
Prints the server-side ms per push, then the top functions by own time and by cumulative time.
--single: the fixed cost of a write request: the process CPU (median, no profiler) of a one-visit
push, a 20-visit push, a household edit (PUT /api/v1/households/<id>), an ODK Collect submission
(OpenRosa, one PV enrollment) and a bare GET /api/v1/csrf, then cProfile's top lines (own time
and cumulative) of each.
--dense N: first N visits (each with one new promise) pushed into the 72 households of village v1,
so the pushes land on a dense history (issue 28: a push must not slow as records age).
--split: no profiler; the process CPU of a push (median), split into parsing and validating its
items, the store write, and the rest (Flask, the session and login, reading and answering JSON),
beside a bare GET /api/v1/csrf.
cProfile sees one thread: pushes one after another run their write batch on the request thread
(the store's fast path), so the profile holds the whole push; `--writer-thread` profiles batches
run by the store's writer thread apart (the store before turn 3 always used it).
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from sync_bench import DENSE_HOUSEHOLDS, batch, densify, prepare, promised_visit  # noqa: E402
from tests.collect import COLLECT_HEADERS, pv_instance  # noqa: E402
from tests.conftest import PASSWORD, Api  # noqa: E402


def print_profile(prof, key, top, title):
    """The `top` lines of a profile sorted by `key`, under a title, without pstats' preamble."""
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats(key).print_stats(top)
    text = out.getvalue()
    print(f"---- {title}")
    print(text[text.index("   ncalls"):] if "   ncalls" in text else text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushes", type=int, default=200)
    ap.add_argument("--stored", type=int, default=20000)
    ap.add_argument("--visits", type=int, default=20)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--writer-thread", action="store_true")
    ap.add_argument("--split", action="store_true")
    ap.add_argument("--single", action="store_true")
    ap.add_argument("--dense", type=int, default=0)
    args = ap.parse_args()
    if args.single:
        return single(args)
    if args.split:
        return split(args)
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        prepare(data, args.stored, 1)
        from server import create_app
        from server.store import Store, close_app_store
        writer_prof = cProfile.Profile()
        run_batch = Store._run_batch

        def profiled_batch(self, batch):
            if threading.current_thread().name != "store-writer":
                return run_batch(self, batch)
            writer_prof.enable()
            try:
                return run_batch(self, batch)
            finally:
                writer_prof.disable()
        if args.writer_thread:
            Store._run_batch = profiled_batch
        app = create_app({"DATA_DIR": data, "SNAPSHOT_EVERY": 0})
        api = Api(app.test_client())
        assert api.login("phone00", PASSWORD).status_code == 200
        bodies = [json.dumps(batch(args.visits)) for _ in range(args.pushes + 20)]

        def push(body):
            r = api.client.post("/api/v1/submissions", data=body, content_type="application/json",
                                headers={"X-CSRFToken": api.token})
            assert r.status_code == 200 and all(x["status"] == "created" for x in r.get_json()["results"])

        for body in bodies[:20]:  # warm
            push(body)
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        for body in bodies[20:]:
            push(body)
        prof.disable()
        wall = time.perf_counter() - t0
        close_app_store(app)
    print(f"{args.pushes} pushes of {args.visits} visits at {args.stored} stored: "
          f"{wall / args.pushes * 1000:.2f} ms per push under the profiler (test client, no HTTP)")
    for name, p in (("request thread", prof),) + ((("writer thread", writer_prof),) if args.writer_thread else ()):
        for key in ("tottime", "cumulative"):
            print_profile(p, key, args.top, f"{name}, by {key}")


def single(args):
    """The fixed cost of one write request, measured, then profiled."""
    import random
    import statistics
    rng = random.Random(28)
    random.seed(28)
    households = DENSE_HOUSEHOLDS if args.dense else 3
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        _docs, token = prepare(data, args.stored, 1)
        if args.dense:
            t = time.perf_counter()
            densify(data, args.dense, rng)
            print(f"dense: {args.dense} visits with a promise each pushed into {households} households of v1 "
                  f"in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        from server import create_app
        from server.store import close_app_store
        app = create_app({"DATA_DIR": data, "SNAPSHOT_EVERY": 0})
        api = Api(app.test_client())
        assert api.login("phone00", PASSWORD).status_code == 200
        hid = lambda: f"v1-{rng.randint(1, households):04d}"  # noqa: E731

        def push(n):
            body = json.dumps({"submissions": [promised_visit(hid()) for _ in range(n)]})
            t = time.process_time()
            r = api.client.post("/api/v1/submissions", data=body, content_type="application/json",
                                headers={"X-CSRFToken": api.token})
            spent = time.process_time() - t
            assert r.status_code == 200 and all(x["status"] == "created" for x in r.get_json()["results"]), \
                r.get_data()[:300]
            return spent

        versions = {}

        def edit(i):
            h = hid()
            body = json.dumps({"changes": {"address": f"{i}号"}, "base_version": versions.get(h)})
            t = time.process_time()
            r = api.client.put(f"/api/v1/households/{h}", data=body, content_type="application/json",
                               headers={"X-CSRFToken": api.token})
            spent = time.process_time() - t
            assert r.status_code == 200, r.get_data()[:300]
            versions[h] = r.get_json()["household"]["version"]
            return spent

        def collect(_i):
            """One PV enrollment as ODK Collect posts it (multipart, a device token, no cookie)."""
            boundary = uuid.uuid4().hex
            body = (f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
                    f'filename="submission.xml"\r\nContent-Type: text/xml\r\n\r\n').encode() + \
                pv_instance(hid(), instance_id=f"uuid:{uuid.uuid4()}") + f"\r\n--{boundary}--\r\n".encode()
            t = time.process_time()
            r = api.client.post(f"/openrosa/key/{token}/submission", data=body, headers=COLLECT_HEADERS,
                                content_type=f"multipart/form-data; boundary={boundary}")
            spent = time.process_time() - t
            assert r.status_code == 201, r.get_data()[:300]
            return spent

        def bare(_i):
            t = time.process_time()
            api.client.get("/api/v1/csrf")
            return time.process_time() - t

        med = lambda xs: statistics.median(xs) * 1000  # noqa: E731
        for _ in range(20):  # warm
            push(1), edit(0), collect(0), bare(0)
        rows = {"1-visit push": [push(1) for _ in range(args.pushes)],
                "20-visit push": [push(20) for _ in range(max(20, args.pushes // 5))],
                "household edit (PUT)": [edit(i) for i in range(args.pushes)],
                "Collect submission": [collect(i) for i in range(args.pushes)],
                "bare GET /api/v1/csrf": [bare(i) for i in range(args.pushes)]}
        print(f"process CPU per request, median (Flask's test client, no HTTP; {args.stored} visits in 50 "
              f"other villages{f', {args.dense} in v1' if args.dense else ''}):")
        for name, xs in rows.items():
            print(f"  {name:<24} {med(xs):6.2f} ms")
        profiles = {}
        for name, fn in (("1-visit push", lambda i: push(1)), ("household edit (PUT)", edit),
                         ("20-visit push", lambda i: push(20)), ("Collect submission", collect)):
            prof = cProfile.Profile(time.process_time)  # CPU, not waiting for the disk
            prof.enable()
            for i in range(args.pushes):
                fn(i)
            prof.disable()
            profiles[name] = prof
        close_app_store(app)
    for name, prof in profiles.items():
        for key in ("cumulative", "tottime"):
            print_profile(prof, key, args.top, f"{name}: {args.pushes} requests, by {key} (process CPU seconds)")


def split(args):
    """CPU per push in its three parts, without a profiler's overhead (which falls hardest on the
    small functions validation is made of)."""
    import statistics
    from server.records import submissions
    parse_item, ingest = submissions.parse_item, submissions.ingest
    spent = {"parse": 0.0, "write": 0.0}

    def timed(name, fn):
        def run(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.process_time() - t
        return run
    submissions.parse_item, submissions.ingest = timed("parse", parse_item), timed("write", ingest)
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "data")
        prepare(data, args.stored, 1)
        from server import create_app
        from server.store import close_app_store
        app = create_app({"DATA_DIR": data, "SNAPSHOT_EVERY": 0})
        api = Api(app.test_client())
        assert api.login("phone00", PASSWORD).status_code == 200
        rows = []
        for i in range(args.pushes + 20):
            body = json.dumps(batch(args.visits))
            spent.update(parse=0.0, write=0.0)
            t = time.process_time()
            r = api.client.post("/api/v1/submissions", data=body, content_type="application/json",
                                headers={"X-CSRFToken": api.token})
            total = time.process_time() - t
            assert r.status_code == 200 and all(x["status"] == "created" for x in r.get_json()["results"])
            if i >= 20:  # the first 20 warm up
                rows.append((total, spent["parse"], spent["write"]))
        bare = []
        for _ in range(args.pushes):
            t = time.process_time()
            api.client.get("/api/v1/csrf")
            bare.append(time.process_time() - t)
        close_app_store(app)
    med = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    total, parse, write = (med([r[k] for r in rows]) for k in range(3))
    rest = med([r[0] - r[1] - r[2] for r in rows])
    print(f"{args.pushes} pushes of {args.visits} visits at {args.stored} stored, process CPU per push "
          f"(median, Flask's test client, no HTTP): {total:.2f} ms = parsing and validating the items "
          f"{parse:.2f} + the store write {write:.2f} + the rest {rest:.2f}; a bare GET /api/v1/csrf "
          f"{med(bare):.2f} ms")


if __name__ == "__main__":
    main()
