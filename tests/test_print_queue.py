"""Print floods (issue 9 #8): single profiles wait for the print workers in a bounded lane. While
the lane is full, other requests are answered at once and an extra print gets 503 + Retry-After.

"Slow" is made deterministic with the test gate (JIEDUI_TEST_PRINT_GATE, honoured only with
tests/fault_app.py): each admitted print reads one byte from a FIFO before rendering, so the
test holds them exactly as long as it wants and releases them by writing bytes.
"""

import os
import queue
import threading

import pytest

from tests.conftest import PASSWORD
from tests.live import Client, fetch, seed, server_behind_gate


@pytest.fixture
def gated_server(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    seed(data)
    with server_behind_gate(data, tmp_path, "JIEDUI_TEST_PRINT_GATE",
                      {"JIEDUI_PRINT_QUEUE": "2", "JIEDUI_PRINT_WORKERS": "1",
                       "JIEDUI_PRINT_PRERENDER": "0"}) as gated:
        yield gated


def test_a_print_flood_fills_the_lane_and_the_server_keeps_answering(gated_server):
    server, gate = gated_server
    answers = queue.Queue()

    def print_one(household):
        c = Client(server.url)
        c.login("cadre1", PASSWORD)
        answers.put(fetch(c, f"/households/{household}/profile.pdf"))

    # eight prints at once (as many as waitress has threads): two fit the lane and wait at the gate
    threads = [threading.Thread(target=print_one, args=(f"v1-000{1 + i % 3}",)) for i in range(8)]
    for t in threads:
        t.start()
    refused = [answers.get(timeout=60) for _ in range(6)]          # six answered without waiting
    assert [status for status, _, _ in refused] == [503] * 6
    assert all(int(headers["Retry-After"]) > 0 for _, headers, _ in refused)
    assert all("服务器正忙".encode() in body for _, _, body in refused)   # a page that says so

    other = Client(server.url)
    # the rest of the server answers while two prints hold the lane shut at the gate (the timeout is
    # a bound for a hang, not a measure)
    status, body = other.call("GET", "/api/v1/csrf", timeout=10)
    assert status == 200 and body["csrf_token"]
    other.login("cadre2", PASSWORD)
    assert other.call("GET", "/api/v1/households/v2-0001")[0] == 200
    status, headers, _ = fetch(other, "/households/v2-0001/profile.pdf", timeout=10)
    assert status == 503 and int(headers["Retry-After"]) > 0   # an extra print, while the lane is full

    os.write(gate, b"xx")                                         # the two slow ones go on
    done = [answers.get(timeout=120) for _ in range(2)]
    assert [status for status, _, _ in done] == [200, 200]
    assert all(body.startswith(b"%PDF") for _, _, body in done)
    for t in threads:
        t.join(10)
    os.write(gate, b"x")
    status, _, body = fetch(other, "/households/v2-0001/profile.pdf")   # and the lane is free again
    assert status == 200 and body.startswith(b"%PDF")
