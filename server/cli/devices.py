"""`flask --app server device-token NAME`: a device key for ODK Collect or Enketo, printed as the
device's OpenRosa base URL (the twin of "Add a device" on /admin/users/<name>)."""

import click
from flask import current_app
from flask.cli import with_appcontext

from server.cli.common import finish
from server.records import devices
from server.services.openrosa import base_url
from server.store import open_for_command


@click.command("device-token")
@click.argument("name")
@click.option("--label", default="", help="A name for the device (e.g. the phone's owner).")
@click.option("--url", "root", default=None,
              help="The server's address as phones reach it (default JIEDUI_PUBLIC_URL).")
@with_appcontext
def device_token_command(name, label, root):
    """Make a device key for user NAME and print its OpenRosa base URL (shown once)."""
    app = current_app._get_current_object()
    root = root or app.config.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000"
    with open_for_command(app, page=f"/admin/users/{name}") as store:
        token, errors = devices.create(name, label, actor="cli", db=store)
    finish(token, errors, base_url(root, token) if token else "")
