"""Exporting visits: rows per second and memory, to XLSX and to the ZIP of CSVs.

Builds a data folder of N household visits (default 100,000, across 10 villages) through the
submissions owner's own `store_prepared` in big writes, then asks the real HTTP routes (Flask's
test client, the response read in chunks and thrown away) for one village's visits (N/10 rows) and
for all of them (N rows). For each export it prints rows/s, the process's resident memory before,
the peak while exporting (sampled every 20 ms from /proc/self/status) and the difference: the
export's own memory, which must not grow with the rows (the store holding the visits does, and is
the "before" figure).

Usage: .venv/bin/python bench/export_bench.py [--visits 100000] [--villages 10]
"""

import argparse
import copy
import os
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from server import create_app
from server.forms import formdefs
from server.records import households, submissions, users, villages  # noqa: E402
from server.store import close_app_store, get_store  # noqa: E402

HOUSEHOLDS_PER_VILLAGE = 400
WRITE_BATCH = 2000


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples resident memory in a thread while the block runs."""

    def __enter__(self):
        self.before = rss_mb()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


class _Cadre:
    def __init__(self, vid):
        self.id, self.role = f"cadre_{vid}", "cadre"
        self._vid = vid

    def village_scope(self):
        return [self._vid]

    def can_see_village(self, vid):
        return vid == self._vid


def template_answers(i):
    return {"visit_date": f"2026-{1 + i % 11:02d}-{1 + i % 27:02d}", "visit_type": "home",
            "present": "户主本人、配偶", "topics": ["income_jobs", "health_insurance", "housing_safety"],
            "family_changes": ["none"], "income_wages": 24000, "income_farming": 3500,
            "income_total": 27500, "needs": ["employment", "medical"],
            "needs_detail": "希望帮助联系县城务工岗位，老人慢性病用药报销。" * 2, "risk": "no",
            "help_given": [{"product": "红薯", "quantity": 200, "unit": "斤", "price": 1.5},
                           {"product": "蜂蜜", "quantity": 10, "unit": "斤", "price": 60}],
            "followups": [{"action": "联系县人社局推荐岗位", "due_date": "2026-12-28"}],
            "location": {"lat": 28.73, "lon": 113.58, "accuracy": 12},
            "notes": "=已宣传防返贫监测政策。"}


def build(app, total, village_count):
    store = get_store()
    vids = [f"b{n:03d}" for n in range(village_count)]

    def registry_write(tx):
        for vid in vids:
            villages.put(tx, {"id": vid, "name": f"村{vid}", "township": "镇", "county": "县"})
            for i in range(1, HOUSEHOLDS_PER_VILLAGE + 1):
                households.create(tx, "bench", households.new_household(
                    vid, households.make_id(vid, i), head_name=f"户主{i}", cadre_ids=[f"cadre_{vid}"]),
                    write_audit=False)
    store.write(registry_write)
    users.create("boss", "admin", "bench-password-1", store=store)
    registry, settings = formdefs.registry(), formdefs.served_settings(app)
    # One visit per village parsed and validated for real; the rest are copies with new uuids and
    # households (the pipeline's cost is not what is measured here).
    templates = {}
    for vid in vids:
        item = {"uuid": str(uuid.uuid4()), "form": "household_visit", "form_version": 2,
                "household_id": households.make_id(vid, 1), "created_at": "2026-05-01T10:00:00+08:00",
                "answers": template_answers(0)}
        prepared, errors = submissions.parse_item(_Cadre(vid), item, registry, settings,
                                                  max_attachment_bytes=1, db=store)
        assert not errors, errors
        templates[vid] = prepared
    made = 0
    start = time.perf_counter()
    while made < total:
        batch = []
        for _ in range(min(WRITE_BATCH, total - made)):
            vid = vids[made % village_count]
            p = copy.deepcopy(templates[vid])
            sub_uuid = str(uuid.uuid4())
            hid = households.make_id(vid, 1 + (made // village_count) % HOUSEHOLDS_PER_VILLAGE)
            answers = template_answers(made)
            # each visit filled in at its own second of its day, as phones do: an export converts
            # 100,000 different times, not one time 100,000 times
            filled = f"{answers['visit_date']}T{8 + made % 11:02d}:{made // 7 % 60:02d}:{made % 60:02d}+08:00"
            p["record"].update(uuid=sub_uuid, household_id=hid, answers=answers,
                               visit_date=answers["visit_date"], created_at=filled)
            p["effects"]["followups"] = []  # keep each household's open list short
            p["fingerprint"] = sub_uuid
            batch.append(p)
            made += 1

        def write(tx, batch=batch):
            for p in batch:
                submissions.store_prepared(tx, "bench", p, write_audit=False)
        store.write(write)
    print(f"built {total:,} visits in {village_count} villages in {time.perf_counter() - start:.0f} s; "
          f"RSS {rss_mb():.0f} MB", flush=True)
    return vids


def export(client, url, rows):
    with PeakRss() as mem:
        start, cpu = time.perf_counter(), time.process_time()
        resp = client.get(url, buffered=False)
        assert resp.status_code == 200, resp.status_code
        size = 0
        for chunk in resp.response:
            size += len(chunk)
        resp.close()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"  {url:<60} {rows:>7,} rows  {seconds:6.1f} s  {rows / seconds:8.0f} rows/s  "
          f"CPU {cpu:6.1f} s = {rows / cpu:8.0f} rows per CPU-second  "
          f"{size / 1e6:6.1f} MB  RSS before {mem.before:5.0f} MB, peak {mem.peak:5.0f} MB, "
          f"export's own +{mem.peak - mem.before:4.0f} MB", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=100_000)
    parser.add_argument("--villages", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jiedui-export-bench-") as data_dir:
        app = create_app({"DATA_DIR": data_dir, "SNAPSHOT_EVERY": 0, "TESTING": True,
                          "CSRF_DISABLED": True})
        with app.app_context():
            vids = build(app, args.visits, args.villages)
        client = app.test_client()
        r = client.post("/login", json={"username": "boss", "password": "bench-password-1"})
        assert r.status_code == 200, r.get_json()
        one = args.visits // args.villages
        for fmt in ("xlsx", "zip"):
            export(client, f"/exports/submissions.{fmt}?form=household_visit&village={vids[0]}", one)
            export(client, f"/exports/submissions.{fmt}?form=household_visit", args.visits)
        close_app_store(app)


if __name__ == "__main__":
    main()
