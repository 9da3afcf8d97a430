"""A county, end to end: build one through the store (360 villages, 160,000 households, 500,000
visits, a few thousand photos, an audit entry a visit), then serve it and print what a county
costs:

  - start-up: `flask serve` until GET /api/v1/csrf answers, and its RSS;
  - RSS after touching 10% / 50% / 100% of the villages under the memory budget (--memory-mb);
  - a 20-visit push, p50/p99 and server CPU, beside the SQLite-WAL server (bench/sqlite_server.py)
    holding the same 500,000 visits, interleaved in the same run (each run pushes into the next
    village in turn, so no village grows much past its size);
  - GET /api/v1/stats for the whole county, cold (after the restart) and warm p50, if the
    dashboard is there;
  - an export's rows/s (GET /exports/submissions.zip for one village), if exports are there;
  - a village print, cold and warm (POST /villages/<id>/print-jobs), if printing is there.

    .venv/bin/python bench/county_bench.py [--dir bench/out/county] [--memory-mb 1024]
        [--villages 360 --households 160000 --visits 500000 --photos 3000] [--rebuild]
        [--pushes 100] [--skip-print]

The county is built once into --dir (about 0.9 GB, and the SQLite yardstick's copy of the visits
beside it; reruns reuse both: data/BUILT.json records what was built). Building takes several
minutes (18 on a busy 2-core machine); a measuring run under ten minutes on 2 cores.
"""

import argparse
import datetime
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from server.records.layout import LAYOUT  # noqa: E402
from server.store import CORE, Store, encode  # noqa: E402
from sqlite_server import preload as sqlite_preload  # noqa: E402
from sync_bench import SqliteServer, cpu_seconds, p99, phone_visit  # noqa: E402
from tests.live import Client, LiveServer  # noqa: E402

PASSWORD = "county-bench-2026"
DONE = "BUILT.json"
TOWNSHIPS = 24
YEAR_START = datetime.date(2025, 6, 1)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "秀英桂兰建国志强红梅德福玉珍春生海燕金花永红国庆"
PRODUCTS = (("红薯", "斤", 1.5), ("蜂蜜", "斤", 40), ("土鸡蛋", "个", 1.2), ("茶油", "斤", 60))


def village_id(n):
    return f"43052310{n:04d}"


EXPORT_VILLAGE = village_id(2)


def shares(total, parts, rng):
    """`total` split into `parts` uneven whole shares (villages differ in size)."""
    weights = [rng.uniform(0.45, 1.55) for _ in range(parts)]
    scale = total / sum(weights)
    out = [max(1, int(w * scale)) for w in weights]
    out[-1] += total - sum(out)
    return out


def person(rng):
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def household(vid, n, cadre, rng):
    head = person(rng)
    members = [{"name": head, "relation": "户主", "sex": rng.choice(("male", "female")),
                "birth_year": rng.randint(1945, 1985), "health": rng.choice(("健康", "慢性病", "残疾")),
                "schooling": rng.choice(("小学", "初中", "高中")), "work": rng.choice(("务农", "务工", ""))}]
    for rel in rng.sample(("配偶", "儿子", "女儿", "儿媳", "孙子", "孙女"), rng.randint(0, 4)):
        members.append({"name": person(rng), "relation": rel, "sex": rng.choice(("male", "female")),
                        "birth_year": rng.randint(1950, 2020), "health": "健康", "schooling": "初中",
                        "work": rng.choice(("务农", "广东务工", "县城务工", "在读"))})
    return {"id": f"{vid}-{n:04d}", "village_id": vid, "head_name": head, "phone": "13812345678",
            "address": f"{rng.randint(1, 9)}组{rng.randint(1, 60)}号", "group": f"{rng.randint(1, 9)}组",
            "category": rng.choice(("tuopin", "tuopin", "jiance", "dibao", "ordinary")),
            "population": len(members), "members": members,
            "plots": [{"name": "屋后田", "area_mu": round(rng.uniform(0.3, 3), 1), "east": "李家田",
                       "west": "机耕道", "south": "水渠", "north": "山脚", "contract_signed": True}],
            "cadre_ids": [cadre], "pv_status": None, "version": 1, "field_versions": {},
            "updated_at": "2025-06-01T00:00:00+00:00", "last_visit_date": None, "open_followups": []}


def visit(hid, vid, cadre, day, photo, rng):
    """A stored visit, in the shape submissions.build_record gives it (about 1.3 KB of JSON)."""
    sub_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    product, unit, price = rng.choice(PRODUCTS)
    quantity = rng.randint(10, 500)
    answers = {"visit_date": day, "visit_type": rng.choice(("home", "home", "phone", "group")),
               "present": "户主、配偶", "topics": rng.sample(("income_jobs", "health_insurance",
                                                           "schooling", "housing_safety"), 2),
               "family_changes": ["none"], "income_wages": rng.randint(0, 40) * 1000,
               "income_farming": rng.randint(0, 8) * 500, "needs": ["employment"],
               "needs_detail": "希望帮助联系县城务工岗位，老人慢性病用药报销。", "risk": "no",
               "help_given": [{"product": product, "quantity": quantity, "unit": unit, "price": price}],
               "followups": [{"action": "联系人社局就业岗位", "due_date": day}],
               "notes": "家中房屋安全，饮水正常。" * 3}
    answers["income_total"] = answers["income_wages"] + answers["income_farming"]
    attachments = []
    if photo:
        answers["photo_1"] = "photo_1.jpg"
        attachments = [{"name": "photo_1.jpg", "sha256": "0" * 64, "size": 1000,
                        "type": "image/jpeg", "received": True}]
    state = rng.choice(("approved", "approved", "received", "has_issues"))
    return {"uuid": sub_uuid, "form": "household_visit", "form_version": 2, "household_id": hid,
            "village_id": vid, "cadre_id": cadre, "answers": answers, "attachments": attachments,
            "created_at": f"{day}T10:00:00+08:00", "base_version": None, "supersedes": None,
            "superseded_by": None, "visit_date": day, "help_value": round(quantity * price, 2),
            "review": {"state": state, "comment": "", "fields": {}, "by": None, "at": None,
                       "history": []},
            "fingerprint": hashlib.sha256(sub_uuid.encode()).hexdigest(),
            "received_at": f"{day}T12:00:00+00:00"}


def county(args):
    """Yields (village record, cadre id, households, visits) village by village, deterministically."""
    rng = random.Random(2026)
    households = shares(args.households, args.villages, rng)
    visits = [round(h * args.visits / args.households) for h in households]
    visits[-1] += args.visits - sum(visits)
    photo_every = max(1, args.visits // max(1, args.photos))
    seen = 0
    for n in range(args.villages):
        vid = village_id(n + 1)
        vrng = random.Random(f"{vid}-2026")
        cadre = f"c{n + 1:04d}"
        homes = [household(vid, i + 1, cadre, vrng) for i in range(households[n])]
        subs = []
        for _ in range(visits[n]):
            home = vrng.choice(homes)
            day = (YEAR_START + datetime.timedelta(days=vrng.randrange(365))).isoformat()
            seen += 1
            subs.append(visit(home["id"], vid, cadre, day, seen % photo_every == 0, vrng))
        last = {}
        for s in subs:
            last[s["household_id"]] = max(last.get(s["household_id"], ""), s["visit_date"])
        for h in homes:
            h["last_visit_date"] = last.get(h["id"])
        record = {"id": vid, "name": f"{person(vrng)[0]}家{'坪湾岭冲塘'[n % 5]}村",
                  "township": f"第{n % TOWNSHIPS + 1}镇", "county": "平江县"}
        yield record, cadre, homes, subs


def build(args, data):
    """The county written through the store, one village per write (big writes), each village
    snapshotted once and dropped; then the audit entries, one day per write."""
    if os.path.exists(data):
        shutil.rmtree(data)
    os.makedirs(data)
    from werkzeug.security import generate_password_hash
    fast = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    t0 = time.perf_counter()
    store = Store(data, layout=LAYOUT, snapshot_every=0, memory_mb=256, idle_seconds=0).open()
    audit_days = {}
    photo_files = []

    def user(uid, role, villages):
        return {"id": uid, "username": uid, "display_name": uid, "role": role, "villages": villages,
                "unit": "县农业农村局", "phone": "", "active": True, "password_hash": fast,
                "created_at": "2025-06-01T00:00:00+00:00"}

    townships = {}
    for i, (record, cadre, homes, subs) in enumerate(county(args)):
        townships.setdefault(record["township"], []).append(record["id"])
        prepared = [encode(h, handed_over=True) for h in homes] + \
                   [encode(s, handed_over=True) for s in subs]

        def write(tx, record=record, cadre=cadre, prepared=prepared, vid=record["id"]):
            tx.put(CORE, "villages", record)
            tx.put(CORE, "users", user(cadre, "cadre", [vid]))
            for doc in prepared:
                tx.put(vid, "submissions" if "uuid" in doc.doc else "households", doc)
        store.write(write)
        for s in subs:
            audit_days.setdefault(s["received_at"][:10], []).append(
                (s["received_at"], s["cadre_id"], s["uuid"], s["household_id"]))
            if s["attachments"]:
                photo_files.append(s["uuid"])
        store.snapshot()
        with store._lock:
            store._evict(idle=0)
        if (i + 1) % 20 == 0:
            print(f"  built {i + 1} villages ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    def people(tx):
        tx.put(CORE, "users", user("admin", "admin", []))
        for n, (township, vids) in enumerate(sorted(townships.items())):
            tx.put(CORE, "users", user(f"super{n + 1:02d}", "supervisor", vids))
    store.write(people)
    for day, entries in sorted(audit_days.items()):
        part = f"audit.{day.replace('-', '')}"

        def write(tx, part=part, entries=entries):
            for n, (at, cadre, sub_uuid, hid) in enumerate(entries):
                tx.put(part, "audit", {"id": f"{sub_uuid[:8]}{n:06x}", "time": at, "user": cadre,
                                       "action": "submission", "target": sub_uuid,
                                       "details": {"form": "household_visit", "household_id": hid,
                                                   "clash": None}})
        store.write(write)
        store.snapshot()
        with store._lock:
            store._evict(idle=0)
    store.close()
    from tests.print_samples import jpeg_bytes
    jpeg = jpeg_bytes()
    for sub_uuid in photo_files:
        os.makedirs(os.path.join(data, "attachments", sub_uuid), exist_ok=True)
        with open(os.path.join(data, "attachments", sub_uuid, "photo_1.jpg"), "wb") as f:
            f.write(jpeg)
    yardstick(args, os.path.join(os.path.dirname(data), "county.sqlite"))
    seconds = time.perf_counter() - t0
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data) for f in fs)
    with open(os.path.join(data, DONE), "w") as f:
        json.dump({"params": params(args), "seconds": round(seconds), "bytes": size}, f)
    return seconds


def yardstick(args, path):
    """The SQLite-WAL server's database holding the same visits (built once, beside the county)."""
    if os.path.exists(path):
        os.remove(path)
    for _record, _cadre, _homes, subs in county(args):
        sqlite_preload(path, [(s["uuid"], s["household_id"], s["village_id"],
                               json.dumps(s, ensure_ascii=False)) for s in subs])


def params(args):
    return {k: getattr(args, k) for k in ("villages", "households", "visits", "photos")}


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def route_exists(rule):
    from server import create_app
    app = create_app({"DATA_DIR": tempfile.mkdtemp(prefix="jiedui-routes-")})
    return any(r.rule == rule for r in app.url_map.iter_rules())


def timed(client, method, path, body=None, timeout=600):
    t0 = time.perf_counter()
    status, reply = client.call(method, path, body, timeout=timeout)
    return (time.perf_counter() - t0) * 1000, status, reply


def measure(args, data, out):
    built = json.load(open(os.path.join(data, DONE)))
    out(f"county: {args.villages} villages, {args.households} households, {args.visits} visits, "
        f"{args.photos} photos; {built['bytes'] / 1e9:.2f} GB on disk (built in {built['seconds']} s)")
    env = {"JIEDUI_MEMORY_MB": str(args.memory_mb)}
    if not args.skip_print:  # the print cache of earlier runs goes, so the cold print is cold
        shutil.rmtree(os.path.join(data, "prints"), ignore_errors=True)
    with tempfile.TemporaryDirectory() as empty:  # the same start on no data: what imports cost
        t0 = time.perf_counter()
        LiveServer(empty, extra_env=env).start(timeout=600).stop()
        baseline = time.perf_counter() - t0
    t0 = time.perf_counter()
    server = LiveServer(data, extra_env=env).start(timeout=600)
    startup = time.perf_counter() - t0
    try:
        out(f"start-up: GET /api/v1/csrf answers {startup:.2f} s after `flask serve` starts "
            f"({baseline:.2f} s on an empty data folder); RSS {rss_mb(server.proc.pid):.0f} MB "
            f"(budget JIEDUI_MEMORY_MB={args.memory_mb})")
        admin = Client(server.url)
        admin.login("admin", PASSWORD)
        order = [village_id(n + 1) for n in range(args.villages)]
        random.Random(7).shuffle(order)
        touched, t0 = 0, time.perf_counter()
        for share in (0.1, 0.5, 1.0):
            while touched < int(args.villages * share):
                status, _ = admin.call("GET", f"/api/v1/households/{order[touched]}-0001")
                assert status == 200, status
                touched += 1
            out(f"  after touching {touched:>3} villages ({share:.0%}): RSS {rss_mb(server.proc.pid):.0f} MB "
                f"({time.perf_counter() - t0:.1f} s so far)")
        push_figures(args, data, server, out)
        stats_figures(args, server, admin, out)
        export_figures(args, server, admin, out)
        if not args.skip_print:
            print_figures(args, data, server, admin, out)
    finally:
        server.stop()


def push_figures(args, data, server, out):
    """Pushes into the county beside the SQLite-WAL server holding the same visits."""
    path = os.path.join(os.path.dirname(data), "county.sqlite")
    if not os.path.exists(path):  # a county built before the yardstick was kept with it
        yardstick(args, path)
    vid, cadre_id = push_village(args, data)
    theirs = SqliteServer(path).start()
    try:
        cadre = Client(server.url)
        cadre.login(cadre_id, PASSWORD)
        sql = Client(theirs.url)
        sql.login(cadre_id, "bench")
        times, errors, cpu = sequential_clients([cadre, sql], [server, theirs], args.pushes, vid)
    finally:
        theirs.stop()
    o, s = statistics.median(times[0]), statistics.median(times[1])
    out(f"push of 20 visits at county size ({args.pushes} per server, interleaved, village {vid}): "
        f"jiedui p50 {o:.1f} ms "
        f"p99 {p99(times[0]):.1f} | sqlite-wal p50 {s:.1f} ms p99 {p99(times[1]):.1f} | ratio {o / s:.2f} | "
        f"server CPU ms/push {cpu[0]:.2f} vs {cpu[1]:.2f} | errors {sum(errors)}")


def smallest_village(data):
    """The village with the smallest file: the one the print figures use."""
    folder = os.path.join(data, "villages")
    sizes = {name[:-5]: os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder)}
    return min(sizes, key=sizes.get)


def push_village(args, data):
    """This run's village for the pushes, and its cadre: the next in turn, never the villages the
    print and export figures use. A run adds about 2,000 visits to it. When every run pushed into
    village 1, it grew to 53 MB (25 times a village) and skewed later figures: the stats after a
    restart waited while the background printer's first round loaded it."""
    done = os.path.join(data, DONE)
    with open(done) as f:
        built = json.load(f)
    runs = built.get("runs", 1)  # counties built before this count pushed every run into village 1
    n = 1 + runs % args.villages
    while village_id(n) in (args.print_village or smallest_village(data), EXPORT_VILLAGE):
        n = 1 + n % args.villages
    built["runs"] = runs + 1
    with open(done + ".new", "w") as f:
        json.dump(built, f)
    os.replace(done + ".new", done)
    return village_id(n), f"c{n:04d}"


def sequential_clients(clients, servers, pushes, vid):
    """One phone per server, pushes interleaved (noise hits both alike); latencies, errors, CPU."""
    def body():
        return json.dumps({"submissions": [dict(phone_visit(f"{vid}-000{random.randint(1, 9)}"),
                                                form_version=1) for _ in range(20)]}).encode()

    times, errors = [[], []], [0, 0]
    for _ in range(3):
        for c in clients:
            c.call("POST", "/api/v1/submissions", body())
    cpu = [cpu_seconds(s.proc.pid) for s in servers]
    for _ in range(pushes):
        for i, c in enumerate(clients):
            ms, status, reply = timed(c, "POST", "/api/v1/submissions", body())
            times[i].append(ms)
            errors[i] += status != 200 or any(r["status"] != "created" for r in reply["results"])
    cpu = [(cpu_seconds(s.proc.pid) - before) / pushes * 1000 for s, before in zip(servers, cpu)]
    return times, errors, cpu


def stats_figures(args, server, admin, out):
    if not route_exists("/api/v1/stats"):
        out("dashboard stats: GET /api/v1/stats is not on this branch yet (no figure)")
        return
    first, status, _ = timed(admin, "GET", "/api/v1/stats")  # summaries of changed villages made
    server.stop()
    server.start(timeout=600)  # a fresh process: summaries only from the catalogue
    admin.login("admin", PASSWORD)
    cold, status, _ = timed(admin, "GET", "/api/v1/stats")
    warm = [timed(admin, "GET", "/api/v1/stats")[0] for _ in range(5)]
    out(f"dashboard GET /api/v1/stats, whole county: {first:.0f} ms summarising the villages changed "
        f"since the last call; after a restart {cold:.0f} ms (status {status}), then p50 "
        f"{statistics.median(warm):.0f} ms; RSS {rss_mb(server.proc.pid):.0f} MB")


def export_figures(args, server, admin, out):
    if not route_exists("/exports/submissions.zip"):
        out("exports: GET /exports/submissions.zip is not on this branch yet (no figure)")
        return
    import io
    import zipfile
    vid = EXPORT_VILLAGE
    ms, status, reply = timed(admin, "GET", f"/exports/submissions.zip?form=household_visit&village={vid}")
    rows = 0
    if status == 200:
        with zipfile.ZipFile(io.BytesIO(reply)) as z:
            for name in z.namelist():
                rows += max(0, z.read(name).count(b"\n") - 2)
    out(f"export of one village's visits (zip of CSV): {rows} rows in {ms:.0f} ms, "
        f"{rows / (ms / 1000):.0f} rows/s (status {status})")


def print_figures(args, data, server, admin, out):
    if not route_exists("/villages/<village_id>/print-jobs"):
        out("village print: POST /villages/<id>/print-jobs is not on this branch (no figure)")
        return
    vid = args.print_village or smallest_village(data)
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        status, job = admin.call("POST", f"/villages/{vid}/print-jobs", {"lang": "zh"})
        if status not in (200, 201, 202):
            out(f"village print: {status} {job}")
            return
        while job.get("state") not in ("done", "failed"):
            time.sleep(0.5)
            status, job = admin.call("GET", f"/villages/{vid}/print-jobs/{job['id']}")
        seconds = time.perf_counter() - t0
        total = job.get("total") or 0
        out(f"village print {vid} ({label}): {total} profiles in {seconds:.1f} s, "
            f"{total / seconds:.1f} profiles/s, state {job.get('state')}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(ROOT, "bench", "out", "county"))
    ap.add_argument("--villages", type=int, default=360)
    ap.add_argument("--households", type=int, default=160000)
    ap.add_argument("--visits", type=int, default=500000)
    ap.add_argument("--photos", type=int, default=3000)
    ap.add_argument("--memory-mb", type=int, default=1024)
    ap.add_argument("--pushes", type=int, default=100)
    ap.add_argument("--print-village", default=None, help="default: the smallest village")
    ap.add_argument("--skip-print", action="store_true")
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    data = os.path.join(args.dir, "data")
    done = os.path.join(data, DONE)
    started = time.perf_counter()
    if args.rebuild or not os.path.exists(done) or json.load(open(done))["params"] != params(args):
        print(f"building the county in {data} ...", file=sys.stderr)
        seconds = build(args, data)
        print(f"built in {seconds:.0f} s", file=sys.stderr)
    lines = []

    def out(line):
        lines.append(line)
        print(line, flush=True)

    measure(args, data, out)
    out(f"(whole run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
