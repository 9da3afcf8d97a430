"""Latency of acknowledging a 20-document write (the shape of one phone's sync) as the data grows.

Prints p50/p99 for the project's store, a SQLite-WAL store behind the same interface, and naive
TinyDB (whole file rewritten per insert), all in this one run, so the ratios are honest on a busy
machine. Usage: .venv/bin/python bench/store_bench.py [--sizes 1000,10000,100000] [--writes 200]
[--postgres: the PostgreSQL store too, in a second table]
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tinydb import TinyDB  # noqa: E402

from server.records.layout import LAYOUT  # noqa: E402
from server.store import Store  # noqa: E402
from sqlite_store import SqliteStore  # noqa: E402

VILLAGES = [f"v{i:03d}" for i in range(50)]  # ~a seventh of a county, 2k visits each at 100k
rng = random.Random(7)


def visit(village):
    """About 1.3 KB of JSON, like a real household visit."""
    return {"uuid": str(uuid.UUID(int=rng.getrandbits(128))), "form": "household_visit",
            "form_version": 1, "household_id": f"{village}-{rng.randint(1, 1600):04d}",
            "village_id": village, "cadre_id": "cadre1", "created_at": "2026-05-01T09:00:00+08:00",
            "received_at": "2026-05-01T18:00:00+08:00",
            "answers": {"visit_date": "2026-05-01", "visit_type": "home", "present": "户主、配偶",
                        "topics": ["income_jobs", "health_insurance", "housing_safety"],
                        "income_wages": 24000, "income_farming": 3500, "income_total": 27500,
                        "needs": ["jobs", "medical"], "needs_detail": "希望帮助联系县城务工岗位，老人慢性病用药报销。" * 3,
                        "help_given": [{"product": "红薯", "quantity": 200, "unit": "斤", "price": 1.5}],
                        "followups": [{"action": "联系人社局就业岗位", "due_date": "2026-06-01"}],
                        "risk": "no", "notes": "家中房屋安全，饮水正常。" * 4},
            "attachments": [], "review": {"state": "received", "comments": []}}


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def preload(store, n):
    for start in range(0, n, 1000):
        batch = [visit(rng.choice(VILLAGES)) for _ in range(min(1000, n - start))]

        def write(tx, batch=batch):
            for d in batch:
                tx.put(d["village_id"], "submissions", d)
        store.write(write)


def measure_pushes(store, writes):
    times = []
    for _ in range(writes):
        village = rng.choice(VILLAGES)
        docs = [visit(village) for _ in range(20)]

        def push(tx, docs=docs):
            out = []
            for d in docs:
                if tx.get(d["village_id"], "submissions", d["uuid"]) is None:
                    out.append(tx.put(d["village_id"], "submissions", d))
            return out
        t0 = time.perf_counter()
        store.write(push)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def naive_tinydb(path, n, inserts):
    docs = [visit(rng.choice(VILLAGES)) for _ in range(n)]
    with open(path, "w") as f:
        json.dump({"submissions": {str(i + 1): d for i, d in enumerate(docs)}}, f)
    db = TinyDB(path)
    table = db.table("submissions")
    times = []
    for _ in range(inserts):
        t0 = time.perf_counter()
        table.insert(visit("v000"))
        times.append((time.perf_counter() - t0) * 1000)
    db.close()
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--postgres", action="store_true", help="also the PostgreSQL store (bench/pg_bench.py)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as d:
            store = Store(os.path.join(d, "jiedui"), layout=LAYOUT, snapshot_every=2.0).open()
            preload(store, n)
            store.snapshot()
            ours = measure_pushes(store, args.writes)
            store.close()
            sql = SqliteStore(os.path.join(d, "bench.sqlite"), LAYOUT)
            preload(sql, n)
            theirs = measure_pushes(sql, args.writes)
            sql.close()
            naive = naive_tinydb(os.path.join(d, "naive.json"), n, 3 if n >= 50000 else 10)
        rows.append((n, ours, theirs, naive))
        print(f"  measured {n} documents", file=sys.stderr)

    print(f"20-document write, acknowledged durably ({args.writes} writes per size; ms)")
    print(f"{'documents':>10} | {'jiedui p50':>10} {'p99':>8} | {'sqlite p50':>10} {'p99':>8} | "
          f"{'naive tinydb insert p50':>23} | {'jiedui/sqlite':>13} {'naive/jiedui':>12}")
    for n, ours, theirs, naive in rows:
        o50, o99 = statistics.median(ours), percentile(ours, 99)
        s50, s99 = statistics.median(theirs), percentile(theirs, 99)
        nv = statistics.median(naive)
        print(f"{n:>10} | {o50:>10.2f} {o99:>8.2f} | {s50:>10.2f} {s99:>8.2f} | {nv:>23.1f} | "
              f"{o50 / s50:>13.2f} {nv / o50:>12.0f}x")
    first, last = rows[0], rows[-1]
    print(f"flatness: p50 at {last[0]} / p50 at {first[0]} = "
          f"{statistics.median(last[1]) / statistics.median(first[1]):.2f} (goal <= 1.5)")
    if args.postgres:
        postgres_column(sizes, args.writes)


def postgres_column(sizes, writes):
    """The same writes on the PostgreSQL store (a throwaway durable cluster), beside TinyDB again."""
    from pg_bench import Cluster, print_store, store_rows
    cluster = Cluster(durable=True).start()
    try:
        print_store(store_rows(cluster, sizes, writes), writes)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
