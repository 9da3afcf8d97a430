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

Then (issue 28) the rows a single visit and an aged village are measured by, Jiedui's server CPU
read from /proc (less noisy than latency on a busy machine):
  - single visits: one phone pushing one visit at a time (`--single` pushes), and `--phones` phones
    at once each sending visits one at a time (`--single-rounds` each): server CPU ms per visit,
    beside the same for sqlite; and one ODK Collect sending PV enrollments over OpenRosa
    (multipart, a device token, one request a form), the way Central was measured in issue 28
    (Central: 31 ms of server CPU a submission there);
  - a dense village: v1 grown to 72 households holding `--dense` visits (each with one new promise,
    as the pushes that follow), then 20-visit pushes and single visits to random households of it:
    server CPU ms per push and p50, so the cost can be compared from 1,000 to 20,000 and 100,000
    stored visits (five years of monthly visits is 60 a household; 100,000 is 1,400).

Usage: .venv/bin/python bench/sync_bench.py [--sizes 1000,20000] [--phones 50] [--visits 20]
                                            [--sequential 200] [--rounds 4] [--postgres]
                                            [--rows batch,single,dense] [--single 300]
                                            [--single-rounds 10] [--dense 1000,20000,100000]
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
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from server.records.layout import LAYOUT  # noqa: E402
from server.store import CORE, Store  # noqa: E402
from sqlite_server import preload as sqlite_preload  # noqa: E402
from store_bench import visit as stored_visit  # noqa: E402
from tests.collect import COLLECT_HEADERS, pv_instance  # noqa: E402
from tests.conftest import PASSWORD, seed_world  # noqa: E402
from tests.live import Client, LiveServer, free_port  # noqa: E402

EXTRA_VILLAGES = [f"v{i:03d}" for i in range(50)]


def prepare(data_dir, stored, phones):
    """The tests' small world plus `stored` old visits spread over 50 more villages; returns those
    visits and an OpenRosa device token of phone00 (Collect's server URL carries it)."""
    store = Store(data_dir, layout=LAYOUT, snapshot_every=0).open()
    seed_world(store)
    from server.records import devices, users
    fast = users.hash_password(PASSWORD, method="pbkdf2:sha256:1000")
    for n in range(phones):
        users.create(f"phone{n:02d}", "cadre", PASSWORD, villages=["v1"], store=store,
                     password_hash=fast)
    token, _errors = devices.create("phone00", "collect", db=store) if phones else (None, [])

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
    return docs, token


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


DENSE_HOUSEHOLDS = 72


def phone_visit(household):
    return {"uuid": str(uuid.uuid4()), "form": "household_visit", "form_version": 1,
            "household_id": household, "created_at": "2026-05-01T10:00:00+08:00",
            "answers": {"visit_date": "2026-05-01", "visit_type": "home", "present": "户主、配偶",
                        "topics": ["income_jobs", "health_insurance"], "family_changes": ["none"],
                        "income_wages": 24000, "income_farming": 3500,
                        "needs_detail": "希望帮助联系县城务工岗位。" * 3,
                        "help_given": [{"product": "红薯", "quantity": 200, "unit": "斤", "price": 1.5}],
                        "risk": "no", "notes": "家中房屋安全，饮水正常。" * 4}}


def promised_visit(household, day="2026-05-01"):
    """A visit with one new promise (what grows a household's open follow-ups)."""
    v = phone_visit(household)
    v["answers"] = dict(v["answers"], visit_date=day,
                        followups=[{"action": "联系人社局就业岗位", "due_date": "2026-06-01"}])
    return v


def batch(visits, households=3, promise=False):
    make = promised_visit if promise else phone_visit
    return {"submissions": [make(f"v1-{random.randint(1, households):04d}") for _ in range(visits)]}


def densify(data_dir, visits, rng=random):
    """Village v1 grows to 72 households and receives `visits` visits, each with one promise,
    through the real pipeline (submissions.receive, 100 a push), without HTTP."""
    from server import create_app
    from server.forms import formdefs
    from server.records import households, submissions
    from server.store import close_app_store, get_store
    from server.web.auth import get_user
    app = create_app({"DATA_DIR": data_dir, "SNAPSHOT_EVERY": 0})
    try:
        with app.app_context():
            def more(tx):
                for i in range(4, DENSE_HOUSEHOLDS + 1):
                    households.create(tx, "test", households.new_household(
                        "v1", f"v1-{i:04d}", head_name=f"户{i}"), write_audit=False)
            get_store().write(more)
            user = get_user("cadre1")
            settings = formdefs.served_settings(app)
            for start in range(0, visits, 100):
                items = [promised_visit(f"v1-{rng.randint(1, DENSE_HOUSEHOLDS):04d}")
                         for _ in range(min(100, visits - start))]
                results = submissions.receive(user, items, formdefs.registry(), settings,
                                              max_attachment_bytes=app.config["MAX_ATTACHMENT_BYTES"])
                assert all(r["status"] == "created" for r in results), results[:1]
    finally:
        close_app_store(app)


def push(client, visits, households=3, promise=False):
    body = json.dumps(batch(visits, households, promise)).encode()
    t0 = time.perf_counter()
    status, reply = client.call("POST", "/api/v1/submissions", body)
    ms = (time.perf_counter() - t0) * 1000
    ok = status == 200 and all(r["status"] == "created" for r in reply["results"])
    return ms, ok


def collect_submission(client, token, household):
    """One PV enrollment as ODK Collect posts it: multipart, `xml_submission_file`, no cookie."""
    boundary = uuid.uuid4().hex
    xml = pv_instance(household, instance_id=f"uuid:{uuid.uuid4()}")
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
            f'filename="submission.xml"\r\nContent-Type: text/xml\r\n\r\n').encode() + xml + \
        f"\r\n--{boundary}--\r\n".encode()
    headers = dict(COLLECT_HEADERS, **{"Content-Type": f"multipart/form-data; boundary={boundary}"})
    t0 = time.perf_counter()
    status, _reply = client.call("POST", f"/openrosa/key/{token}/submission", body, headers=headers)
    return (time.perf_counter() - t0) * 1000, status == 201


def collect_singles(server, token, submissions):
    """One Collect sending `submissions` instances one at a time, as it does (one request a form):
    (latencies, server CPU ms per submission, errors)."""
    client = Client(server.url)
    for _ in range(5):
        collect_submission(client, token, "v1-0001")
    before = cpu_seconds(server.proc.pid)
    times, errors = [], 0
    for _ in range(submissions):
        ms, ok = collect_submission(client, token, f"v1-{random.randint(1, 3):04d}")
        times.append(ms)
        errors += not ok
    return times, (cpu_seconds(server.proc.pid) - before) / submissions * 1000, errors


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


@contextmanager
def both_servers(stored, phones):
    """Jiedui and the sqlite server, started on the same `stored` old visits: (ours, theirs,
    phone00's OpenRosa token)."""
    with tempfile.TemporaryDirectory() as d:
        docs, token = prepare(os.path.join(d, "jiedui"), stored, phones)
        sqlite_path = os.path.join(d, "bench.sqlite")
        sqlite_preload(sqlite_path, [(v["uuid"], v["household_id"], v["village_id"],
                                      json.dumps(v, ensure_ascii=False)) for v in docs])
        ours = LiveServer(os.path.join(d, "jiedui")).start()
        try:
            theirs = SqliteServer(sqlite_path).start()
            try:
                yield ours, theirs, token
            finally:
                theirs.stop()
        finally:
            ours.stop()


def run(stored, args):
    with both_servers(stored, args.phones) as (ours, theirs, _token):
        (t_ours, t_sql), (e_ours, e_sql), cpu, bare = sequential(
            [ours, theirs], [PASSWORD, "bench"], args.sequential, args.visits)
        b_sql = burst(theirs, "bench", args.phones, args.visits, args.rounds)
        b_ours = burst(ours, PASSWORD, args.phones, args.visits, args.rounds)
    return t_ours, t_sql, e_ours + e_sql, b_ours, b_sql, cpu, bare


def single_rows(args):
    """One phone, then `--phones` phones at once, each pushing one visit at a time: server CPU ms
    per visit (Jiedui and sqlite), pushes/s and p50/p99 of the burst."""
    with both_servers(1000, args.phones) as (ours, theirs, token):
        times, errors, cpu, bare = sequential([ours, theirs], [PASSWORD, "bench"], args.single, 1)
        collect = collect_singles(ours, token, args.single)
        b_sql = burst(theirs, "bench", args.phones, 1, args.single_rounds)
        b_ours = burst(ours, PASSWORD, args.phones, 1, args.single_rounds)
    print(f"\nSingle visits (issue 28): one phone pushing one visit, {args.single} times per server; "
          f"then {args.phones} phones at once, each sending {args.single_rounds} visits one at a time")
    print(f"{'':>22} | {'jiedui p50':>10} {'server CPU ms/visit':>19} | {'sqlite p50':>10} "
          f"{'server CPU ms/visit':>19} | {'push/s jiedui':>13} {'sqlite':>7} | errors")
    print(f"{'1 phone':>22} | {statistics.median(times[0]):>10.2f} {cpu[0]:>19.2f} | "
          f"{statistics.median(times[1]):>10.2f} {cpu[1]:>19.2f} | {'':>13} {'':>7} | {sum(errors)}")
    (lo, wo, eo, (so, _co)), (ls, ws, es, (ss, _cs)) = b_ours, b_sql
    print(f"{f'{args.phones} phones at once':>22} | {statistics.median(lo):>10.2f} {so:>19.2f} | "
          f"{statistics.median(ls):>10.2f} {ss:>19.2f} | {len(lo) / wo:>13.1f} {len(ls) / ws:>7.1f} | "
          f"{len(eo) + len(es)}")
    c_times, c_cpu, c_errors = collect
    print(f"{'1 Collect (OpenRosa)':>22} | {statistics.median(c_times):>10.2f} {c_cpu:>19.2f} | "
          f"{'':>10} {'':>19} | {'':>13} {'':>7} | {c_errors}")
    print(f"{'bare GET /api/v1/csrf':>22} | {'':>10} {bare[0]:>19.2f} | {'':>10} {bare[1]:>19.2f} |")


def dense_rows(args):
    """v1 grown to 72 households holding N visits with a promise each; then, one phone: 20-visit
    pushes (each visit with one new promise) and single visits to random households of it."""
    rows = []
    for n in [int(x) for x in args.dense.split(",") if x]:
        random.seed(n)
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "jiedui")
            prepare(data, 0, 1)
            t = time.perf_counter()
            densify(data, n, random.Random(n))
            print(f"  dense village: {n} visits stored in {time.perf_counter() - t:.0f} s", file=sys.stderr)
            ours = LiveServer(data).start()
            try:
                c = Client(ours.url)
                c.login("phone00", PASSWORD)
                out = []
                for visits, pushes in ((args.visits, args.sequential), (1, args.single)):
                    for _ in range(5):
                        push(c, visits, DENSE_HOUSEHOLDS, True)
                    before = cpu_seconds(ours.proc.pid)
                    times, errors = [], 0
                    for _ in range(pushes):
                        ms, ok = push(c, visits, DENSE_HOUSEHOLDS, True)
                        times.append(ms)
                        errors += not ok
                    out.append((statistics.median(times), p99(times),
                                (cpu_seconds(ours.proc.pid) - before) / pushes * 1000, errors))
            finally:
                ours.stop()
        rows.append((n, out))
    print("\nA dense village (issue 28): v1's 72 households holding N visits, each with one new promise; "
          "one phone pushing to random households of it (each visit with one new promise); ms")
    print(f"{'stored in v1':>12} | {f'{args.visits}-visit p50':>13} {'p99':>7} {'server CPU/push':>15} | "
          f"{'1-visit p50':>11} {'p99':>7} {'server CPU/push':>15} | errors")
    for n, ((b50, b99, bcpu, berr), (s50, s99, scpu, serr)) in rows:
        print(f"{n:>12} | {b50:>13.2f} {b99:>7.2f} {bcpu:>15.2f} | {s50:>11.2f} {s99:>7.2f} {scpu:>15.2f} | "
              f"{berr + serr}")
    if len(rows) > 1:
        (n0, first), (n1, last) = rows[0], rows[-1]
        print(f"{n1} / {n0}: server CPU per {args.visits}-visit push x{last[0][2] / first[0][2]:.2f}, "
              f"per single visit x{last[1][2] / first[1][2]:.2f} (goal <= 1.5)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,20000")
    ap.add_argument("--phones", type=int, default=50)
    ap.add_argument("--visits", type=int, default=20)
    ap.add_argument("--sequential", type=int, default=200, help="pushes by one phone, per server")
    ap.add_argument("--rounds", type=int, default=4, help="pushes per phone in the burst")
    ap.add_argument("--postgres", action="store_true",
                    help="also one and two app servers on PostgreSQL beside TinyDB (bench/pg_bench.py)")
    ap.add_argument("--rows", default="batch,single,dense", help="which tables to measure")
    ap.add_argument("--single", type=int, default=300, help="single visits by one phone")
    ap.add_argument("--single-rounds", type=int, default=10, help="single visits per phone in the burst")
    ap.add_argument("--dense", default="1000,20000,100000", help="visits stored in the dense village")
    args = ap.parse_args()
    wanted = set(args.rows.split(","))
    if "batch" in wanted:
        batch_rows(args)
    if "single" in wanted:
        single_rows(args)
    if "dense" in wanted:
        dense_rows(args)


def batch_rows(args):
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
