"""The real app, served by the real `serve` command, with its submission exports held at a gate
(a FIFO named by JIEDUI_TEST_EXPORT_GATE) once they are inside the export lane: a test then knows
which exports hold a slot, without sleeping and without a switch in the production modules.
`flask --app tests.gated_app serve` (tests/live.py: LiveServer(..., app="tests.gated_app"))."""

import os

from server import create_app as _create_app
from server.services import sheets


def create_app():
    app = _create_app()
    gate = os.environ["JIEDUI_TEST_EXPORT_GATE"]
    arrived = os.environ.get("JIEDUI_TEST_EXPORT_ARRIVED")   # optional: a FIFO told of each arrival
    write_submissions = sheets.write_submissions

    def held_at_the_gate(*args, **kwargs):
        if arrived:
            with open(arrived, "wb", buffering=0) as f:
                f.write(b"1")
        with open(gate, "rb", buffering=0) as f:
            f.read(1)
        return write_submissions(*args, **kwargs)
    sheets.write_submissions = held_at_the_gate
    return app
