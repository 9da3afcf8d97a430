"""Sync throughput: 50 simulated phones each push 20 visits over real HTTP to the real server
(waitress, threads), at 1k and 100k stored submissions. Prints requests/s, visits/s, p50/p99.

Usage: .venv/bin/python bench/sync_bench.py [--sizes 1000,100000] [--phones 50] [--visits 20]
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from server.store import CORE, Store  # noqa: E402
from store_bench import visit as stored_visit  # noqa: E402
from tests.conftest import PASSWORD, seed_world  # noqa: E402
from tests.live import Client, LiveServer  # noqa: E402

EXTRA_VILLAGES = [f"v{i:03d}" for i in range(50)]


def prepare(data_dir, stored):
    """The tests' small world plus `stored` old visits spread over 50 more villages."""
    store = Store(data_dir, snapshot_every=0).open()
    seed_world(store)
    from server.records import users
    for n in range(50):
        users.create(f"phone{n:02d}", "cadre", PASSWORD, villages=["v1"], store=store)

    def villages(tx):
        for vid in EXTRA_VILLAGES:
            tx.put(CORE, "villages", {"id": vid, "name": vid, "township": "t", "county": "c"})
    store.write(villages)
    for start in range(0, stored, 2000):
        docs = [stored_visit(random.choice(EXTRA_VILLAGES)) for _ in range(min(2000, stored - start))]

        def write(tx, docs=docs):
            for d in docs:
                tx.put(d["village_id"], "submissions", d)
        store.write(write)
    store.close()


def phone_visit(household):
    return {"uuid": str(uuid.uuid4()), "form": "household_visit", "form_version": 1,
            "household_id": household, "created_at": "2026-05-01T10:00:00+08:00",
            "answers": {"visit_date": "2026-05-01", "visit_type": "home", "present": "户主、配偶",
                        "topics": ["income_jobs", "health_insurance"], "family_changes": ["none"],
                        "income_wages": 24000, "income_farming": 3500,
                        "needs_detail": "希望帮助联系县城务工岗位。" * 3,
                        "help_given": [{"product": "红薯", "quantity": 200, "unit": "斤", "price": 1.5}],
                        "risk": "no", "notes": "家中房屋安全，饮水正常。" * 4}}


def run(stored, phones, visits):
    with tempfile.TemporaryDirectory() as d:
        prepare(d, stored)
        server = LiveServer(d).start()
        try:
            clients = []
            for n in range(phones):
                c = Client(server.url)
                c.login(f"phone{n:02d}", PASSWORD)
                clients.append(c)
            latencies, errors = [], []
            barrier = threading.Barrier(phones)

            def phone(c):
                batch = [phone_visit(f"v1-000{random.randint(1, 3)}") for _ in range(visits)]
                barrier.wait()
                t0 = time.perf_counter()
                status, body = c.call("POST", "/api/v1/submissions", {"submissions": batch})
                latencies.append((time.perf_counter() - t0) * 1000)
                if status != 200 or any(r["status"] != "created" for r in body["results"]):
                    errors.append(status)

            threads = [threading.Thread(target=phone, args=(c,)) for c in clients]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            server.stop()
    return latencies, wall, errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--phones", type=int, default=50)
    ap.add_argument("--visits", type=int, default=20)
    args = ap.parse_args()
    print(f"{args.phones} phones x {args.visits} visits, pushed at once over HTTP (waitress, 8 threads)")
    print(f"{'stored':>8} | {'pushes/s':>8} {'visits/s':>8} | {'p50 ms':>7} {'p99 ms':>7} | errors")
    for n in [int(s) for s in args.sizes.split(",")]:
        lat, wall, errors = run(n, args.phones, args.visits)
        print(f"{n:>8} | {len(lat) / wall:>8.1f} {len(lat) * args.visits / wall:>8.0f} | "
              f"{statistics.median(lat):>7.1f} {sorted(lat)[int(0.99 * (len(lat) - 1))]:>7.1f} | {len(errors)}")


if __name__ == "__main__":
    main()
