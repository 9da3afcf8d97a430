"""The land ledger at the seed village's scale (issue 25): 664 households, 1,992 members, 1,992
plots in one workbook.

- import: preview and confirmed import of the workbook (seconds, rows/s), and peak RSS;
- paper, cold: the village's 公示表 and its confirmation sheets in bulk (pages/s).

Each figure is the median of --runs (default 3) runs, each on a fresh data folder.

Usage: .venv/bin/python bench/ledger_bench.py [--households 664] [--runs 3] [--workers 2]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from server import create_app  # noqa: E402
from server.records import households, villages  # noqa: E402
from server.services import ledger  # noqa: E402
from server.store import close_app_store, get_store  # noqa: E402
from tests import ledger_files as lf  # noqa: E402


def pages(pdf):
    out = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def one_run(workbook, rows, args_workers):
    data = tempfile.mkdtemp(prefix="ledger-bench-")
    app = create_app({"DATA_DIR": data, "SNAPSHOT_EVERY": 0})
    out = {}
    with app.app_context():
        store = get_store()
        store.write(lambda tx: villages.put(tx, {"id": "430626001", "name": "青石村", "township": "长寿镇",
                                                 "county": "平江县"}))
        t = time.perf_counter()
        report, _ = ledger.run("430626001", [("ledger.xlsx", workbook)], actor="bench", store=store)
        out["preview_s"] = time.perf_counter() - t
        assert not report["errors"], report["errors"][:3]
        t = time.perf_counter()
        report, _ = ledger.run("430626001", [("ledger.xlsx", workbook)], actor="bench", store=store, confirm=True)
        out["import_s"] = time.perf_counter() - t
        out["rows_per_s"] = rows / out["import_s"]
        docs = households.in_village("430626001", store)
        village = villages.get("430626001", store)
        from server.printing import ledger as paper
        paper._css.cache_clear()
        from server.printing import jobs
        jobs.shutdown_pools()  # cold: the workers start (and load fonts) inside the timing
        t = time.perf_counter()
        notice = paper.notice_pdf(village, docs)
        out["notice_s"] = time.perf_counter() - t
        out["notice_pages"] = pages(notice)
        t = time.perf_counter()
        sheets = paper.sheets_pdf(village, docs, files_dir=app.config["FILES_DIR"], workers=args_workers)
        out["sheets_s"] = time.perf_counter() - t
        out["sheets_pages"] = pages(sheets)
    close_app_store(app)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=664)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="print worker processes for the bulk sheets")
    args = parser.parse_args()
    workbook = lf.big_village(args.households)
    rows = args.households * 7  # a household row, three members and three plots
    runs = [one_run(workbook, rows, args.workers) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"ledger workbook: {args.households} households, {rows} rows, {len(workbook) // 1024} KB")
    print(f"preview          {med['preview_s']:.2f} s")
    print(f"import (confirm) {med['import_s']:.2f} s   {med['rows_per_s']:.0f} rows/s")
    print(f"公示表 (cold)     {med['notice_s']:.2f} s   {med['notice_pages']:.0f} pages   "
          f"{med['notice_pages'] / med['notice_s']:.1f} pages/s")
    print(f"确认书 bulk (cold) {med['sheets_s']:.2f} s   {med['sheets_pages']:.0f} pages   "
          f"{med['sheets_pages'] / med['sheets_s']:.1f} pages/s")
    print(f"peak RSS         {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"(median of {args.runs} runs)")


if __name__ == "__main__":
    main()
