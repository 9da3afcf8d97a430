"""A 20-visit push over real HTTP, Jiedui beside a small Flask server on SQLite-WAL
(bench/sqlite_server.py), both served by waitress (8 threads), in the same run so the ratio is
honest on a busy machine. With --postgres, also one and two app servers on PostgreSQL.

For each size (visits already stored) it prints:
  - one phone pushing again and again: p50/p99 latency of each server and jiedui/sqlite (goal <= 1.0);
  - 50 phones pushing at once (each `--rounds` times): pushes/s and p99 of each (goal >= 300 for
    Jiedui);
  - where the machine's CPU went in that burst: the server's and this client's CPU ms per push
    (the 50 phones run here, on the same cores), and each server's CPU for a bare GET
    /api/v1/csrf, the floor that waitress, Flask and the session cost any request.

Usage: .venv/bin/python bench/sync_bench.py [--sizes 1000,20000] [--phones 50] [--visits 20]
                                            [--sequential 200] [--rounds 4] [--postgres]
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from server.store import CORE, Store  # noqa: E402
from sqlite_server import preload as sqlite_preload  # noqa: E402
from store_bench import visit as stored_visit  # noqa: E402
from tests.conftest import PASSWORD, seed_world  # noqa: E402
from tests.live import Client, LiveServer, free_port  # noqa: E402

EXTRA_VILLAGES = [f"v{i:03d}" for i in range(50)]


def prepare(data_dir, stored, phones):
    """The tests' small world plus `stored` old visits spread over 50 more villages."""
    store = Store(data_dir, snapshot_every=0).open()
    seed_world(store)
    from server.records import users
    fast = users.hash_password(PASSWORD, method="pbkdf2:sha256:1000")
    for n in range(phones):
        users.create(f"phone{n:02d}", "cadre", PASSWORD, villages=["v1"], store=store,
                     password_hash=fast)

    def villages(tx):
        for vid in EXTRA_VILLAGES:
            tx.put(CORE, "villages", {"id": vid, "name": vid, "township": "t", "county": "c"})
    store.write(villages)
    docs = [stored_visit(random.choice(EXTRA_VILLAGES)) for _ in range(stored)]
    for start in range(0, stored, 2000):
        def write(tx, chunk=docs[start:start + 2000]):
            for d in chunk:
                tx.put(d["village_id"], "submissions", d)
        store.write(write)
    store.close()
    return docs


class SqliteServer:
    def __init__(self, path):
        self.path, self.port = path, free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "sqlite_server.py"),
                                      self.path, str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                Client(self.url).call("GET", "/api/v1/csrf", timeout=1)
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sqlite server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def phone_visit(household):
    return {"uuid": str(uuid.uuid4()), "form": "household_visit", "form_version": 1,
            "household_id": household, "created_at": "2026-05-01T10:00:00+08:00",
            "answers": {"visit_date": "2026-05-01", "visit_type": "home", "present": "户主、配偶",
                        "topics": ["income_jobs", "health_insurance"], "family_changes": ["none"],
                        "income_wages": 24000, "income_farming": 3500,
                        "needs_detail": "希望帮助联系县城务工岗位。" * 3,
                        "help_given": [{"product": "红薯", "quantity": 200, "unit": "斤", "price": 1.5}],
                        "risk": "no", "notes": "家中房屋安全，饮水正常。" * 4}}


def batch(visits):
    return {"submissions": [phone_visit(f"v1-000{random.randint(1, 3)}") for _ in range(visits)]}


def push(client, visits):
    body = json.dumps(batch(visits)).encode()
    t0 = time.perf_counter()
    status, reply = client.call("POST", "/api/v1/submissions", body)
    ms = (time.perf_counter() - t0) * 1000
    ok = status == 200 and all(r["status"] == "created" for r in reply["results"])
    return ms, ok


def cpu_seconds(pid):
    """User + system CPU time a process has used (Linux /proc), so the cost of a push can be
    compared apart from the waiting a busy machine adds to its latency."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_cpu_seconds():
    """User + system CPU of this process, all threads: the phones' side of a burst."""
    t = os.times()
    return t.user + t.system


def bare_request_cpu(servers, clients, requests=400):
    """Server CPU ms of a bare GET /api/v1/csrf (a session read and a small JSON answer), per
    server: what the HTTP server, Flask and the session cost before any work of the endpoint."""
    before = [cpu_seconds(s.proc.pid) for s in servers]
    for _ in range(requests):
        for c in clients:
            c.call("GET", "/api/v1/csrf")
    return [(cpu_seconds(s.proc.pid) - b) / requests * 1000 for s, b in zip(servers, before)]


def sequential(servers, passwords, pushes, visits):
    """One phone per server, pushes interleaved between the servers so noise hits both alike.
    Returns (latencies per server, errors per server, server CPU ms per push, server CPU ms per
    bare request)."""
    clients = []
    for server, password in zip(servers, passwords):
        c = Client(server.url)
        c.login("phone00", password)
        clients.append(c)
    times = [[] for _ in servers]
    errors = [0 for _ in servers]
    for _ in range(5):  # warm both
        for c in clients:
            push(c, visits)
    cpu = [cpu_seconds(s.proc.pid) for s in servers]
    for _ in range(pushes):
        for i, c in enumerate(clients):
            ms, ok = push(c, visits)
            times[i].append(ms)
            errors[i] += not ok
    cpu = [(cpu_seconds(s.proc.pid) - before) / pushes * 1000 for s, before in zip(servers, cpu)]
    return times, errors, cpu, bare_request_cpu(servers, clients)


def burst(server, password, phones, visits, rounds):
    clients = []
    for n in range(phones):
        c = Client(server.url)
        c.login(f"phone{n:02d}", password)
        clients.append(c)
    latencies, errors = [], []
    bodies = [[json.dumps(batch(visits)).encode() for _ in range(rounds)] for _ in clients]
    barrier = threading.Barrier(phones + 1)

    def phone(c, mine):
        barrier.wait()
        for body in mine:
            t0 = time.perf_counter()
            status, reply = c.call("POST", "/api/v1/submissions", body, timeout=120)
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200 or any(r["status"] != "created" for r in reply["results"]):
                errors.append(status)

    threads = [threading.Thread(target=phone, args=(c, b)) for c, b in zip(clients, bodies)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    server_cpu, client_cpu = cpu_seconds(server.proc.pid), client_cpu_seconds()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    pushes = phones * rounds
    cpu = ((cpu_seconds(server.proc.pid) - server_cpu) / pushes * 1000,
           (client_cpu_seconds() - client_cpu) / pushes * 1000)
    return latencies, wall, errors, cpu


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def run(stored, args):
    with tempfile.TemporaryDirectory() as d:
        docs = prepare(os.path.join(d, "jiedui"), stored, args.phones)
        sqlite_path = os.path.join(d, "bench.sqlite")
        sqlite_preload(sqlite_path, [(v["uuid"], v["household_id"], v["village_id"],
                                      json.dumps(v, ensure_ascii=False)) for v in docs])
        ours = LiveServer(os.path.join(d, "jiedui")).start()
        theirs = SqliteServer(sqlite_path).start()
        try:
            (t_ours, t_sql), (e_ours, e_sql), cpu, bare = sequential(
                [ours, theirs], [PASSWORD, "bench"], args.sequential, args.visits)
            b_sql = burst(theirs, "bench", args.phones, args.visits, args.rounds)
            b_ours = burst(ours, PASSWORD, args.phones, args.visits, args.rounds)
        finally:
            ours.stop()
            theirs.stop()
    return t_ours, t_sql, e_ours + e_sql, b_ours, b_sql, cpu, bare


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,20000")
    ap.add_argument("--phones", type=int, default=50)
    ap.add_argument("--visits", type=int, default=20)
    ap.add_argument("--sequential", type=int, default=200, help="pushes by one phone, per server")
    ap.add_argument("--rounds", type=int, default=4, help="pushes per phone in the burst")
    ap.add_argument("--postgres", action="store_true",
                    help="also one and two app servers on PostgreSQL beside TinyDB (bench/pg_bench.py)")
    args = ap.parse_args()
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        rows.append((n, run(n, args)))
        print(f"  measured {n} stored visits", file=sys.stderr)
    print(f"One phone pushing {args.visits} visits, {args.sequential} times per server, over HTTP "
          f"(waitress, 8 threads); ms")
    print(f"{'stored':>8} | {'jiedui p50':>10} {'p99':>7} | {'sqlite p50':>10} {'p99':>7} | "
          f"{'jiedui/sqlite p50':>17} | {'server CPU ms/push: jiedui':>26} {'sqlite':>6} | errors")
    for n, (t_ours, t_sql, errs, _b, _s, cpu, _bare) in rows:
        o, s = statistics.median(t_ours), statistics.median(t_sql)
        print(f"{n:>8} | {o:>10.2f} {p99(t_ours):>7.2f} | {s:>10.2f} {p99(t_sql):>7.2f} | "
              f"{o / s:>17.2f} | {cpu[0]:>26.2f} {cpu[1]:>6.2f} | {errs}")
    print(f"\n{args.phones} phones x {args.rounds} pushes of {args.visits} visits, all at once")
    print(f"{'stored':>8} | {'jiedui push/s':>13} {'p50':>7} {'p99':>7} | {'sqlite push/s':>13} "
          f"{'p50':>7} {'p99':>7} | {'jiedui/sqlite push/s':>20} | errors")
    for n, (_t, _s, _e, (lo, wo, eo, _c), (ls, ws, es, _d), _cpu, _bare) in rows:
        ro, rs = len(lo) / wo, len(ls) / ws
        print(f"{n:>8} | {ro:>13.1f} {statistics.median(lo):>7.1f} {p99(lo):>7.1f} | {rs:>13.1f} "
              f"{statistics.median(ls):>7.1f} {p99(ls):>7.1f} | {ro / rs:>20.2f} | {len(eo) + len(es)}")
    print(f"\nWhere the CPU went in that burst, ms per push ({os.cpu_count()} cores; the phones are "
          f"this process), and server CPU ms of a bare GET /api/v1/csrf")
    print(f"{'stored':>8} | {'jiedui server':>13} {'phones':>7} | {'sqlite server':>13} {'phones':>7} | "
          f"{'bare request: jiedui':>20} {'sqlite':>7}")
    for n, (_t, _s, _e, b_ours, b_sql, _cpu, bare) in rows:
        (so, co), (ss, cs) = b_ours[3], b_sql[3]
        print(f"{n:>8} | {so:>13.2f} {co:>7.2f} | {ss:>13.2f} {cs:>7.2f} | {bare[0]:>20.2f} {bare[1]:>7.2f}")
    if args.postgres:
        postgres_rows([int(s) for s in args.sizes.split(",")], args.phones, args.visits)


def postgres_rows(sizes, phones, visits):
    """The same burst on one TinyDB server, one app server on PostgreSQL and two on one database
    (a throwaway durable cluster), in one run."""
    from pg_bench import Cluster, print_sync, sync_rows
    cluster = Cluster(durable=True).start()
    try:
        print()
        print_sync(sync_rows(cluster, sizes, phones, visits), phones, visits)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
