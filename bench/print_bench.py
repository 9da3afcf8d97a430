"""Printing benchmark: one profile, a village batch with 1 and 2 workers, and a cached re-print.

    .venv/bin/python bench/print_bench.py [--households 200] [--visits 12] [--photos 3]

Prints seconds per profile (p50) for a household with 12 visits and 3 photos, rendered in this
process; then builds a temporary data folder (the real store) with a village of N such households
and prints it with `print_village` using 1 and then 2 worker processes (cold cache each time, pool
started beforehand as in the server), then once more from the cache. Goal: 200 households in under
60 s on 2 cores.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from server.printing import profile, samples  # noqa: E402
from server.printing.jobs import cache_dir, get_pool, print_village, shutdown_pools, stamp_bytes  # noqa: E402
from server.store import CORE, Store  # noqa: E402

VILLAGE = "430000001"


def single_profile(tmp, visits, photos, runs=7):
    att = os.path.join(tmp, "single")
    inputs = samples.profile_inputs(att, visits=visits, photos=photos)
    ctx = profile.build_profile_context(*inputs, {"display_name": "基准", "role": "cadre"}, "zh", att,
                                        record_url="http://127.0.0.1:5000/households/x")
    profile.render_profile_pdf(ctx)  # warm: fonts, templates
    times, size, pages = [], 0, 0
    for _ in range(runs):
        t = time.perf_counter()
        pdf = profile.render_profile_pdf(ctx)
        times.append(time.perf_counter() - t)
        size = len(pdf)
    from pypdf import PdfReader
    import io
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    return statistics.median(times), size, pages


def build_village(data_dir, households, visits, photos):
    """A real store with one village of `households` households, each with `visits` visits and
    `photos` photos on its latest visit (hard links to one phone-sized JPEG)."""
    store = Store(data_dir, snapshot_every=0).open()
    photo = os.path.join(data_dir, "sample.jpg")
    samples.write_photo(photo, size=(1280, 960))
    sig = os.path.join(data_dir, "sample_sig.png")
    samples.write_signature(sig)
    store.write(lambda tx: (tx.put(CORE, "villages", dict(samples.VILLAGE, id=VILLAGE)),
                            tx.put(CORE, "users", dict(samples.CADRES[0], username="liwei",
                                                       villages=[VILLAGE], active=True))))
    for start in range(0, households, 20):
        def write(tx, start=start):
            for n in range(start, min(start + 20, households)):
                hid = f"{VILLAGE}-{n + 1:04d}"
                head = samples.name(__import__("random").Random(hid))
                tx.put(VILLAGE, "households", samples.household(hid, head))
                for i in range(visits):
                    last = i == visits - 1
                    names = [f"photo_{k + 1}.jpg" for k in range(photos)] if last else []
                    sub = samples.visit(hid, i, photos=names, signature="signature.png" if last else None)
                    sub.pop("seq")
                    folder = os.path.join(data_dir, "attachments", sub["uuid"])
                    if last:
                        os.makedirs(folder, exist_ok=True)
                        for nm in names:
                            os.link(photo, os.path.join(folder, nm))
                        os.link(sig, os.path.join(folder, "signature.png"))
                    tx.put(VILLAGE, "submissions", sub)
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
    summary = print_village(store, VILLAGE, out, data_dir=data_dir, forms=forms, lang="zh", mask=True,
                            printed_by="基准测试", workers=workers,
                            record_url_for=lambda h: f"http://127.0.0.1:5000/households/{h}")
    seconds = time.perf_counter() - t
    return seconds, summary, os.path.getsize(out), warm


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=200)
    ap.add_argument("--visits", type=int, default=12)
    ap.add_argument("--photos", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="jiedui-print-bench-")
    try:
        print(f"cpus: {os.cpu_count()}")
        p50, size, pages = single_profile(tmp, args.visits, args.photos)
        print(f"single profile ({args.visits} visits, {args.photos} photos): p50 {p50:.3f} s, "
              f"{pages} pages, {size / 1024:.0f} KiB")

        data_dir = os.path.join(tmp, "data")
        t = time.perf_counter()
        store = build_village(data_dir, args.households, args.visits, args.photos)
        print(f"built village: {args.households} households x {args.visits} visits "
              f"in {time.perf_counter() - t:.1f} s")
        forms = samples.project_forms()
        for workers in (1, 2):
            seconds, summary, size, warm = batch(store, data_dir, workers, forms)
            assert summary["rendered"] == args.households and not summary["errors"], summary["errors"]
            print(f"batch, {workers} worker(s): {args.households} profiles in {seconds:.1f} s = "
                  f"{args.households / seconds:.2f} profiles/s  (pool warm-up {warm:.1f} s; "
                  f"PDF {size / 1048576:.1f} MiB)")
            shutdown_pools()
        seconds, summary, size, _ = batch(store, data_dir, 2, forms, clear_cache=False)
        assert summary["cache_hits"] == args.households, summary
        print(f"cached re-print, 2 workers: {args.households} profiles in {seconds:.1f} s = "
              f"{args.households / seconds:.1f} profiles/s (all {summary['cache_hits']} from cache)")
        store.close()
    finally:
        shutdown_pools()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
