"""Issue 9 finding 9, timed: a login for an unknown username takes about as long as a wrong password
for a real one (the unknown name is checked against a dummy hash of the same method). Moved here from
tests/test_abuse.py: a test asserts no wall-clock time; the test checks that both answers check a
hash of the production method, and this measures what that buys.

Medians of interleaved attempts through the Flask test client, each from its own address (so no
throttle delay applies), with the production hash method (200,000 PBKDF2 rounds). Before the dummy
hash the ratio was about 1:18; it should be near 1. Exits 1 when the ratio leaves (1/3, 3).

Usage: .venv/bin/python bench/login_timing.py [--attempts 7]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from server import create_app  # noqa: E402
from server.store import close_app_store, get_store  # noqa: E402
from tests.conftest import Api, seed_world  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # TESTING without PASSWORD_HASH_METHOD: the production method, as a server hashes.
        app = create_app({"DATA_DIR": os.path.join(tmp, "data"), "TESTING": True, "SNAPSHOT_EVERY": 0})
        with app.app_context():
            seed_world(get_store())

        def timed(username, n):
            api = Api(app.test_client())
            api.client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n}"
            api.csrf()
            start = time.perf_counter()
            r = api.client.post("/login", json={"username": username, "password": "wrong-wrong"},
                                headers={"X-CSRFToken": api.token})
            assert r.status_code == 401
            return time.perf_counter() - start

        known, unknown = [], []
        try:
            for n in range(args.attempts):
                known.append(timed("cadre1", 2 * n))
                unknown.append(timed("nobody.at.all", 2 * n + 1))
        finally:
            close_app_store(app)
    ratio = statistics.median(unknown) / statistics.median(known)
    print(f"wrong password for cadre1: median {statistics.median(known) * 1000:.1f} ms; "
          f"unknown username: median {statistics.median(unknown) * 1000:.1f} ms; ratio {ratio:.2f}")
    return 0 if 1 / 3 < ratio < 3 else 1


if __name__ == "__main__":
    sys.exit(main())
