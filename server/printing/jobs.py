"""Batch printing: cached single profiles, long-lived worker processes, village jobs with progress.

A profile PDF is cached under <files dir>/prints/cache/ by what it shows (household id, version,
latest submission seq, language, masking, and a digest of the whole context plus the template hash),
without the "printed by … on …" footer: that footer is a one-page stamp laid over every page at
print time, so a re-print on another day or by another user still comes from the cache. WeasyPrint
runs only in worker processes ('spawn' context: safe beside the server's threads, fonts loaded once
per worker): the print pool at nice 5 for what people wait for, and a one-process background pool at
nice 19 for profiles re-rendered ahead of time (prerender.py).

A single profile asked for on a page passes the `Lane`: at most a few wait for the pool at once, so a
flood of prints holds a few request threads, never all of them; past it the caller is told to retry.
"""

import atexit
import concurrent.futures as cf
import glob
import io
import logging
import multiprocessing
import os
import re
import secrets
import threading
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass

from server.core import images
from server.core.clock import now_iso, show, today, zone
from server.core.files import atomic_file, write_atomic
from server.records import households as household_records
from server.records import submissions as submission_records
from server.records import users as user_records
from server.records import villages as village_records
from server.printing.fonts import share_fonts
from server.printing.profile import (TEXTS, build_profile_context, context_digest, render_cover_pdf, render_profile_pdf, render_stamp_pdf, template_hash)

log = logging.getLogger(__name__)

RENDER_TIMEOUT = 300   # seconds a batch waits for one profile before giving up on it
MAX_JOBS_KEPT = 50     # finished jobs remembered in memory
KEEP_PRINTS_SECONDS = 3 * 24 * 3600  # batch PDFs older than this are removed when a job starts
UNSAFE_FILENAME_RE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


class Busy(Exception):
    """The print lane is full, or a profile did not come back in time: retry in `retry_after` s."""

    def __init__(self, retry_after):
        super().__init__(f"busy, retry in {retry_after} s")
        self.retry_after = retry_after


def default_workers():
    return max(1, min(2, os.cpu_count() or 1))


def prints_dir(files_dir):
    """Batch PDFs and ZIPs; under JIEDUI_FILES_DIR, shared by every app server."""
    return os.path.join(files_dir, "prints")


def cache_dir(files_dir, village_id=None):
    """The profile cache, a folder per village: a county's 160,000 profiles in one folder would make
    every eviction scan them all."""
    base = os.path.join(files_dir, "prints", "cache")
    return os.path.join(base, _safe(village_id)) if village_id else base


def attachments_dir(files_dir):
    return os.path.join(files_dir, "attachments")


def _safe(text):
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(text))[:64] or "_"


def cache_path(files_dir, context):
    """Where this context's PDF lives in the cache; the name says what it is, the digest proves it."""
    h = context["household"]
    masked = "m" if context.get("masked") else "u"
    name = (f"{_safe(h['id'])}_v{int(h.get('version') or 0)}_s{int(context.get('latest_submission_seq') or 0)}"
            f"_{_safe(context.get('lang'))}_{masked}_{context_digest(context)[:24]}.pdf")
    village = context.get("village", {}).get("id") or household_records.village_of(h["id"]) or "_"
    return os.path.join(cache_dir(files_dir, village), name)


def _evict_older(path):
    """Drop cached PDFs of the same household, language and masking that this one supersedes."""
    base = os.path.basename(path)
    m = re.match(r"^(.+?)_v\d+_s\d+_(.+?)_([mu])_[0-9a-f]+\.pdf$", base)
    if not m:
        return
    pattern = os.path.join(os.path.dirname(path), f"{glob.escape(m.group(1))}_v*_s*_"
                           f"{glob.escape(m.group(2))}_{m.group(3)}_*.pdf")
    for other in glob.glob(pattern):
        if other != path:
            try:
                os.remove(other)
            except OSError:
                pass


# ---- worker side -------------------------------------------------------------------------------


def _exit_with_parent(parent_pid):
    """A worker whose server was killed (kill -9, os._exit) would wait on its queue forever."""
    while True:
        time.sleep(2)
        if os.getppid() != parent_pid:
            os._exit(0)


def _worker_init(niceness=5, parent_pid=None):
    """Warm the worker: import WeasyPrint and load the CJK font once, yield the CPU to the
    server's request threads, and follow the server out when it dies. The server's pid comes from
    the server: a server stopped while its pool was starting has already gone when this runs, and
    the worker would otherwise take its new parent (init) for the server and wait forever."""
    parent_pid = parent_pid or os.getppid()
    if os.getppid() != parent_pid:
        os._exit(0)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="parent-watch",
                     daemon=True).start()
    try:
        os.nice(niceness)
    except (AttributeError, OSError):
        pass
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = images.MAX_PIXELS  # Pillow's own guard, below its default, in workers
    try:
        render_stamp_pdf("预热 warm-up")
    except Exception:  # a broken font set-up shows up on the first real render, with its message
        log.exception("print worker warm-up failed")


def render_to_cache(context, path):
    """Worker task: render the profile into the cache unless it is there. Returns (path, rendered)."""
    if os.path.exists(path):
        return path, False
    pdf = render_profile_pdf(context)
    write_atomic(path, pdf, durable=False)  # a cache: rebuilt if a crash loses it
    _evict_older(path)
    return path, True


def stamp_bytes(text, lang):
    """Worker task: the one-page footer stamp as PDF bytes."""
    return render_stamp_pdf(text, lang)


_stamps = {}
_stamps_lock = threading.Lock()


def _stamp_future(pool, text, lang):
    """The stamp for (text, lang), rendered once by the pool and kept briefly (the text changes
    every minute anyway)."""
    key = (text, lang)
    with _stamps_lock:
        fut = _stamps.get(key)
        if fut is None or (fut.done() and fut.exception() is not None):
            fut = pool.submit(stamp_bytes, text, lang)
            _stamps[key] = fut
            while len(_stamps) > 16:
                _stamps.pop(next(iter(_stamps)))
        return fut


# ---- the pool ------------------------------------------------------------------------------------

_pool_lock = threading.Lock()
_pools = {}


def get_pool(workers=None, background=False):
    """A long-lived pool of `workers` processes, created on first use and kept for the process.
    background=True: the one-process pool at nice 19 for profiles rendered ahead of time."""
    workers = 1 if background else int(workers or default_workers())
    key = "background" if background else workers
    with _pool_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = cf.ProcessPoolExecutor(max_workers=workers,
                                          mp_context=multiprocessing.get_context("spawn"),
                                          initializer=_worker_init,
                                          initargs=(19 if background else 5, os.getpid()))
            _pools[key] = pool
        return pool


def discard_background_pool():
    """Give the background worker's memory back while there is nothing to render ahead."""
    with _pool_lock:
        pool = _pools.pop("background", None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _discard_pool(pool):
    with _pool_lock:
        for k, p in list(_pools.items()):
            if p is pool:
                del _pools[k]
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown_pools():
    with _pool_lock:
        pools = list(_pools.values())
        _pools.clear()
    for p in pools:
        p.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pools)


def _run(pool, fn, *args, timeout=RENDER_TIMEOUT):
    try:
        return pool.submit(fn, *args).result(timeout=timeout)
    except cf.process.BrokenProcessPool:
        _discard_pool(pool)
        raise


def unreadable_cache_errors():
    """What reading a cached profile raises when it has gone (a concurrent print of a newer version
    evicted it) or is cut short (the cache is written without fsync: after a power cut a file
    can be empty)."""
    from pypdf.errors import PyPdfError
    return (FileNotFoundError, PyPdfError)


def _render_again(pool, wanted, path, timeout=RENDER_TIMEOUT):
    """Render a profile whose cached file is gone or unreadable; a broken file is removed first,
    since render_to_cache keeps any file it finds."""
    log.warning("cached profile %s is gone or unreadable: rendering it again", os.path.basename(path))
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    _run(pool, render_to_cache, wanted.context(), path, timeout=timeout)


# ---- stamping and merging --------------------------------------------------------------------------


def stamp_text(context_t, printed_by, printed_at):
    return context_t["printed"].format(who=printed_by, when=printed_at) if printed_by else ""


def stamp_writer(writer, stamp_pdf):
    """Lay the stamp page over every page of a pypdf writer: the stamp becomes one Form XObject that
    each page draws after its own content (wrapped in q/Q), so no page's content is parsed or
    rewritten (pypdf's merge_page did that, a third of a cached village print)."""
    from pypdf import PdfReader
    from pypdf.generic import (ArrayObject, DecodedStreamObject, DictionaryObject, FloatObject,
                               NameObject)
    if not stamp_pdf:
        return
    stamp = PdfReader(io.BytesIO(stamp_pdf)).pages[0]

    def stream(data, **entries):
        obj = DecodedStreamObject()
        obj.set_data(data)
        obj.update({NameObject(k): v for k, v in entries.items()})
        return writer._add_object(obj)

    form = stream(stamp.get_contents().get_data(),
                  **{"/Type": NameObject("/XObject"), "/Subtype": NameObject("/Form"),
                     "/BBox": ArrayObject(FloatObject(float(x)) for x in stamp.mediabox),
                     "/Resources": stamp["/Resources"].clone(writer)})
    before, after = stream(b"q\n"), stream(b"Q\nq /JdStamp Do Q\n")
    for page in writer.pages:
        contents = page.get("/Contents")
        if contents is None:
            continue
        own = contents.get_object()
        parts = list(own) if isinstance(own, ArrayObject) else [contents]
        page[NameObject("/Contents")] = ArrayObject([before, *parts, after])
        resources = page.get("/Resources")
        if resources is None:
            resources = DictionaryObject()
            page[NameObject("/Resources")] = resources
        resources = resources.get_object()
        xobjects = resources.get("/XObject")
        if xobjects is None:
            xobjects = DictionaryObject()
            resources[NameObject("/XObject")] = xobjects
        xobjects.get_object()[NameObject("/JdStamp")] = form


def stamped_pdf(path, stamp_pdf):
    """The cached PDF at `path` with the footer stamp, as bytes."""
    from pypdf import PdfReader, PdfWriter
    writer = PdfWriter(clone_from=PdfReader(path))
    stamp_writer(writer, stamp_pdf)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class MergedPdf:
    """The village's one PDF, built as its profiles come: each is read and appended in household
    order while the pool renders the ones after it. Reading the profiles was three quarters of a
    4 s merge that ran alone after the last profile, one core idle; now only the stamp, the font
    sharing and the write wait for the last one."""

    def __init__(self):
        from pypdf import PdfWriter
        self.writer = PdfWriter()
        self.count = 0
        self.starts = []  # each appended profile's first page, 0-based

    def append(self, path):
        """Append one profile, each with its own outline as a top-level entry. PdfReader reads the
        file whole, so a later eviction from the cache cannot touch what was appended."""
        from pypdf import PdfReader
        self.starts.append(len(self.writer.pages))
        self.writer.append(PdfReader(path), import_outline=True)
        self.count += 1

    def prepend(self, pdf_bytes):
        """Put a cover before the profiles (no bookmark of its own: one per household); theirs point
        at their pages, not at page numbers, so they stay right."""
        from pypdf import PdfReader
        self.writer.merge(0, PdfReader(io.BytesIO(pdf_bytes)), import_outline=False)

    def write(self, stamp_pdf, out_path, metadata_title="", share=True):
        """Stamp every page and write the file. With `share`, the profiles use one CJK font program
        instead of one each (see fonts.py): about a quarter of the size."""
        writer = self.writer
        stamp_writer(writer, stamp_pdf)
        if share and self.count > 1:
            report = share_fonts(writer)
            if report["skipped"]:
                log.info("font sharing skipped: %s", report["skipped"])
        if metadata_title:
            writer.add_metadata({"/Title": metadata_title})
        writer.page_mode = "/UseOutlines"
        with atomic_file(out_path, durable=False) as f:
            writer.write(f)


def merge_pdfs(paths, stamp_pdf, out_path, metadata_title="", share=True):
    """One PDF of all profiles in order (see MergedPdf)."""
    merged = MergedPdf()
    for path in paths:
        merged.append(path)
    merged.write(stamp_pdf, out_path, metadata_title=metadata_title, share=share)


# ---- reading the store -----------------------------------------------------------------------------


def household_context(store, household, *, forms, lang, mask, files_dir, record_url="",
                      users=None, submissions=None, village=None):
    """The context of one household from the store, without the print stamp (that comes later)."""
    vid = household.get("village_id") or household_records.village_of(household["id"])
    if submissions is None:
        submissions = submission_records.of_household(household["id"], store)
    if village is None:
        village = village_records.get(vid, store) or {"id": vid}
    wanted = list(household.get("cadre_ids") or []) + [s.get("cadre_id") for s in submissions]
    cadres = []
    for uid in dict.fromkeys(u for u in wanted if isinstance(u, str)):
        u = users.get(uid) if users is not None else user_records.get(uid, store)
        if u:
            cadres.append({k: u.get(k) for k in ("id", "display_name", "unit", "phone", "role")})
    return build_profile_context(household, village, cadres, submissions, forms, None, lang,
                                 attachments_dir(files_dir), mask=mask, record_url=record_url,
                                 max_pixels=_max_pixels())


class _Wanted:
    """One household's profile as a print needs it: where its PDF is in the cache, found without
    building its context when nothing it shows has changed since it was last located.

    The key is the files folder and every stored thing the context is built from, by its seq (the
    household, its submissions, its village, the users named), plus the form registry, the template, the language,
    masking, the QR link and the day's year and zone; the digest in the file name stays the proof."""

    _paths = {}          # key -> cache path, in this server process
    _lock = threading.Lock()
    MAX_KEYS = 50_000

    def __init__(self, store, household, *, forms, lang, mask, files_dir, record_url, users=None,
                 submissions=None, village=None):
        self.store, self.household = store, household
        self.forms, self.lang, self.mask, self.files_dir, self.record_url = forms, lang, mask, files_dir, record_url
        vid = household.get("village_id") or household_records.village_of(household["id"])
        self.submissions = (submission_records.of_household(household["id"], store)
                            if submissions is None else submissions)
        self.village = village if village is not None else (village_records.get(vid, store) or {"id": vid})
        self.users = users
        self._context = None

    def _user(self, uid):
        return self.users.get(uid) if self.users is not None else user_records.get(uid, self.store)

    def key(self):
        h, subs = self.household, self.submissions
        named = list(h.get("cadre_ids") or []) + [s.get("cadre_id") for s in subs]
        people = tuple((uid, (self._user(uid) or {}).get("seq"))
                       for uid in dict.fromkeys(u for u in named if isinstance(u, str)))
        return (self.files_dir, h["id"], h.get("seq"), h.get("version"), len(subs),
                max((s.get("seq") or 0 for s in subs), default=0), self.village.get("seq"), people,
                _forms_identity(self.forms), template_hash(), self.lang, bool(self.mask), self.record_url,
                today().year, str(zone()), _max_pixels())

    def context(self):
        if self._context is None:
            self._context = household_context(
                self.store, self.household, forms=self.forms, lang=self.lang, mask=self.mask,
                files_dir=self.files_dir, record_url=self.record_url, users=self.users,
                submissions=self.submissions, village=self.village)
        return self._context

    def path(self):
        """The cache path of this profile (its file may not exist yet)."""
        key = self.key()
        with self._lock:
            found = self._paths.get(key)
        if found and os.path.exists(found):
            return found
        path = cache_path(self.files_dir, self.context())
        with self._lock:
            if len(self._paths) >= self.MAX_KEYS:
                self._paths.clear()
            self._paths[key] = path
        return path


def _forms_identity(forms):
    """What the registry serves (a form published from the admin pages replaces it)."""
    current = getattr(forms, "current", None)
    if callable(current):
        try:
            return tuple((f["id"], f["version"], f["sha256"]) for f in current())
        except (TypeError, KeyError):
            pass
    return id(forms)


_settings = {"max_pixels": images.MAX_PIXELS}


def _max_pixels():
    return _settings["max_pixels"]


def configure(*, max_pixels=None):
    """Settings of the server process that reach the workers through the contexts."""
    if max_pixels:
        _settings["max_pixels"] = int(max_pixels)


def texts(lang):
    """The profile's fixed texts in `lang` (the stamp's wording, the batch title)."""
    return {k: v[1] if lang == "en" else v[0] for k, v in TEXTS.items()}


def printed_now():
    """'2026-05-04 09:30' in JIEDUI_TIMEZONE: the time on a print's stamp."""
    return show(now_iso())


class Lane:
    """Single profiles people wait for: at most `limit` at once between asking and getting their
    PDF, so a flood holds a few request threads and never all of them; past it, Busy."""

    RETRY_AFTER = 5

    def __init__(self):
        self._lock = threading.Lock()
        self._inside = 0

    @property
    def inside(self):
        with self._lock:
            return self._inside

    def enter(self, limit):
        with self._lock:
            if self._inside >= limit:
                raise Busy(self.RETRY_AFTER)
            self._inside += 1

    def leave(self):
        with self._lock:
            self._inside -= 1


lane = Lane()


def print_household(store, household, *, files_dir, forms, lang, mask, printed_by, record_url="",
                    workers=None, wait=RENDER_TIMEOUT, printed_at=None):
    """Stamped PDF bytes of one household, from the cache when unchanged: (pdf_bytes, cache_hit).
    Raises Busy when the profile has not come back within `wait` seconds (it goes on rendering
    into the cache, so a retry finds it there)."""
    wanted = _Wanted(store, household, forms=forms, lang=lang, mask=mask, files_dir=files_dir,
                     record_url=record_url)
    path = wanted.path()
    pool = get_pool(workers)
    hit = os.path.exists(path)
    stamp_future = (_stamp_future(pool, stamp_text(texts(lang), printed_by, printed_at or printed_now()),
                                  lang) if printed_by else None)
    try:
        if not hit:
            _run(pool, render_to_cache, wanted.context(), path, timeout=wait)
        stamp = stamp_future.result(timeout=wait) if stamp_future else None
    except cf.TimeoutError:
        raise Busy(Lane.RETRY_AFTER) from None
    try:
        return stamped_pdf(path, stamp), hit
    except unreadable_cache_errors():
        try:
            _render_again(pool, wanted, path, timeout=wait)
        except cf.TimeoutError:
            raise Busy(Lane.RETRY_AFTER) from None
        return stamped_pdf(path, stamp), False


def render_ahead(store, household, *, files_dir, forms, lang, mask, record_url, timeout=RENDER_TIMEOUT):
    """Background: the household's profile rendered into the cache by the low-priority worker,
    unless it is there. Returns True when it had to be rendered."""
    wanted = _Wanted(store, household, forms=forms, lang=lang, mask=mask, files_dir=files_dir,
                     record_url=record_url)
    path = wanted.path()
    if os.path.exists(path):
        return False
    _run(get_pool(background=True), render_to_cache, wanted.context(), path, timeout=timeout)
    return True


@dataclass(frozen=True)
class PrintOptions:
    """How a batch prints: where files and the cache live, the forms' labels, the language, whether
    phones are masked, the footer's "printed by" and time, the QR link of each household, and how
    many worker processes render."""
    files_dir: str
    forms: object
    lang: str = "zh"
    mask: bool = True
    printed_by: str = ""
    record_url_for: object = None
    workers: int = None
    printed_at: str = None
    cover: bool = True  # a cover and an index before the profiles
    scope: str = ""     # what the batch holds, on the cover ("第一组", "李干部 的结对户"); "" the village


class VillagePrint:
    """One village (or a chosen set of its households) into one PDF, a bookmark per household:
    each profile is looked up in the cache while the pool renders the ones missing, and appended to
    the merged PDF, in household order, as soon as it and every one before it are ready. Only a few
    profiles wait in the pool at a time, so a single profile asked for on a household page meanwhile
    is rendered within a second, not after the whole village."""

    def __init__(self, store, village_id, out_path, options, *, progress=None, household_ids=None):
        self.village_id, self.out_path, self.options = village_id, out_path, options
        self.progress = progress
        households = household_records.in_village(village_id, store)
        if household_ids is not None:
            keep = set(household_ids)
            households = [h for h in households if h["id"] in keep]
        self.households = households
        self.village = village_records.get(village_id, store) or {"id": village_id}
        users = {u["id"]: u for u in user_records.list_all(store)}
        by_household = defaultdict(list)
        for s in submission_records.in_village(village_id, store):
            by_household[s.get("household_id")].append(s)
        o = options
        self.wanted = [_Wanted(store, h, forms=o.forms, lang=o.lang, mask=o.mask, files_dir=o.files_dir,
                               record_url=o.record_url_for(h["id"]) if o.record_url_for else "",
                               users=users, submissions=by_household.get(h["id"], []),
                               village=self.village) for h in households]
        self.total = len(households)
        self.summary = {"total": self.total, "cache_hits": 0, "rendered": 0, "errors": [], "paths": [],
                        "labels": []}
        self.paths = [None] * self.total   # each household's cache path, once looked up
        self.ready = [False] * self.total  # rendered or found in the cache
        self.looked = 0                    # households looked up in the cache so far, in order
        self.todo, self.failed, self.in_flight = [], set(), {}
        self.done = 0
        self.merged = MergedPdf()
        self.merged_upto = 0               # profiles before this index are appended or failed
        self.pool = None

    def run(self):
        """Render and merge; returns the summary: total, cache_hits, rendered, errors, paths (the
        cached singles), labels, stamp, out_path (None when nothing could be printed)."""
        o = self.options
        self._report()
        self.pool = get_pool(o.workers)
        t = texts(o.lang)
        stamp_future = (_stamp_future(self.pool, stamp_text(t, o.printed_by, o.printed_at or printed_now()),
                                      o.lang) if o.printed_by and self.households else None)
        window = 2 * int(o.workers or default_workers()) + 1
        try:
            while self.looked < self.total or self.todo or self.in_flight:
                while len(self.in_flight) < window and (self.todo or self.looked < self.total):
                    if self.todo:
                        i = self.todo.pop(0)
                        self.in_flight[self.pool.submit(render_to_cache, self.wanted[i].context(),
                                                        self.paths[i])] = i
                    else:
                        self._look_up()
                self._merge_ready()
                if not self.in_flight:
                    continue
                finished, _ = cf.wait(self.in_flight, timeout=0 if self.looked < self.total else None,
                                      return_when=cf.FIRST_COMPLETED)
                if not finished:  # only with households left to look up: wait() blocks otherwise
                    self._look_up()
                    continue
                for fut in finished:
                    self._collect(fut)
            self._merge_ready()
        except cf.process.BrokenProcessPool:
            _discard_pool(self.pool)
            raise
        stamp = stamp_future.result(timeout=RENDER_TIMEOUT) if stamp_future else None
        return self._finish(stamp, t)

    def _report(self):
        if self.progress:
            self.progress(self.done, self.total)

    def _look_up(self):
        """Find the next household's profile in the cache, or queue it for rendering. Building
        the context this needs is ~2.5 ms a household, so it goes on while the pool renders."""
        i = self.looked
        self.looked += 1
        self.paths[i] = self.wanted[i].path()
        if os.path.exists(self.paths[i]):
            self.summary["cache_hits"] += 1
            self.ready[i] = True
            self.done += 1
            self._report()
        else:
            self.todo.append(i)

    def _collect(self, fut):
        """A render has finished: ready, or a failure reported by household (one bad household
        must not sink the village)."""
        i = self.in_flight.pop(fut)
        try:
            fut.result()
            self.summary["rendered"] += 1
            self.ready[i] = True
        except cf.process.BrokenProcessPool:
            raise
        except Exception as e:
            log.exception("profile of %s failed", self.households[i]["id"])
            self.failed.add(i)
            self.summary["errors"].append({"household_id": self.households[i]["id"],
                                           "message": str(e)[:300]})
        self.done += 1
        self._report()

    def _merge_ready(self):
        """Append the profiles ready at the head of the line, in household order."""
        while self.merged_upto < self.total and (self.ready[self.merged_upto]
                                                 or self.merged_upto in self.failed):
            i = self.merged_upto
            self.merged_upto += 1
            if i in self.failed:
                continue
            try:
                self.merged.append(self.paths[i])
            except unreadable_cache_errors():
                _render_again(self.pool, self.wanted[i], self.paths[i])
                self.merged.append(self.paths[i])

    def _add_cover(self, good):
        """The cover and index, laid out once the page each profile starts on is known; laid out
        again in the rare case the index's own length moves the numbers it prints."""
        o = self.options
        entries = [{"id": self.households[i]["id"], "head": self.households[i].get("head_name") or "",
                    "group": self.households[i].get("group") or ""} for i in good]
        body_pages = len(self.merged.writer.pages)
        context = {"lang": o.lang, "village": {k: self.village.get(k) or "" for k in ("name", "township", "county")},
                   "scope": o.scope, "households": len(good), "failed": len(self.failed),
                   "date": (o.printed_at or printed_now())[:10],
                   "printed_by": o.printed_by, "entries": entries}
        cover_pages = 2
        for _ in range(3):
            for entry, start in zip(entries, self.merged.starts):
                entry["page"] = cover_pages + start + 1
            context["pages"] = cover_pages + body_pages
            pdf, pages = _run(self.pool, render_cover_pdf, context)
            if pages == cover_pages:
                break
            cover_pages = pages
        self.merged.prepend(pdf)

    def _finish(self, stamp, t):
        summary, total = self.summary, self.total
        good = [i for i in range(total) if i not in self.failed]
        for i in good:  # the ZIP of singles reads them again: put back any evicted meanwhile
            if not os.path.exists(self.paths[i]):
                _render_again(self.pool, self.wanted[i], self.paths[i])
        summary["paths"] = [self.paths[i] for i in good]
        summary["labels"] = [(self.households[i]["id"], self.households[i].get("head_name") or "")
                             for i in good]
        summary["stamp"] = stamp
        if good:
            name = self.village.get("name") or self.village_id
            title = f"{name} · {t['title']}" if t else self.village_id
            if self.options.cover:
                self._add_cover(good)
            self.merged.write(stamp, self.out_path, metadata_title=title)
        summary["out_path"] = self.out_path if good else None
        return summary


def print_village(store, village_id, out_path, *, files_dir, forms, lang="zh", mask=True,
                  printed_by="", record_url_for=None, workers=None, progress=None,
                  household_ids=None, printed_at=None):
    """Every household of a village in one PDF (see VillagePrint); progress(done, total) is called
    as households finish. Returns the summary."""
    options = PrintOptions(files_dir=files_dir, forms=forms, lang=lang, mask=mask, printed_by=printed_by,
                           record_url_for=record_url_for, workers=workers, printed_at=printed_at)
    return VillagePrint(store, village_id, out_path, options, progress=progress,
                        household_ids=household_ids).run()


def write_zip(summary, zip_path):
    """A ZIP of the single stamped profiles of a finished batch, named by household id and head."""
    with atomic_file(zip_path, durable=False) as raw, \
            zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
        for path, (hid, head) in zip(summary["paths"], summary["labels"]):
            head = UNSAFE_FILENAME_RE.sub("_", head or "")[:40]
            name = f"{hid}-{head}.pdf" if head else f"{hid}.pdf"
            zf.writestr(name, stamped_pdf(path, summary.get("stamp")))


# ---- jobs in the server process --------------------------------------------------------------------


def remove_old_prints(files_dir, max_age=KEEP_PRINTS_SECONDS):
    """Batch PDFs and ZIPs are for downloading soon after; the cache keeps what is worth keeping."""
    folder = prints_dir(files_dir)
    cutoff = time.time() - max_age
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        if (name.endswith((".pdf", ".zip")) or name.startswith(".tmp-")) and os.path.isfile(path):
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.remove(path)
            except OSError:
                pass


class PrintJobs:
    """Village print jobs of this server process: state in memory, guarded by a lock; one thread
    per running job drives the shared worker pool. One running job per village (and language and
    masking): asking again returns the running one."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs = {}

    def start(self, store, village_id, *, files_dir, forms, lang, mask, printed_by, user_id,
              record_url_for=None, workers=None, printed_at=None, household_ids=None, scope=""):
        """`household_ids`: only these (a cadre's own households, one group); `scope` names them
        on the cover. A second ask for the same print joins the running one."""
        selection = tuple(sorted(household_ids)) if household_ids is not None else None
        with self._lock:
            for job in self._jobs.values():
                if (job["village_id"] == village_id and job["lang"] == lang
                        and job["mask"] == mask and job["user_id"] == user_id
                        and job.get("_selection") == selection
                        and job["state"] in ("queued", "running")):
                    return dict(job), False
            job_id = secrets.token_hex(8)
            out = os.path.join(prints_dir(files_dir), f"{_safe(village_id)}-{job_id}.pdf")
            job = {"id": job_id, "village_id": village_id, "lang": lang, "mask": mask,
                   "state": "queued", "done": 0, "total": 0, "cache_hits": 0, "rendered": 0,
                   "errors": [], "error": None, "user_id": user_id, "path": out,
                   "created_at": now_iso(), "finished_at": None, "_summary": None,
                   "_selection": selection, "scope": scope}
            self._jobs[job_id] = job
            self._trim()
        remove_old_prints(files_dir)

        def progress(done, total):
            with self._lock:
                job["done"], job["total"], job["state"] = done, total, "running"

        def run():
            try:
                options = PrintOptions(files_dir=files_dir, forms=forms, lang=lang, mask=mask,
                                       printed_by=printed_by, record_url_for=record_url_for,
                                       workers=workers, printed_at=printed_at, scope=scope)
                summary = VillagePrint(store, village_id, out, options, progress=progress,
                                       household_ids=household_ids).run()
                with self._lock:
                    job.update(cache_hits=summary["cache_hits"], rendered=summary["rendered"],
                               errors=summary["errors"], _summary=summary,
                               state="done" if summary["out_path"] or not summary["total"]
                               else "failed", finished_at=now_iso())
                    if not summary["total"]:
                        job["path"] = None
            except Exception as e:
                log.exception("print job %s failed", job_id)
                with self._lock:
                    job.update(state="failed", error=str(e)[:300], finished_at=now_iso())

        threading.Thread(target=run, name=f"print-job-{job_id}", daemon=True).start()
        return dict(job), True

    def _trim(self):
        finished = [j for j in self._jobs.values() if j["state"] in ("done", "failed")]
        for j in finished[:max(0, len(finished) - MAX_JOBS_KEPT)]:
            self._jobs.pop(j["id"], None)

    def running(self):
        """Whether a batch is queued or running (the background printer then stands aside)."""
        with self._lock:
            return any(j["state"] in ("queued", "running") for j in self._jobs.values())

    def get(self, job_id):
        with self._lock:
            job = self._jobs.get(job_id)
            return dict(job) if job else None

    def for_village(self, village_id):
        with self._lock:
            return [dict(j) for j in self._jobs.values() if j["village_id"] == village_id][::-1]

    def wait(self, job_id, timeout=None):
        """For tests and the CLI: block until the job has finished (no sleeping loop)."""
        for t in threading.enumerate():
            if t.name == f"print-job-{job_id}":
                t.join(timeout)
        return self.get(job_id)
