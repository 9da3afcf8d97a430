"""Dashboard stats at county size: 360 villages, 160,000 households, 500,000 visits, built through
the record owners in big batches (one write per village), then GET /api/v1/stats over HTTP on the
real server (waitress): start-up, the first request (cold: every village summarised), warm
requests (summaries cached by each village's change cursor), one village's page, and a request
after a visit changed one village. Prints p50/p99 per case and the server's memory.

Usage: .venv/bin/python bench/stats_bench.py [--villages 360] [--households 160000]
       [--visits 500000] [--requests 40] [--rebuild]
The county is built once into bench/out/county-<villages>-<households>-<visits>/ (about 10 min on
2 busy cores, 430 MB) and reused by later runs (a few minutes: the server loads it, ~1.8 GB RSS).
Each run adds 20 visits to one village (the "after a visit" case).
"""

import argparse
import os
import random
import shutil
import sys
import time
import uuid
from datetime import date, timedelta
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from server.records.layout import LAYOUT  # noqa: E402
from server.forms import effects as form_effects  # noqa: E402
from server.forms import formdefs  # noqa: E402
from server.records import households, submissions, users, villages  # noqa: E402
from server.store import Store  # noqa: E402
from tests.live import Client, LiveServer  # noqa: E402

PASSWORD = "county-bench-2026"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
TOPICS = ("income_jobs", "health_insurance", "schooling", "housing_safety", "industry", "sales_help")


def build(data_dir, n_villages, n_households, n_visits, seed=2026):
    rng = random.Random(seed)
    registry = formdefs.FormRegistry.load(os.path.join(ROOT, "forms"), os.path.join(data_dir, "forms"))
    definition = registry.get("household_visit")
    today = date.today()
    store = Store(data_dir, layout=LAYOUT, snapshot_every=0, journal_snapshot_bytes=1 << 40).open()
    t0 = time.perf_counter()
    vids = [f"4306{i // 15:04d}{i % 15 + 1:04d}" for i in range(n_villages)]

    def write_villages(tx):
        for i, vid in enumerate(vids):
            villages.put(tx, {"id": vid, "name": f"第{i + 1}村", "township": f"第{i // 15 + 1}镇",
                              "county": "青溪县"})
    store.write(write_villages)
    cheap = users.hash_password(PASSWORD, "pbkdf2:sha256:1000")
    users.create("county", "supervisor", None, villages=vids, display_name="县督导", store=store,
                 password_hash=cheap)
    users.create("admin", "admin", None, store=store, password_hash=cheap)
    cadres = {}
    for vid in vids:
        cadres[vid] = [f"c{vid}a", f"c{vid}b"]
        for cid in cadres[vid]:
            users.create(cid, "cadre", None, villages=[vid], store=store, password_hash=cheap)
    per_village_h = n_households // n_villages
    per_village_v = n_visits // n_villages
    for index, vid in enumerate(vids):
        docs = []
        for n in range(1, per_village_h + 1):
            name = rng.choice(SURNAMES) + rng.choice("建国桂英志明秀兰春生冬梅")
            docs.append(households.new_household(
                vid, households.make_id(vid, n), head_name=name, group=f"{rng.randint(1, 8)}组",
                category=rng.choice(households.CATEGORIES), population=rng.randint(1, 6),
                cadre_ids=[cadres[vid][n % 2]], updated_at="2026-01-01T00:00:00+00:00"))
        prepared = []
        for _ in range(per_village_v):
            h = docs[min(int(rng.paretovariate(1.2)) - 1, per_village_h - 1) if rng.random() < 0.5
                     else rng.randrange(per_village_h)]
            day = today - timedelta(days=rng.randint(0, 364))
            answers = {"visit_date": day.isoformat(), "visit_type": "home", "present": h["head_name"],
                       "topics": rng.sample(TOPICS, 2), "family_changes": ["none"], "risk": "no"}
            if rng.random() < 0.3:
                answers["help_given"] = [{"product": "红薯", "quantity": rng.randint(50, 500), "unit": "斤",
                                          "price": 1.5}]
            if rng.random() < 0.1:
                answers["followups"] = [{"action": "联系务工岗位",
                                         "due_date": (day + timedelta(days=30)).isoformat()}]
            cadre = SimpleNamespace(id=h["cadre_ids"][0])
            item = {"uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "form": "household_visit",
                    "form_version": definition["version"], "household_id": h["id"],
                    "created_at": f"{day.isoformat()}T10:00:00+08:00", "answers": answers}
            effects = form_effects.of(definition, answers, at=item["created_at"])
            record = submissions.build_record(item["uuid"], cadre, h, definition, answers, [],
                                              item["created_at"], None, None, effects)
            prepared.append((cadre.id, {"record": record, "fingerprint": submissions.fingerprint(item),
                                        "effects": effects}))

        def write(tx, docs=docs, prepared=prepared):
            for d in docs:
                households.create(tx, "bench", d, write_audit=False)
            for actor, p in prepared:
                submissions.store_prepared(tx, actor, p, write_audit=False)
        store.write(write)
        if (index + 1) % 40 == 0:
            print(f"  built {index + 1}/{n_villages} villages in {time.perf_counter() - t0:.0f} s", flush=True)
    t1 = time.perf_counter()
    store.close()  # snapshots every village file
    print(f"built the county in {t1 - t0:.0f} s, files written in {time.perf_counter() - t1:.0f} s")
    return vids


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def timed(client, path, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        status, _body = client.call("GET", path, timeout=600)
        out.append((time.perf_counter() - t) * 1000)
        assert status == 200, (path, status)
    return out


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--villages", type=int, default=360)
    ap.add_argument("--households", type=int, default=160_000)
    ap.add_argument("--visits", type=int, default=500_000)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    data = os.path.join(ROOT, "bench", "out", f"county-{args.villages}-{args.households}-{args.visits}")
    if args.rebuild or not os.path.exists(os.path.join(data, "core.json")):
        shutil.rmtree(data, ignore_errors=True)
        os.makedirs(data)
        build(data, args.villages, args.households, args.visits)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data) for f in fs)
    print(f"county: {args.villages} villages, {args.households} households, {args.visits} visits, "
          f"{size / 2**20:.0f} MB on disk ({data})")
    t = time.perf_counter()
    server = LiveServer(data, extra_env={"JIEDUI_SNAPSHOT_EVERY": "0"}).start(timeout=900)
    print(f"serve: ready in {time.perf_counter() - t:.1f} s, RSS {rss_mb(server.proc.pid):.0f} MB")
    try:
        client = Client(server.url)
        assert client.login("county", PASSWORD)[0] == 200
        cold = timed(client, "/api/v1/stats", 1)[0]
        print(f"GET /api/v1/stats cold (first request, every village summarised): {cold:.0f} ms, "
              f"RSS {rss_mb(server.proc.pid):.0f} MB")
        warm = timed(client, "/api/v1/stats", args.requests)
        print(f"GET /api/v1/stats warm, county ({args.requests} requests): p50 {pct(warm, 50):.1f} ms, "
              f"p99 {pct(warm, 99):.1f} ms")
        _s, stats = client.call("GET", "/api/v1/stats")
        vid = stats["villages"][0]["id"]
        one = timed(client, f"/api/v1/stats?village={vid}", args.requests)
        print(f"GET /api/v1/stats?village=ID warm: p50 {pct(one, 50):.1f} ms, p99 {pct(one, 99):.1f} ms")
        cadre = Client(server.url)
        assert cadre.login(f"c{vid}a", PASSWORD)[0] == 200
        changed = []
        for i in range(min(args.requests, 20)):
            item = {"uuid": str(uuid.uuid4()), "form": "household_visit", "form_version": 2,
                    "household_id": households.make_id(vid, 2), "created_at": f"{date.today()}T09:00:00+08:00",
                    "answers": {"visit_date": date.today().isoformat(), "visit_type": "home", "present": "户主",
                                "topics": ["income_jobs"], "family_changes": ["none"], "risk": "no"}}
            status, body = cadre.call("POST", "/api/v1/submissions", {"submissions": [item]})
            assert status == 200 and body["results"][0]["status"] == "created", body
            changed.extend(timed(client, "/api/v1/stats", 1))
        print(f"GET /api/v1/stats after a visit changed one village: p50 {pct(changed, 50):.1f} ms, "
              f"p99 {pct(changed, 99):.1f} ms")
        page = timed(client, "/dashboard", 5)
        print(f"GET /dashboard warm (HTML, 3 charts, 360 rows): p50 {pct(page, 50):.0f} ms")
        print(f"server RSS at the end: {rss_mb(server.proc.pid):.0f} MB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
