"""PostgreSQL beside TinyDB, in one run (a throwaway cluster from Debian's postgresql package, fsync
ON, so a commit costs what it costs in production).

  store: a 20-document write acknowledged durably, p50/p99, TinyDB store vs PostgreSQL store, as the
         data grows (the same writes as bench/store_bench.py).
  sync:  N phones each push 20 visits at once over HTTP to: one TinyDB server, one app server on
         PostgreSQL, two app servers on one PostgreSQL database (phones alternate, as nginx would).

Usage: .venv/bin/python bench/pg_bench.py [store|sync|all] [--sizes 1000,20000] [--writes 100]
       [--phones 50] [--visits 20]
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from server.records.layout import LAYOUT  # noqa: E402
from server.store import CORE, Store  # noqa: E402
from server.store.postgres import PgStore  # noqa: E402
from store_bench import measure_pushes, percentile, preload  # noqa: E402
from store_bench import visit as stored_visit  # noqa: E402
from sync_bench import phone_visit  # noqa: E402
from tests.conftest import PASSWORD, seed_world  # noqa: E402
from tests.live import Client, LiveServer  # noqa: E402
from tests.pg import Cluster  # noqa: E402

EXTRA_VILLAGES = [f"v{i:03d}" for i in range(50)]


def store_rows(cluster, sizes, writes):
    """[(size, tinydb latencies, postgres latencies)]"""
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as d:
            tiny = Store(os.path.join(d, "jiedui"), layout=LAYOUT, snapshot_every=2.0).open()
            preload(tiny, n)
            tiny.snapshot()
            ours = measure_pushes(tiny, writes)
            tiny.close()
        url = cluster.new_database(f"store_{n}")
        pg = PgStore(url, layout=LAYOUT).open()
        preload(pg, n)
        theirs = measure_pushes(pg, writes)
        pg.close()
        rows.append((n, ours, theirs))
        print(f"  measured {n} documents", file=sys.stderr)
    return rows


def print_store(rows, writes):
    print(f"20-document write, acknowledged durably ({writes} writes per size; ms)")
    print(f"{'documents':>10} | {'tinydb p50':>10} {'p99':>8} | {'postgres p50':>12} {'p99':>8} | "
          f"{'postgres/tinydb':>15}")
    for n, ours, theirs in rows:
        o50, s50 = statistics.median(ours), statistics.median(theirs)
        print(f"{n:>10} | {o50:>10.2f} {percentile(ours, 99):>8.2f} | {s50:>12.2f} "
              f"{percentile(theirs, 99):>8.2f} | {s50 / o50:>15.2f}")


def prepare(store, stored, phones):
    """The tests' small world, `phones` cadres of v1, and `stored` old visits in 50 more villages."""
    seed_world(store)
    from server.records import users
    for n in range(phones):
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


def push_all(urls, phones, visits):
    clients = []
    for n in range(phones):
        c = Client(urls[n % len(urls)])
        c.login(f"phone{n:02d}", PASSWORD)
        clients.append(c)
    latencies, errors = [], []
    barrier = threading.Barrier(phones)

    def phone(c):
        batch = [phone_visit(f"v1-000{random.randint(1, 3)}") for _ in range(visits)]
        barrier.wait()
        t0 = time.perf_counter()
        status, body = c.call("POST", "/api/v1/submissions", {"submissions": batch}, timeout=120)
        latencies.append((time.perf_counter() - t0) * 1000)
        if status != 200 or any(r["status"] != "created" for r in body["results"]):
            errors.append(status)

    threads = [threading.Thread(target=phone, args=(c,)) for c in clients]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - t0, errors


def sync_rows(cluster, sizes, phones, visits):
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "tiny")
            store = Store(data, layout=LAYOUT, snapshot_every=0).open()
            prepare(store, n, phones)
            store.close()
            server = LiveServer(data).start()
            try:
                rows.append((n, "tinydb, 1 server", *push_all([server.url], phones, visits)))
            finally:
                server.stop()
            url = cluster.new_database(f"sync_{n}")
            with PgStore(url, layout=LAYOUT).open() as pg:
                prepare(pg, n, phones)
            env = {"JIEDUI_DATABASE_URL": url, "JIEDUI_FILES_DIR": os.path.join(d, "files")}
            for count in (1, 2):
                servers = []
                for i in range(count):
                    folder = os.path.join(d, f"app{count}{i}")
                    os.makedirs(folder)
                    servers.append(LiveServer(folder, extra_env=env).start())
                try:
                    rows.append((n, f"postgres, {count} server{'s' if count > 1 else ''}",
                                 *push_all([s.url for s in servers], phones, visits)))
                finally:
                    for s in servers:
                        s.stop()
        print(f"  measured {n} stored visits", file=sys.stderr)
    return rows


def print_sync(rows, phones, visits):
    print(f"{phones} phones x {visits} visits, pushed at once over HTTP (waitress, 8 threads per server)")
    print(f"{'stored':>8} | {'store':<20} | {'pushes/s':>8} {'visits/s':>8} | {'p50 ms':>7} {'p99 ms':>7} | errors")
    for n, label, lat, wall, errors in rows:
        print(f"{n:>8} | {label:<20} | {len(lat) / wall:>8.1f} {len(lat) * visits / wall:>8.0f} | "
              f"{statistics.median(lat):>7.1f} {percentile(lat, 99):>7.1f} | {len(errors)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", default="all", choices=["store", "sync", "all"])
    ap.add_argument("--sizes", default="1000,20000")
    ap.add_argument("--writes", type=int, default=100)
    ap.add_argument("--phones", type=int, default=50)
    ap.add_argument("--visits", type=int, default=20)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cluster = Cluster(durable=True).start()
    try:
        if args.what in ("store", "all"):
            print_store(store_rows(cluster, sizes, args.writes), args.writes)
        if args.what in ("sync", "all"):
            print_sync(sync_rows(cluster, sizes, args.phones, args.visits), args.phones, args.visits)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
