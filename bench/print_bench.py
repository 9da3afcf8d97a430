"""Printing benchmark: one profile, then a village batch cold and warm (cached).

    .venv/bin/python bench/print_bench.py [--households 200] [--visits 12] [--photos 3] [--workers 2]

Prints the CPU and wall seconds of one profile (12 visits of the current visit form, version 2, each
closing the previous one's follow-up; 3 photos and a signature on the latest), rendered in this
process; then builds a temporary data folder (the real store) with a village of N such households
and prints it with `print_village` on `--workers` worker processes: cold (empty cache, pool started
beforehand as in the server), then warm (every profile from the cache, as after the background
printer has caught up). Each line gives seconds and profiles/s. Targets (DESIGN): cold >= 5
profiles/s on 2 workers, warm < 10 s for 200 households.
"""

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from server.records.layout import LAYOUT
from server.printing import profile
from tests import print_samples as samples
from server.printing.jobs import cache_dir, get_pool, print_village, shutdown_pools, stamp_bytes  # noqa: E402
from server.records import households, users, villages  # noqa: E402
from server.store import Store  # noqa: E402

VILLAGE = "430000001"


def single_profile(tmp, visits, photos, runs=7):
    att = os.path.join(tmp, "single")
    inputs = samples.profile_inputs(att, visits=visits, photos=photos)
    ctx = profile.build_profile_context(*inputs, {"display_name": "基准", "role": "cadre"}, "zh", att,
                                        record_url="http://127.0.0.1:5000/households/x")
    profile.render_profile_pdf(ctx)  # warm: fonts, templates
    walls, cpus = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        pdf = profile.render_profile_pdf(ctx)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    from pypdf import PdfReader
    import io
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    return statistics.median(walls), statistics.median(cpus), len(pdf), pages


def build_village(data_dir, count, visits, photos):
    """A real store with one village of `count` households, each with `visits` visits (each closing
    the previous visit's follow-up) and `photos` photos and a signature on its latest visit (hard
    links to one phone-sized JPEG), written through the record owners where they have a door."""
    store = Store(data_dir, layout=LAYOUT, snapshot_every=0).open()
    photo = os.path.join(data_dir, "sample.jpg")
    samples.write_photo(photo, size=(1280, 960))
    sig = os.path.join(data_dir, "sample_sig.png")
    samples.write_signature(sig)
    store.write(lambda tx: villages.put(tx, dict(samples.VILLAGE, id=VILLAGE)))
    cadre = samples.CADRES[0]
    users.create(cadre["id"], "cadre", None, villages=[VILLAGE], display_name=cadre["display_name"],
                 unit=cadre["unit"], phone=cadre["phone"], password_hash="bench", store=store)
    for start in range(0, count, 20):
        def write(tx, start=start):
            for n in range(start, min(start + 20, count)):
                hid = f"{VILLAGE}-{n + 1:04d}"
                rng = random.Random(hid)
                sample = samples.household(hid, samples.name(rng), rng=rng)
                doc = households.new_household(VILLAGE, hid, **{k: sample[k] for k in (
                    "head_name", "phone", "address", "group", "category", "population", "members",
                    "plots", "cadre_ids", "pv_status", "updated_at")})
                subs = []
                for i in range(visits):
                    last = i == visits - 1
                    names = [f"photo_{k + 1}.jpg" for k in range(photos)] if last else []
                    sub = samples.visit(hid, i, photos=names, signature="signature.png" if last else None,
                                        closes=subs[-1]["uuid"] if subs else None)
                    sub.pop("seq")
                    if last:
                        folder = os.path.join(data_dir, "attachments", sub["uuid"])
                        os.makedirs(folder, exist_ok=True)
                        for nm in names:
                            os.link(photo, os.path.join(folder, nm))
                        os.link(sig, os.path.join(folder, "signature.png"))
                    subs.append(sub)
                    tx.put(VILLAGE, "submissions", sub)  # a stored visit, as the sync owner leaves it
                doc["open_followups"] = samples.open_followups(subs[-1]) if subs else []
                doc["last_visit_date"] = subs[-1]["answers"]["visit_date"] if subs else None
                households.create(tx, "bench", doc, write_audit=False)
        store.write(write)
    return store


def batch(store, data_dir, workers, forms, clear_cache=True):
    if clear_cache:
        shutil.rmtree(cache_dir(data_dir), ignore_errors=True)
    pool = get_pool(workers)
    t = time.perf_counter()
    list(pool.map(stamp_bytes, ["warm"] * workers, ["zh"] * workers))  # workers up and warm
    warm = time.perf_counter() - t
    out = os.path.join(data_dir, "prints", f"bench-{workers}.pdf")
    t = time.perf_counter()
    cpu_before = time.process_time()
    summary = print_village(store, VILLAGE, out, files_dir=data_dir, forms=forms, lang="zh", mask=True,
                            printed_by="基准测试", workers=workers, printed_at="2026-05-04 09:30",
                            record_url_for=lambda h: f"http://127.0.0.1:5000/households/{h}")
    seconds = time.perf_counter() - t
    summary["server_cpu"] = time.process_time() - cpu_before
    return seconds, summary, os.path.getsize(out), warm


def children_cpu():
    """CPU seconds of the worker processes that have exited (a pool's, once shut down)."""
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=200)
    ap.add_argument("--visits", type=int, default=12)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="jiedui-print-bench-")
    try:
        print(f"cpus: {os.cpu_count()}  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        wall, cpu, size, pages = single_profile(tmp, args.visits, args.photos)
        print(f"single profile ({args.visits} visits, {args.photos} photos): p50 {wall:.3f} s wall, "
              f"{cpu:.3f} s CPU, {pages} pages, {size / 1024:.0f} KiB")

        data_dir = os.path.join(tmp, "data")
        t = time.perf_counter()
        store = build_village(data_dir, args.households, args.visits, args.photos)
        print(f"built village: {args.households} households x {args.visits} visits "
              f"in {time.perf_counter() - t:.1f} s")
        forms = samples.project_forms()
        n = args.households
        workers_cpu = children_cpu()
        seconds, summary, size, warm = batch(store, data_dir, args.workers, forms)
        shutdown_pools()
        workers_cpu = children_cpu() - workers_cpu
        assert summary["rendered"] == n and not summary["errors"], summary["errors"]
        cpu = summary["server_cpu"] + workers_cpu
        print(f"cold village print, {args.workers} worker(s): {n} profiles in {seconds:.1f} s = "
              f"{n / seconds:.2f} profiles/s  (pool warm-up {warm:.1f} s; PDF {size / 1048576:.1f} MiB)")
        print(f"  CPU: {cpu:.1f} s in all ({workers_cpu:.1f} s in workers, {summary['server_cpu']:.1f} s "
              f"in this process) = {cpu / n:.3f} CPU s per profile: at most "
              f"{min(args.workers, os.cpu_count() or 1) * n / cpu:.1f} profiles/s on idle cores")
        seconds, summary, size, _ = batch(store, data_dir, args.workers, forms, clear_cache=False)
        assert summary["cache_hits"] == n, summary
        print(f"warm village print (all {summary['cache_hits']} from the cache), {args.workers} worker(s): "
              f"{n} profiles in {seconds:.1f} s = {n / seconds:.1f} profiles/s  "
              f"({summary['server_cpu']:.1f} CPU s in this process)")
        store.close()
    finally:
        shutdown_pools()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
