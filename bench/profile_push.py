"""Where the CPU of a push goes: cProfile over N pushes of 20 visits through the real app (Flask's
test client, the real store in a temporary folder with --stored visits already in it).

Usage: .venv/bin/python bench/profile_push.py [--pushes 200] [--stored 20000] [--top 25]
Prints the server-side ms per push, then the top functions by own time and by cumulative time.
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
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
