"""Which store serves the app: the TinyDB store in the data folder (the embedded default), or the
PostgreSQL store (postgres.py) when JIEDUI_DATABASE_URL names a database. Both keep one interface,
server/store/protocol.py (a Protocol, with what only one of them does); tests/test_store_contract.py
runs every method of it on both. `get_store()` is how owners and services reach the app's store;
commands open one with `open_for_command` (writes: the folder lock) or `open_readonly`.

The store names no record: which tables' keys are unique server-wide and which record families are
partitioned by day is a `StoreLayout` (common.py) the records layer declares (records/layout.py).
The app factory hands it to `init_app`; every store opened for the app is opened with it
(`store_layout(app)` gives it to commands and services that open a store themselves).
"""

import atexit
import threading
from contextlib import contextmanager

from server.store.common import (  # noqa: F401 (the names callers use: one import for any store)
    CORE, RETRY_AFTER_SECONDS, PartitionUnavailable, SchemaTooNew, StoreLayout, StoreLocked,
    StoreUnavailable, UnstorableValue, encode)
from server.store.tinydb import Store  # noqa: F401 (the embedded default)

_open_lock = threading.Lock()


def uses_database(config):
    return bool(config.get("DATABASE_URL"))


def init_app(app, layout):
    """Like flaskr's db.init_app: the store opens lazily, once per process, and closes at exit.
    `layout` (a StoreLayout, from the records layer) is the one every store of this app opens with."""
    if not isinstance(layout, StoreLayout):
        raise TypeError(f"layout must be a StoreLayout, not {layout!r}")
    app.extensions["jiedui_store_layout"] = layout
    app.extensions["jiedui_store"] = None

    def open_store():
        with _open_lock:
            store = app.extensions.get("jiedui_store")
            if store is None:
                if uses_database(app.config):
                    from server.store.postgres import store_from_config
                    store = store_from_config(app.config, layout).open()
                else:
                    from server.store.tinydb import open_app_folder
                    store = open_app_folder(app.config, layout)
                app.extensions["jiedui_store"] = store
                atexit.register(store.close)
            return store

    app.extensions["jiedui_open_store"] = open_store


def store_layout(app=None):
    """The StoreLayout the app's stores open with (set by init_app from the records layer)."""
    if app is None:
        from flask import current_app
        app = current_app
    try:
        return app.extensions["jiedui_store_layout"]
    except KeyError:
        raise RuntimeError("the app has no store layout: call store.init_app(app, layout)") from None


@contextmanager
def open_for_command(app, page="/admin"):
    """For CLI commands that write: TinyDB takes the folder lock (a running server's `page` named
    in the refusal); PostgreSQL needs none."""
    import click
    layout = store_layout(app)
    if not uses_database(app.config):
        from server.store.tinydb import open_folder_for_command
        with open_folder_for_command(app, layout, page) as store:
            yield store
        return
    from server.store.postgres import store_from_config
    try:
        store = store_from_config(app.config, layout).open()
    except (StoreUnavailable, SchemaTooNew) as e:
        raise click.ClickException(str(e))
    try:
        yield store
    finally:
        store.close()


def open_readonly(app):
    """For commands that only read (backup, print-profiles), beside a running server."""
    layout = store_layout(app)
    if not uses_database(app.config):
        from server.store.tinydb import open_readonly as open_tinydb
        return open_tinydb(app.config["DATA_DIR"], layout)
    import click
    from server.store.postgres import store_from_config
    try:
        return store_from_config(app.config, layout, readonly=True).open()
    except (StoreUnavailable, SchemaTooNew) as e:
        raise click.ClickException(str(e))


def get_store(app=None):
    """The app's store, opened on first use (like flaskr's get_db)."""
    from flask import current_app
    app = app or current_app
    return app.extensions.get("jiedui_store") or app.extensions["jiedui_open_store"]()


def close_app_store(app):
    store = app.extensions.get("jiedui_store")
    if store is not None:
        store.close()
        app.extensions["jiedui_store"] = None
