"""Where the CPU of a push goes: cProfile over N pushes of 20 visits through the real app (Flask's
test client, the real store in a temporary folder with --stored visits already in it).

Usage: .venv/bin/python bench/profile_push.py [--pushes 200] [--stored 20000] [--top 25] [--split]
Prints the server-side ms per push, then the top functions by own time and by cumulative time.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from sync_bench import batch, prepare  # noqa: E402
from tests.conftest import PASSWORD, Api  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushes", type=int, default=200)
    ap.add_argument("--stored", type=int, default=20000)
    ap.add_argument("--visits", type=int, default=20)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--writer-thread", action="store_true")
    ap.add_argument("--split", action="store_true")
    args = ap.parse_args()
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
            out = io.StringIO()
            pstats.Stats(p, stream=out).sort_stats(key).print_stats(args.top)
            text = out.getvalue()
            print(f"---- {name}, by {key}")
            print(text[text.index("   ncalls"):] if "   ncalls" in text else text)


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
