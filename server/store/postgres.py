"""The store on PostgreSQL: the same interface as store.Store, for several app servers on one
database (JIEDUI_DATABASE_URL=postgresql://...).

Documents are JSONB rows keyed by (partition, table, key), in two tables: `jiedui_core` (the core
partition: users, villages: small and read everywhere, a Citus reference table) and `jiedui_village`
(every other partition: a village's households, submissions, history, clashes, or a record family's
day: `village` is the Citus distribution column). Owners' `search(partition, table, cond)` passes a
Python callable, so a search fetches that partition's table and filters in Python (a village is at
most ~1,600 households and their visits); get by key, the key -> village lookup of the layout's global
keys (`jiedui_keys`, which also makes such a key, a submission's uuid, unique server-wide) and the
seq cursor of pull sync (`since=`) are index lookups.

A write function runs in one transaction (READ COMMITTED). What it reads is held first, with
transaction-scoped advisory locks: a village as a whole (writes to one village take turns, so they
cannot deadlock over its households; writes to different villages run side by side), a core key or
a submission uuid by itself (even one that does not exist yet), then the row itself `FOR UPDATE`.
Two servers merging one household, or ingesting one uuid, take turns and the second sees what the
first committed. Writes are buffered in the
transaction (reads see them) and written at the end under one more advisory lock that orders commits:
seqs come from the `jiedui_seq` sequence inside that lock, so commit order is seq order and a phone
paging by seq can never skip a change that committed late. Deadlocks and serialization failures rerun
the write function a bounded number of times. A lost connection or an exhausted pool raises
StoreUnavailable (a 503 with Retry-After); the transaction was not committed, or it was and a retry
answers `duplicate`.
"""

import json
import logging
import os
import random
import threading
import time
from contextlib import contextmanager

try:
    import psycopg
    from psycopg import errors as pgerrors
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as e:  # an installed copy without the extra (pyproject.toml)
    raise ImportError(f"PostgreSQL 需要 psycopg：pip install 'jiedui[postgres]' / PostgreSQL needs "
                      f"psycopg: pip install 'jiedui[postgres]' ({e})") from e

from server.store.common import (CORE, PendingWrites, SchemaTooNew, StoreLayout, StoreUnavailable,
                                 UnstorableValue, patch_step, patched, write_json_atomic)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
COMMIT_LOCK = 0x4A494544  # advisory lock that orders commits (and so seqs); "JIED"
SCHEMA_LOCK = 0x4A494545
RETRYABLE = (pgerrors.SerializationFailure, pgerrors.DeadlockDetected, pgerrors.UniqueViolation,
             pgerrors.LockNotAvailable)

# Each step upgrades the schema from version i to i + 1, in one transaction.
UPGRADES = [
    # 0 -> 1: the first schema
    """
    CREATE TABLE IF NOT EXISTS jiedui_meta (key text PRIMARY KEY, value jsonb NOT NULL);
    CREATE SEQUENCE IF NOT EXISTS jiedui_seq AS bigint;
    CREATE TABLE IF NOT EXISTS jiedui_core (
        tbl text NOT NULL, key text NOT NULL, seq bigint NOT NULL, doc jsonb NOT NULL,
        PRIMARY KEY (tbl, key));
    CREATE TABLE IF NOT EXISTS jiedui_village (
        village text NOT NULL, tbl text NOT NULL, key text NOT NULL, seq bigint NOT NULL,
        doc jsonb NOT NULL, PRIMARY KEY (village, tbl, key));
    CREATE INDEX IF NOT EXISTS jiedui_village_seq ON jiedui_village (village, tbl, seq);
    CREATE TABLE IF NOT EXISTS jiedui_partitions (
        partition text PRIMARY KEY, last_seq bigint NOT NULL);
    CREATE TABLE IF NOT EXISTS jiedui_keys (
        tbl text NOT NULL, key text NOT NULL, village text NOT NULL, PRIMARY KEY (tbl, key));
    -- A read inside a write: first hold what it reads (a core key, even one with no row yet; in a
    -- village, the whole village, so writes to one village take turns and can never deadlock on
    -- its households), then read the row FOR UPDATE. In a volatile function each statement takes a
    -- fresh snapshot, so the read sees what the previous holder committed; one round trip.
    CREATE OR REPLACE FUNCTION jiedui_locked_doc(p text, t text, k text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE d jsonb;
    BEGIN
        IF p = 'core' THEN
            PERFORM pg_advisory_xact_lock(hashtextextended(t || chr(31) || k, 0));
            SELECT doc INTO d FROM jiedui_core WHERE tbl = t AND key = k FOR UPDATE;
        ELSE
            PERFORM pg_advisory_xact_lock(hashtextextended('village' || chr(31) || p, 0));
            SELECT doc INTO d FROM jiedui_village WHERE village = p AND tbl = t AND key = k FOR UPDATE;
        END IF;
        RETURN d;
    END $$;
    CREATE OR REPLACE FUNCTION jiedui_locked_keys(t text, ks text[]) RETURNS TABLE (key text, village text)
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE k text;
    BEGIN
        FOR k IN SELECT DISTINCT u FROM unnest(ks) u ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock(hashtextextended(t || chr(31) || k, 0));
        END LOOP;
        RETURN QUERY SELECT j.key, j.village FROM jiedui_keys j WHERE j.tbl = t AND j.key = ANY(ks);
    END $$;
    CREATE OR REPLACE FUNCTION jiedui_locked_key(t text, k text) RETURNS text
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE v text;
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(t || chr(31) || k, 0));
        SELECT village INTO v FROM jiedui_keys WHERE tbl = t AND key = k;
        RETURN v;
    END $$;
    """,
    # 1 -> 2: per-partition summaries (what the dashboard needs across villages), kept beside the
    # partition's cursor and recomputed only when the partition changed
    """
    CREATE TABLE IF NOT EXISTS jiedui_summaries (
        partition text NOT NULL, name text NOT NULL, seq bigint NOT NULL, value jsonb NOT NULL,
        PRIMARY KEY (partition, name));
    """,
]


class PoolExhausted(StoreUnavailable):
    """Every connection of this server's pool stayed busy for the pool timeout."""


def _encode(table, key, doc):
    try:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, UnicodeEncodeError, RecursionError) as e:
        raise UnstorableValue(f"{table} {key!r}: {e.__class__.__name__}") from None


def copy_doc(doc):
    return json.loads(json.dumps(doc, ensure_ascii=False))


def _nul(*values):
    """A text PostgreSQL cannot hold (a NUL from a URL's %00): no stored key or partition has one,
    so a read for it finds nothing instead of failing the request."""
    return any(isinstance(v, str) and "\x00" in v for v in values)


def _unavailable(e):
    text = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
    return StoreUnavailable(f"数据库暂时无法访问 The database cannot be reached: {text}")


class PgTransaction(PendingWrites):
    """What a write function sees: reads lock what they read and see this function's own writes;
    writes are applied when the function returns."""

    def __init__(self, store, conn):
        self._store = store
        self._conn = conn
        self._pending = {}  # (partition, table, key) -> doc or None (deleted)
        self._order = []
        self._returned = {}  # (partition, table, key) -> dicts handed back by put (stamped at commit)
        self._held = set()  # villages this transaction holds
        self._known = {}  # (table, key) -> partition or None, for keys held by partitions_of
        self._read = {}  # (partition, table, key) -> the document as read (and held) here

    def _hold_village(self, partition):
        if partition != CORE and partition not in self._held:
            self._store.layout.check_partition(partition)
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                               (f"village\x1f{partition}",))
            self._held.add(partition)

    def get(self, partition, table, key):
        if _nul(key):
            return None
        k = (partition, table, key)
        if k in self._pending:
            return copy_doc(self._pending[k]) if self._pending[k] is not None else None
        self._store.layout.check_partition(partition)
        if k in self._read:  # held since it was read: nobody else can have changed it
            return copy_doc(self._read[k]) if self._read[k] is not None else None
        self._held.add(partition)
        doc = self._conn.execute("SELECT jiedui_locked_doc(%s, %s, %s)", (partition, table, key)).fetchone()[0]
        self._read[k] = doc
        return copy_doc(doc) if doc is not None else None

    def partition_of(self, table, key):
        """The partition holding `key` of `table` (None when absent), the key held from now on."""
        if _nul(key):
            return None
        for (p, t, k), doc in reversed(list(self._pending.items())):
            if t == table and k == key:
                return p if doc is not None else None
        if (table, key) in self._known:
            return self._known[(table, key)]
        if self._store.layout.is_global(table):
            return self._conn.execute("SELECT jiedui_locked_key(%s, %s)", (table, key)).fetchone()[0]
        self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{table}\x1f{key}",))
        return self._store._partition_of(self._conn, table, key)

    peek = get  # read-only elsewhere; here every read in a write holds what it read

    def locate(self, table, key):
        return self.partition_of(table, key)

    def partitions(self, family):
        return self._store._partitions(self._conn, family)

    def partitions_of(self, table, keys):
        """partition_of for many keys at once ({key: partition or None}), all held from now on:
        one round trip for a pushed batch's uuids, locked in sorted order (no deadlocks)."""
        keys = list(dict.fromkeys(keys))
        if self._store.layout.is_global(table):
            todo = [k for k in keys if (table, k) not in self._known]
            if todo:
                found = dict(self._conn.execute("SELECT * FROM jiedui_locked_keys(%s, %s)", (table, todo)).fetchall())
                for k in todo:
                    self._known[(table, k)] = found.get(k)
        return {k: self.partition_of(table, k) for k in keys}

    def search(self, partition, table, cond=None, since=None):
        self._hold_village(partition)
        base = self._store._search(self._conn, partition, table, cond, since)
        mine = {k[2]: d for k, d in self._pending.items() if k[0] == partition and k[1] == table}
        if not mine:
            return base
        kf = self._store.layout.key_field(table)
        out = [d for d in base if d.get(kf) not in mine]
        for d in mine.values():
            if d is not None and (cond is None or cond(d)) and (since is None or d.get("seq", 0) > since):
                out.append(copy_doc(d))
        return out

    def count(self, partition, table, cond=None):
        return len(self.search(partition, table, cond))

    def put(self, partition, table, doc):
        self._store.layout.check_partition(partition)
        doc = getattr(doc, "doc", doc)  # store.encode(...) wraps a document
        kf = self._store.layout.key_field(table)
        key = doc.get(kf)
        if not isinstance(key, str) or not key:
            raise ValueError(f"document for {table} needs a string {kf!r}")
        # Encoded now, so a value JSON cannot hold fails this write function before anything is
        # written, and the stored copy never aliases the caller's object.
        stored = json.loads(_encode(table, key, doc))
        k = (partition, table, key)
        self._stage(k, stored)
        out = json.loads(json.dumps(stored, ensure_ascii=False))
        self._returned.setdefault(k, []).append(out)
        return out

    def patch(self, partition, table, key, *, set=None, items=None):
        """The TinyDB store's partial change (common.patch_step); here a row holds the whole
        document, so it is read (held) and put whole."""
        doc = self.get(partition, table, key)
        if doc is None:
            return None
        return self.put(partition, table, patched(doc, [patch_step(set, items)]))

    def village_ids(self):
        return self._store._village_ids(self._conn)

    def _commit(self):
        """Write what the function left, in seq order, under the commit lock."""
        if not self._order:
            return
        conn = self._conn
        n = len(self._order)
        seqs = sorted(r[0] for r in conn.execute(
            "SELECT nextval('jiedui_seq') FROM pg_advisory_xact_lock(%s), generate_series(1, %s)",
            (COMMIT_LOCK, n)))
        core_rows, village_rows, key_rows, deletes = [], [], [], []
        is_global = self._store.layout.is_global
        last = {}
        for seq, k in zip(seqs, self._order):
            partition, table, key = k
            last[partition] = seq
            doc = self._pending[k]
            if doc is None:
                deletes.append(k)
                continue
            doc["seq"] = seq
            for out in self._returned.get(k, ()):
                out["seq"] = seq
            text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
            if partition == CORE:
                core_rows.append((table, key, seq, text))
            else:
                village_rows.append((partition, table, key, seq, text))
                if is_global(table):
                    key_rows.append((table, key, partition))
        with conn.pipeline(), conn.cursor() as cur:
            for partition, table, key in deletes:
                if partition == CORE:
                    cur.execute("DELETE FROM jiedui_core WHERE tbl = %s AND key = %s", (table, key))
                else:
                    cur.execute("DELETE FROM jiedui_village WHERE village = %s AND tbl = %s AND key = %s",
                                (partition, table, key))
                    if is_global(table):
                        cur.execute("DELETE FROM jiedui_keys WHERE tbl = %s AND key = %s AND village = %s",
                                    (table, key, partition))
            if key_rows:
                keys_cur = conn.cursor()
                keys_cur.execute(
                    "INSERT INTO jiedui_keys (tbl, key, village) "
                    "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[]) "
                    "ON CONFLICT (tbl, key) DO UPDATE SET village = jiedui_keys.village "
                    "RETURNING tbl, key, village",
                    ([r[0] for r in key_rows], [r[1] for r in key_rows], [r[2] for r in key_rows]))
            if village_rows:
                cur.execute(
                    "INSERT INTO jiedui_village (village, tbl, key, seq, doc) "
                    "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[]::jsonb[]) "
                    "ON CONFLICT (village, tbl, key) DO UPDATE SET seq = EXCLUDED.seq, doc = EXCLUDED.doc",
                    tuple(list(col) for col in zip(*village_rows)))
            if core_rows:
                cur.execute(
                    "INSERT INTO jiedui_core (tbl, key, seq, doc) "
                    "SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::text[]::jsonb[]) "
                    "ON CONFLICT (tbl, key) DO UPDATE SET seq = EXCLUDED.seq, doc = EXCLUDED.doc",
                    tuple(list(col) for col in zip(*core_rows)))
            cur.execute(
                "INSERT INTO jiedui_partitions (partition, last_seq) "
                "SELECT * FROM unnest(%b::text[], %b::bigint[]) "
                "ON CONFLICT (partition) DO UPDATE SET last_seq = "
                "GREATEST(jiedui_partitions.last_seq, EXCLUDED.last_seq)",
                (list(last), list(last.values())))
        if key_rows:
            # A key already held by another village refuses the write: the layout's global keys
            # are unique server-wide (the owners check first; this is the guarantee).
            wanted = {(t, k): v for t, k, v in key_rows}
            clash = [(t, k, v) for t, k, v in keys_cur.fetchall() if wanted.get((t, k)) != v]
            if clash:
                t, k, v = clash[0]
                raise ValueError(f"{t} {k!r} is already stored in partition {v!r}")


class PgStore:
    """The store interface over a PostgreSQL database; one per app server process. `layout`
    (common.StoreLayout, declared by the records layer) names the tables whose keys are unique
    server-wide (kept in jiedui_keys) and the record families partitioned by day."""

    kind = "postgresql"

    def __init__(self, url, *, layout, pool_size=10, pool_timeout=5.0, connect_timeout=5.0, retries=8,
                 readonly=False, application_name="jiedui"):
        if not isinstance(layout, StoreLayout):
            raise TypeError(f"layout must be a StoreLayout, not {layout!r}")
        self.layout = layout
        self.url = url
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.readonly = readonly
        self.application_name = application_name
        self.pool = None
        self.is_open = False
        self.stats = {"writes": 0, "retries": 0}
        self._stats_lock = threading.Lock()

    # ---- opening and closing -------------------------------------------------------------------

    def _conn_kwargs(self):
        return {"autocommit": True, "connect_timeout": max(1, int(self.connect_timeout)),
                "application_name": self.application_name}

    def open(self):
        """Reach the database (a clear StoreUnavailable when it cannot be reached), check or create
        the schema (SchemaTooNew when it is newer than this code), then open the pool."""
        try:
            with psycopg.connect(self.url, **self._conn_kwargs()) as conn:
                self._ensure_schema(conn)
        except psycopg.OperationalError as e:
            raise _unavailable(e) from None
        self.pool = ConnectionPool(self.url, min_size=1, max_size=self.pool_size,
                                   timeout=self.pool_timeout, kwargs=self._conn_kwargs(),
                                   open=False, name="jiedui")
        try:
            self.pool.open(wait=True, timeout=self.connect_timeout)
        except PoolTimeout as e:
            self.pool.close()
            raise _unavailable(e) from None
        self.is_open = True
        return self

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self.is_open = False

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def _ensure_schema(self, conn):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            exists = conn.execute("SELECT to_regclass('jiedui_meta') IS NOT NULL").fetchone()[0]
            version = 0
            if exists:
                row = conn.execute("SELECT value FROM jiedui_meta WHERE key = 'schema_version'").fetchone()
                version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"数据库结构版本 {version} 比本程序（{SCHEMA_VERSION}）新，请先升级程序。"
                    f" The database schema is version {version}, newer than this code knows "
                    f"({SCHEMA_VERSION}): upgrade the server before starting it on this database.")
            if self.readonly and version < SCHEMA_VERSION:
                raise SchemaTooNew(f"The database schema is version {version}; start the server once "
                                   f"(or `init`) to bring it to version {SCHEMA_VERSION}.")
            for step in range(version, SCHEMA_VERSION):
                log.info("database schema: upgrading from version %d to %d", step, step + 1)
                conn.execute(UPGRADES[step])
                conn.execute("INSERT INTO jiedui_meta (key, value) VALUES ('schema_version', %s) "
                             "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                             (json.dumps(step + 1),))

    @contextmanager
    def _connection(self):
        if self.pool is None:
            raise RuntimeError("store is closed")
        try:
            with self.pool.connection() as conn:
                yield conn
        except RETRYABLE:
            raise  # write() reruns the function
        except PoolTimeout as e:
            raise PoolExhausted(
                f"数据库连接已用尽，请稍后再试。 Every database connection is busy: {e}") from None
        except psycopg.OperationalError as e:
            raise _unavailable(e) from None

    def _read(self, fn):
        """A read on a pooled connection; a connection found dead is replaced once."""
        for attempt in (0, 1):
            try:
                with self._connection() as conn:
                    return fn(conn)
            except PoolExhausted:
                raise  # waiting again would only make the 503 later
            except StoreUnavailable:
                if attempt:
                    raise

    # ---- reads ---------------------------------------------------------------------------------

    @staticmethod
    def _fetch_sql(partition, table, key, lock=False):
        tail = " FOR UPDATE" if lock else ""
        if partition == CORE:
            return "SELECT doc FROM jiedui_core WHERE tbl = %s AND key = %s" + tail, (table, key)
        return ("SELECT doc FROM jiedui_village WHERE village = %s AND tbl = %s AND key = %s" + tail,
                (partition, table, key))

    def _fetch(self, conn, partition, table, key, lock=False):
        row = conn.execute(*self._fetch_sql(partition, table, key, lock)).fetchone()
        return row[0] if row else None

    def _partition_of(self, conn, table, key):
        if self.layout.is_global(table):
            row = conn.execute("SELECT village FROM jiedui_keys WHERE tbl = %s AND key = %s",
                               (table, key)).fetchone()
            return row[0] if row else None
        if conn.execute("SELECT 1 FROM jiedui_core WHERE tbl = %s AND key = %s", (table, key)).fetchone():
            return CORE
        row = conn.execute("SELECT village FROM jiedui_village WHERE tbl = %s AND key = %s "
                           "ORDER BY village LIMIT 1", (table, key)).fetchone()
        return row[0] if row else None

    def _search(self, conn, partition, table, cond, since=None):
        args = [table]
        if partition == CORE:
            q = "SELECT doc FROM jiedui_core WHERE tbl = %s"
        else:
            q = "SELECT doc FROM jiedui_village WHERE village = %s AND tbl = %s"
            args.insert(0, partition)
        if since is not None:
            q += " AND seq > %s"
            args.append(since)
        docs = [r[0] for r in conn.execute(q, args)]
        if cond is None:
            return docs
        return [d for d in docs if cond(d)]

    def _village_ids(self, conn):
        return [r[0] for r in conn.execute(
            "SELECT partition FROM jiedui_partitions WHERE partition <> %s AND strpos(partition, '.') = 0 "
            "ORDER BY partition", (CORE,))]

    def _partitions(self, conn, family):
        """Partitions named <family>.<day> (e.g. the audit log by day)."""
        return [r[0] for r in conn.execute(
            "SELECT partition FROM jiedui_partitions WHERE left(partition, %s) = %s ORDER BY partition",
            (len(family) + 1, family + "."))]

    def get(self, partition, table, key):
        if _nul(partition, key):
            return None
        return self._read(lambda conn: self._fetch(conn, partition, table, key))

    def partition_of(self, table, key):
        if _nul(key):
            return None
        return self._read(lambda conn: self._partition_of(conn, table, key))

    peek = get

    def peek_many(self, partition, table, keys):
        """get for each of `keys` in one query, in their order (those not stored left out)."""
        keys = [k for k in keys if not _nul(k)]
        if not keys or _nul(partition):
            return []

        def fetch(conn):
            if partition == CORE:
                rows = conn.execute("SELECT key, doc FROM jiedui_core WHERE tbl = %s AND key = ANY(%s)",
                                    (table, keys))
            else:
                rows = conn.execute("SELECT key, doc FROM jiedui_village WHERE village = %s AND tbl = %s "
                                    "AND key = ANY(%s)", (partition, table, keys))
            found = dict(rows.fetchall())
            return [found[k] for k in keys if k in found]
        return self._read(fetch)

    def locate(self, table, key):
        return self.partition_of(table, key)

    def partitions(self, family):
        return self._read(lambda conn: self._partitions(conn, family))

    def summary(self, partition, name, compute):
        """A value computed from one partition (compute() reads only it, returns JSON), kept in
        the database beside the partition's cursor: every app server shares it, and it is
        recomputed only when the partition changed since."""
        def look(conn):
            return conn.execute(
                "SELECT p.last_seq, s.seq, s.value FROM (SELECT %s::text AS partition) q "
                "LEFT JOIN jiedui_partitions p ON p.partition = q.partition "
                "LEFT JOIN jiedui_summaries s ON s.partition = q.partition AND s.name = %s",
                (partition, name)).fetchone()
        last_seq, seq, value = self._read(look)
        last_seq = last_seq or 0
        if seq == last_seq and value is not None:
            return value
        value = compute()
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        if not self.readonly:
            self._read(lambda conn: conn.execute(
                "INSERT INTO jiedui_summaries (partition, name, seq, value) VALUES (%s, %s, %s, %s::jsonb) "
                "ON CONFLICT (partition, name) DO UPDATE SET seq = EXCLUDED.seq, value = EXCLUDED.value "
                "WHERE jiedui_summaries.seq <= EXCLUDED.seq", (partition, name, last_seq, encoded)))
        return json.loads(encoded)

    def partitions_of(self, table, keys):
        keys = list(dict.fromkeys(keys))
        if any(_nul(k) for k in keys):
            return dict({k: None for k in keys if _nul(k)},
                        **self.partitions_of(table, [k for k in keys if not _nul(k)]))
        if not self.layout.is_global(table):
            return {k: self.partition_of(table, k) for k in keys}
        found = dict(self._read(lambda conn: conn.execute(
            "SELECT key, village FROM jiedui_keys WHERE tbl = %s AND key = ANY(%s)", (table, keys)).fetchall()))
        return {k: found.get(k) for k in keys}

    def search(self, partition, table, cond=None, since=None):
        if _nul(partition):
            return []
        return self._read(lambda conn: self._search(conn, partition, table, cond, since))

    def count(self, partition, table, cond=None):
        if _nul(partition):
            return 0
        if cond is not None:
            return len(self.search(partition, table, cond))
        if partition == CORE:
            q, args = "SELECT count(*) FROM jiedui_core WHERE tbl = %s", (table,)
        else:
            q, args = "SELECT count(*) FROM jiedui_village WHERE village = %s AND tbl = %s", (partition, table)
        return self._read(lambda conn: conn.execute(q, args).fetchone()[0])

    def village_ids(self):
        return self._read(self._village_ids)

    def partition_seq(self, partition):
        """The newest seq written to a partition: a change cursor shared by every app server."""
        if _nul(partition):
            return 0
        row = self._read(lambda conn: conn.execute(
            "SELECT last_seq FROM jiedui_partitions WHERE partition = %s", (partition,)).fetchone())
        return row[0] if row else 0

    @property
    def seq(self):
        """The newest committed seq."""
        return self._read(lambda conn: conn.execute(
            "SELECT COALESCE(max(last_seq), 0) FROM jiedui_partitions").fetchone()[0])

    # ---- writes --------------------------------------------------------------------------------

    def write(self, fn):
        """Run fn(tx) in one transaction and return its result once committed. A deadlock or a
        serialization failure reruns fn (bounded); anything fn raises rolls everything back."""
        if self.readonly:
            raise RuntimeError("this store was opened read-only")
        if not self.is_open:
            raise RuntimeError("store is closed")
        for attempt in range(self.retries + 1):
            try:
                with self._connection() as conn:
                    with conn.transaction():
                        tx = PgTransaction(self, conn)
                        result = fn(tx)
                        tx._commit()
                with self._stats_lock:
                    self.stats["writes"] += 1
                return result
            except RETRYABLE as e:
                if attempt == self.retries:
                    raise StoreUnavailable(f"数据库繁忙 The database stayed busy: {e.__class__.__name__}") from None
                with self._stats_lock:
                    self.stats["retries"] += 1
                log.info("write retried after %s (attempt %d)", e.__class__.__name__, attempt + 1)
                time.sleep(random.uniform(0, 0.002 * (2 ** min(attempt, 6))))

    def snapshot(self):
        """Nothing to do: the database is durable at commit."""
        return 0

    # ---- backup: a plain TinyDB data folder ------------------------------------------------------

    def export_to(self, out_dir):
        """Every partition as a plain TinyDB file (core.json, villages/<id>.json, <family>/<day>.json),
        from one consistent snapshot of the database; the folder opens with the TinyDB store as it
        is."""
        for folder in self.layout.folders():  # the same folders as a TinyDB backup has
            os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
        with self._connection() as conn:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                seq = conn.execute("SELECT COALESCE(max(last_seq), 0) FROM jiedui_partitions").fetchone()[0]
                last = dict(conn.execute("SELECT partition, last_seq FROM jiedui_partitions").fetchall())
                last.setdefault(CORE, 0)
                for partition in sorted(last):
                    tables = {}
                    if partition == CORE:
                        rows = conn.execute("SELECT tbl, doc FROM jiedui_core ORDER BY tbl, seq, key")
                    else:
                        rows = conn.execute("SELECT tbl, doc FROM jiedui_village WHERE village = %s "
                                            "ORDER BY tbl, seq, key", (partition,))
                    path = self.layout.partition_file(out_dir, partition)  # <family>/<day>.json too
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    for table, doc in rows:
                        docs = tables.setdefault(table, {})
                        docs[str(len(docs) + 1)] = doc
                    write_json_atomic(path, {"_meta": {"1": {  # first: its header is readable alone
                        "seq": seq, "partition": partition, "last_seq": last[partition]}}, **tables})
        from server.store.tinydb import write_catalog
        # as a TinyDB backup has it: a server on the folder reads no file to open
        write_catalog(out_dir, self.layout)
        return seq


def store_from_config(config, layout, *, readonly=False):
    return PgStore(config["DATABASE_URL"], layout=layout, pool_size=config["DB_POOL_SIZE"],
                   pool_timeout=config["DB_POOL_TIMEOUT"], connect_timeout=config["DB_CONNECT_TIMEOUT"],
                   readonly=readonly)
