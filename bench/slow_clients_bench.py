"""Does the server keep answering while slow clients hang on to connections? (issue 24: "120 slow
connections exhaust waitress"). The real server (waitress, `serve`'s defaults) straight, no nginx:
first without slow clients (baseline), then with N connections that each sent the start of a
request head and trickle one more byte every second, never finishing it. Measured in each phase:

- p50/p99 of GET /api/v1/csrf and of a valid 20-visit push, and how many got no answer within
  --timeout seconds (abuse_bench.py's measure, with the timeout counted instead of raised)

Usage: .venv/bin/python bench/slow_clients_bench.py [--slow 500] [--seconds 10] [--runs 3]
(--runs: the figures are the median over that many runs, each with its own server.)
"""

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.abuse_bench import pct, visit  # noqa: E402
from tests.conftest import PASSWORD  # noqa: E402
from tests.live import Client, LiveServer, seed  # noqa: E402


def slow_flood(port, count, stop, opened):
    """`count` connections that never finish their request head; one byte each per second."""
    socks = []
    try:
        for _ in range(count):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
                socks.append(s)
            except OSError:
                break
        opened.append(len(socks))
        while not stop.wait(1.0):
            for s in list(socks):
                try:
                    s.sendall(b"X")
                except OSError:
                    socks.remove(s)
    finally:
        for s in socks:
            s.close()


def measure(base, pusher, seconds, timeout):
    csrf, push, lost = [], [], 0
    households = ["v1-0001", "v1-0002", "v1-0003", "v2-0001", "v2-0002"]
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        for _ in range(5):
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(base + "/api/v1/csrf", timeout=timeout) as r:
                    r.read()
                csrf.append(time.perf_counter() - t)
            except OSError:
                lost += 1
        batch = [visit(households[(n + k) % len(households)]) for k in range(20)]
        n += 1
        t = time.perf_counter()
        try:
            status, _ = pusher.call("POST", "/api/v1/submissions", {"submissions": batch}, timeout=timeout)
            push.append(time.perf_counter() - t)
            lost += status != 200
        except OSError:
            lost += 1
    return csrf, push, lost


def one_run(args):
    with tempfile.TemporaryDirectory(prefix="jiedui-slow-") as tmp:
        seed(tmp)
        server = LiveServer(tmp).start()
        try:
            pusher = Client(server.url)
            assert pusher.login("super", PASSWORD)[0] == 200
            base = measure(server.url, pusher, args.seconds, args.timeout)
            stop, opened = threading.Event(), []
            flood = threading.Thread(target=slow_flood, args=(server.port, args.slow, stop, opened),
                                     daemon=True)
            flood.start()
            while not opened:
                time.sleep(0.05)
            slow = measure(server.url, pusher, args.seconds, args.timeout)
            stop.set()
            flood.join(30)
            return base, slow, opened[0]
        finally:
            server.stop()


def summary(phase):
    csrf, push, lost = phase
    return [pct(csrf, 50) * 1000, pct(csrf, 99) * 1000, pct(push, 50) * 1000, pct(push, 99) * 1000, lost]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=500, help="slow connections at once")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request counts as lost")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args) for _ in range(args.runs)]
    names = ("csrf p50", "csrf p99", "push p50", "push p99")
    for label, k in (("baseline", 0), (f"{args.slow} slow", 1)):
        med = [statistics.median(summary(r[k])[j] for r in runs) for j in range(5)]
        figures = "  ".join(f"{n} {v:7.1f} ms" for n, v in zip(names, med))
        print(f"{label:<10} {figures}  unanswered {med[4]:g} (median of {args.runs})")
    print(f"slow connections opened: {[r[2] for r in runs]}")


if __name__ == "__main__":
    main()
