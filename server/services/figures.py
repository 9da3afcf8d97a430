"""Figures a report can quote: what happened between two days (visits, consumption help, PV stage
changes), and any countable question of any form counted per village and cadre.

Beside stats.py's summary (which it reuses for visits), each village gets a second small summary,
kept the same way (by the village's change cursor, in the store's summaries, so an unchanged
village is never read again): help and stage changes bucketed by day, so any range is a sum over
days. Days are the county's calendar (JIEDUI_TIMEZONE): a submission's day is its visit date, else
the local day it was filled in; a stage change's day is the local day of the phone's time that
made it (pv_status.updated_at), else of the server's.

The lists (`list_items`) walk the records with the same predicates (`help_entries`,
`stage_changes`), so a number and its list cannot disagree. Help "by channel": a help entry names
its buyer channel in the repeat's `channel` child (the visit form from version 3; older versions
have none). When any entry of the range names one, help is broken down by channel (the choice's
label), with one row for the entries that name none, so the rows add up to the total; when none
does, by the cadre who recorded it, as before the form asked. One table never mixes the two.
"""

from datetime import date, timedelta

from server.core import clock
from server.core.i18n import label, tr
from server.forms import effects, formdefs, labels
from server.records import households, submissions, users, villages
from server.records.submissions import day_of, is_current
from server.services import present, stats
from server.store import PartitionUnavailable, get_store

FIGURES_VERSION = 2  # 2: "channels" counts every help entry, NOT_RECORDED for those naming none
MAX_RANGE_YEARS = 10
PRESETS = ("this_month", "last_month", "this_year")
KINDS = ("help_entries", "stage_changes", "pv_capacity", "answers")
COUNTABLE = ("select_one", "select_multiple", "integer", "decimal")
CHANNEL_FIELDS = effects.HELP_CHANNELS
NOT_RECORDED = "-"  # the channel id (and list filter) of help entries that name no channel
SEP = "\t"
TYPE_WORDS = {"text": ("文本", "text"), "textarea": ("多行文本", "multi-line text"), "date": ("日期", "date"),
              "photo": ("照片", "photo"), "signature": ("签名", "signature"), "geopoint": ("位置", "location"),
              "repeat": ("重复组", "repeat"), "boolean": ("是否", "yes/no"), "time": ("时间", "time")}


# ---- the range --------------------------------------------------------------------------------------


def preset_range(preset, today):
    """(first day, last day) of a preset, as dates."""
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if preset == "this_year":
        return today.replace(month=1, day=1), today
    raise ValueError(preset)


def range_problem(first, last):
    """Why a range cannot be used ((zh, en)), or None."""
    if last < first:
        return "结束日期早于开始日期", "the end date is before the start date"
    try:
        limit = first.replace(year=first.year + MAX_RANGE_YEARS)
    except ValueError:  # 29 February
        limit = first.replace(year=first.year + MAX_RANGE_YEARS, day=28)
    if last >= limit:
        return f"时间范围不能超过 {MAX_RANGE_YEARS} 年", f"the range cannot span more than {MAX_RANGE_YEARS} years"
    return None


# ---- the predicates (summaries and lists alike) -----------------------------------------------------


def help_spec(form_id, version, registry):
    """The consumption-help repeat of a form version ({"repeat", "quantity", "price"}), or None."""
    definition = registry.get(form_id, version) if registry is not None else None
    spec = ((definition or {}).get("effects") or {}).get("help_value")
    return spec if isinstance(spec, dict) and spec.get("repeat") else None


def channel_field(definition, spec):
    """The buyer-channel child (CHANNEL_FIELDS) of a form version's help repeat, or None."""
    for f in formdefs.answer_fields(definition or {}):
        if f.get("name") == spec.get("repeat") and f.get("type") == "repeat":
            return effects.help_channel_child(f.get("fields"))
    return None


def channel_labels(registry):
    """{channel name: {zh, en}}: the choices of every form's buyer-channel question, the newest
    version's label first (a name no form offers, e.g. a typed text, is shown as itself)."""
    out = {}
    for form_id in registry.ids():
        for version in sorted(registry.versions(form_id), reverse=True):
            definition = registry.get(form_id, version)
            spec = help_spec(form_id, version, registry)
            field = channel_field(definition, spec) if spec else None
            for choice in (field or {}).get("choices") or []:
                if isinstance(choice.get("name"), str):
                    out.setdefault(choice["name"], choice.get("label"))
    return out


def channel_words(registry):
    """{channel id: its words in the page's language}, the not-recorded row's included."""
    out = {name: label(words) or name for name, words in channel_labels(registry).items()}
    out[NOT_RECORDED] = tr("未填渠道", "Not recorded")
    return out


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def help_entries(sub, registry):
    """[(index, product, unit, quantity, price, amount, channel)] of a current submission's help
    repeat: the entries with a number for quantity and price (as effects.help_value adds them)."""
    if not is_current(sub):
        return []
    spec = help_spec(sub.get("form"), sub.get("form_version"), registry)
    if spec is None:
        return []
    out = []
    for i, entry in enumerate((sub.get("answers") or {}).get(spec["repeat"]) or [], 1):
        if not isinstance(entry, dict):
            continue
        q, p = _number(entry.get(spec["quantity"])), _number(entry.get(spec["price"]))
        if q is None or p is None:
            continue
        product = str(entry.get("product") or "").strip() or "—"
        unit = str(entry.get("unit") or "").strip()
        channel = next((str(entry[c]) for c in CHANNEL_FIELDS if entry.get(c)), None)
        out.append((i, product, unit, q, p, q * p, channel))
    return out


def stage_changes(entry):
    """The PV stage change one household history entry records: (to stage, from stage, kW, at), or
    None when the stage did not change."""
    if "pv_status" not in (entry.get("fields") or []):
        return None
    before = (entry.get("before") or {}).get("pv_status") or {}
    after = (entry.get("after") or {}).get("pv_status") or {}
    old = before.get("stage") if isinstance(before, dict) else None
    new = after.get("stage") if isinstance(after, dict) else None
    if not isinstance(new, str) or new == old:
        return None
    kw = _number(after.get("capacity_kw")) or 0
    at = after.get("updated_at") or entry.get("at")
    return new, old if isinstance(old, str) else None, kw, at


def change_day(at):
    return clock.local_date(at) or ""


# ---- one village ------------------------------------------------------------------------------------


def village_figures_summary(village_id, db, registry):
    """{"version", "village_id",
        "help": {day: {cadre: {"product\\tunit": [entries, quantity, yuan]}}},
        "channels": {day: {channel or NOT_RECORDED: [entries, yuan]}} (every help entry),
        "help_subs": {day: {cadre: [submissions, yuan]}},
        "changes": {day: {stage: [changes, kW]}},
        "pv": {stage: [households, kW]}}. Independent of today."""
    out = {"version": FIGURES_VERSION, "village_id": village_id, "help": {}, "channels": {},
           "help_subs": {}, "changes": {}, "pv": {}}

    def on_submission(s):
        value = stats.help_of(s)
        if value <= 0 and not (s.get("answers") or {}):
            return
        day = day_of(s)
        cid = s.get("cadre_id") if isinstance(s.get("cadre_id"), str) else ""
        if value > 0:
            bucket = out["help_subs"].setdefault(day, {}).setdefault(cid, [0, 0])
            bucket[0] += 1
            bucket[1] += value
        for _i, product, unit, q, _p, amount, channel in help_entries(s, registry):
            bucket = out["help"].setdefault(day, {}).setdefault(cid, {}).setdefault(
                product + SEP + unit, [0, 0, 0])
            bucket[0] += 1
            bucket[1] += q
            bucket[2] += amount
            ch = out["channels"].setdefault(day, {}).setdefault(channel or NOT_RECORDED, [0, 0])
            ch[0] += 1
            ch[1] += amount

    def on_change(entry):
        found = stage_changes(entry)
        if found:
            stage, _old, kw, at = found
            bucket = out["changes"].setdefault(change_day(at), {}).setdefault(stage, [0, 0])
            bucket[0] += 1
            bucket[1] += kw

    def on_household(h):
        stage = stats.pv_stage(h)
        if stage:
            bucket = out["pv"].setdefault(stage, [0, 0])
            bucket[0] += 1
            bucket[1] += _number((h.get("pv_status") or {}).get("capacity_kw")) or 0

    submissions.scan(village_id, on_submission, db=db)
    households.scan_history(village_id, on_change, db=db)
    households.scan(village_id, on_household, db=db)
    return out


class FiguresCache(stats.PartitionSummaries):
    """Figure summaries by (village, partition_seq), kept as the dashboard's own are."""

    def __init__(self, limit=5000):
        super().__init__(limit)
        self._parts = {}  # village id -> [stats summary, figure summary, {(first, last): part}]

    def get(self, village_id, db, registry):
        return self._summary(village_id, db, f"figures.{FIGURES_VERSION}",
                             lambda: village_figures_summary(village_id, db, registry))

    def part_of(self, s, f, first, last):
        """village_part, kept while both summaries are the ones cached (a few ranges each)."""
        vid = s["village_id"]
        key = (first, last)
        with self._lock:
            hit = self._parts.get(vid)
            if hit is not None and hit[0] is s and hit[1] is f:
                found = hit[2].get(key)
                if found is not None:
                    return found
            else:
                hit = None
        found = village_part(s, f, first, last)
        with self._lock:
            if hit is None:
                if len(self._parts) >= self.limit:
                    self._parts.clear()
                hit = self._parts[vid] = [s, f, {}]
            if len(hit[2]) > 4:
                hit[2].clear()
            hit[2][key] = found
        return found


def cache_of(app):
    cache = app.extensions.get("jiedui_figures_cache")
    if cache is None:
        cache = app.extensions.setdefault("jiedui_figures_cache", FiguresCache())
    return cache


# ---- the range figures -----------------------------------------------------------------------------


def _in(day, first, last):
    return first <= day <= last


def _add(into, key, values):
    found = into.get(key)
    if found is None:
        into[key] = list(values)
    else:
        for i, v in enumerate(values):
            found[i] += v


def village_part(s, f, first, last):
    """One village's share of the range figures (small: a few products, months, cadres), from its
    stats summary `s` and figure summary `f`. The cache keeps it beside the summaries, so a warm
    county page only adds parts up."""
    part = {"village_id": s["village_id"], "visits": 0, "help": [0, 0.0], "cadres": {},
            "products": {}, "months": {}, "channels": {}, "help_cadres": {}, "changes": {}, "days": {},
            "pv": {stage: list(v) for stage, v in f.get("pv", {}).items()}}
    part["visits"] = sum(n for d, n in s.get("visits", {}).items() if first <= d <= last)
    cadres = part["cadres"]
    for cid, mine in s.get("cadres", {}).items():
        n = sum(k for d, k in mine.get("visits", {}).items() if first <= d <= last)
        if n:
            cadres[cid] = [n, 0, 0.0]
    for day, by_cadre in f.get("help_subs", {}).items():
        if first <= day <= last:
            for cid, (n, value) in by_cadre.items():
                part["help"][0] += n
                part["help"][1] += value
                if cid:
                    c = cadres.setdefault(cid, [0, 0, 0.0])
                    c[1] += n
                    c[2] += value
    for day, by_cadre in f.get("help", {}).items():
        if first <= day <= last:
            for cid, by_product in by_cadre.items():
                for key, (n, q, value) in by_product.items():
                    _add(part["products"], key, (n, q, value))
                    _add(part["months"], day[:7], (n, value))
                    _add(part["help_cadres"], cid, (n, value))
    for day, chosen in f.get("channels", {}).items():
        if first <= day <= last:
            for name, (n, value) in chosen.items():
                _add(part["channels"], name, (n, value))
    for day, by_stage in f.get("changes", {}).items():
        if first <= day <= last:
            for stage, (n, kw) in by_stage.items():
                _add(part["changes"], stage, (n, kw))
                _add(part["days"], (day, stage), (n, kw))
    return part


def help_by_channel(channels, help_cadres, cadre_names, channel_names):
    """(rows, "channel"|"cadre"): by buyer channel when any entry names one (the not-recorded row
    last), else by the cadre who recorded it; largest amount first."""
    def largest(items):
        return sorted(items, key=lambda kv: (-kv[1][1], kv[0]))
    if any(name != NOT_RECORDED and n for name, (n, _v) in channels.items()):
        named = largest((k, v) for k, v in channels.items() if k != NOT_RECORDED and v[0])
        if channels.get(NOT_RECORDED, [0])[0]:
            named.append((NOT_RECORDED, channels[NOT_RECORDED]))
        return [{"kind": "channel", "id": name, "name": channel_names.get(name, name),
                 "entries": n, "value": round(value, 2)} for name, (n, value) in named], "channel"
    return [{"kind": "cadre", "id": cid, "name": cadre_names.get(cid, cid), "entries": n,
             "value": round(value, 2)} for cid, (n, value) in largest(help_cadres.items())], "cadre"


def range_figures(summaries, figure_summaries, first, last, *, villages_by_id=None, cadre_names=None,
                  stages=(), part_of=village_part, channel_names=None):
    """The "range" object of /api/v1/stats from the village summaries (stats.py's, for visits) and
    the figure summaries, for the days first..last (ISO strings, inclusive). part_of: how to get
    village_part (the cache passes a memoised one); channel_names: {channel id: words}."""
    villages_by_id = villages_by_id or {}
    cadre_names = cadre_names or {}
    rows, per_cadre = [], {}
    products, months, channels, help_cadres, changes, by_day = {}, {}, {}, {}, {}, {}
    pv = {stage: [0, 0] for stage in stages}
    total_visits = total_subs = 0
    total_help = 0.0
    for s, f in zip(summaries, figure_summaries):
        part = part_of(s, f, first, last)
        vid = part["village_id"]
        for cid, values in part["cadres"].items():
            _add(per_cadre, cid, values)
        for into, key in ((products, "products"), (months, "months"), (channels, "channels"),
                          (help_cadres, "help_cadres"), (changes, "changes"), (by_day, "days"), (pv, "pv")):
            for k, values in part[key].items():
                _add(into, k, values)
        n, value = part["help"]
        total_visits += part["visits"]
        total_subs += n
        total_help += value
        rows.append({"id": vid, "name": (villages_by_id.get(vid) or {}).get("name") or vid,
                     "visits": part["visits"], "help_value": round(value, 2), "help_submissions": n})
    cadres = [{"id": cid, "name": cadre_names.get(cid, cid), "visits": c[0],
               "help_value": round(c[2], 2), "help_submissions": c[1]}
              for cid, c in sorted(per_cadre.items(), key=lambda kv: (cadre_names.get(kv[0], kv[0]), kv[0]))]

    def kw(x):
        return round(x, 3)
    by_product = [{"product": key.split(SEP, 1)[0], "unit": key.split(SEP, 1)[1], "entries": n,
                   "quantity": present.number(round(q, 3)), "value": round(value, 2)}
                  for key, (n, q, value) in sorted(products.items(), key=lambda kv: (-kv[1][2], kv[0]))]
    by_channel, channel_is = help_by_channel(channels, help_cadres, cadre_names, channel_names or {})
    return {
        "from": first, "to": last, "visits": total_visits,
        "help": {"value": round(total_help, 2), "submissions": total_subs,
                 "entries": sum(p["entries"] for p in by_product),
                 "by_product": by_product,
                 "by_month": [{"month": m, "entries": n, "value": round(value, 2)}
                              for m, (n, value) in sorted(months.items())],
                 "by_channel": by_channel, "channel_is": channel_is},
        "pv": {"stages": [{"stage": stage, "households": n, "kw": kw(k)} for stage, (n, k) in pv.items()],
               "installed_kw": kw(changes.get("installed", [0, 0])[1]),
               "connected_kw": kw(changes.get("connected", [0, 0])[1]),
               "changes": [{"stage": stage, "changes": n, "kw": kw(k)} for stage, (n, k) in changes.items()],
               "change_days": [{"day": day, "stage": stage, "changes": n, "kw": kw(k)}
                               for (day, stage), (n, k) in sorted(by_day.items(), reverse=True)]},
        "villages": rows, "cadres": cadres}


def compute_range(user, stats_cache, figures_cache, first, last, village=None, db=None, registry=None):
    """The "range" object for `user`'s scope (or one village of it), first..last ISO days."""
    db = db or get_store()
    registry = registry or formdefs.registry()
    chosen = [village] if village else villages.in_scope(user, db)
    summaries, figure_summaries = [], []
    for v in chosen:
        try:  # a village whose file cannot be read is left out (stats names it in "unavailable")
            s, f = stats_cache.get(v["id"], db), figures_cache.get(v["id"], db, registry)
        except PartitionUnavailable:
            if village:
                raise
            continue
        summaries.append(s)
        figure_summaries.append(f)
    return range_figures(summaries, figure_summaries, first, last,
                         villages_by_id={v["id"]: v for v in chosen},
                         cadre_names=users.display_names(db),
                         stages=[s for s, _ in labels.pv_stages()], part_of=figures_cache.part_of,
                         channel_names=channel_words(registry))


# ---- a question of a form ---------------------------------------------------------------------------


def find_question(registry, form_id, name):
    """(field, None) for a top-level question of any version of the form (newest first), or
    (None, (zh, en)) saying why it cannot be counted."""
    found = None
    for version in sorted(registry.versions(form_id), reverse=True):
        definition = registry.get(form_id, version)
        for f in present.questions(definition):
            if f["name"] == name:
                found = f
                break
            for child in f.get("fields") or [] if f.get("type") == "repeat" else []:
                if child.get("name") == name:
                    return None, (f"“{name}”在重复组里，不能按记录统计",
                                  f"“{name}” is inside a repeat and cannot be counted per record")
        if found:
            break
    if found is None:
        return None, (f"表单里没有“{name}”这个问题", f"the form has no question “{name}”")
    if found.get("type") not in COUNTABLE:
        zh, en = TYPE_WORDS.get(found.get("type"), (found.get("type"), found.get("type")))
        return None, (f"“{name}”是{zh}题，只能统计单选、多选、整数和小数题",
                      (f"“{name}” is a {en} question: only single-choice, multiple-choice, integer "
                       f"and decimal questions can be counted"))
    return found, None


def countable_questions(registry):
    """[(form id, form title, [(name, label, type)])] for the question picker."""
    out = []
    for form_id in registry.ids():
        definition = registry.get(form_id)
        qs = [(f["name"], present.label(f.get("label")) or f["name"], f["type"])
              for f in present.questions(definition) if f.get("type") in COUNTABLE]
        if qs:
            out.append((form_id, present.form_title(definition, form_id), qs))
    return out


def answer_keeps(form_id, first, last):
    def keep(s):
        return s.get("form") == form_id and is_current(s) and (
            first is None or first <= day_of(s) <= last)
    return keep


def _values(field, value):
    """The choices an answer counts for ([] when unanswered)."""
    if field["type"] == "select_multiple":
        return [v for v in dict.fromkeys(value) if isinstance(v, str)] if isinstance(value, list) else []
    return [value] if isinstance(value, str) and value else []


def question_figures(village_ids, form_id, field, first, last, db=None, villages_by_id=None,
                     cadre_names=None):
    """Counts (a select) or count and sum (a number) of one question, per village and per cadre,
    over the current submissions of the form whose day is in first..last (None: all days)."""
    db = db or get_store()
    villages_by_id = villages_by_id or {}
    cadre_names = cadre_names or {}
    is_number = field["type"] in ("integer", "decimal")
    keep = answer_keeps(form_id, first, last)
    name = field["name"]

    def blank():
        return {"submissions": 0, "answered": 0, "sum": 0} if is_number else \
            {"submissions": 0, "answered": 0, "counts": {}}

    def add(acc, value):
        acc["submissions"] += 1
        if is_number:
            if _number(value) is not None:
                acc["answered"] += 1
                acc["sum"] += value
            return
        chosen = _values(field, value)
        if chosen:
            acc["answered"] += 1
        for v in chosen:
            acc["counts"][v] = acc["counts"].get(v, 0) + 1

    rows, per_cadre, total, unavailable = [], {}, blank(), []
    for vid in village_ids:
        acc = blank()

        def on(s, acc=acc):
            value = (s.get("answers") or {}).get(name)
            add(acc, value)
            add(total, value)
            cid = s.get("cadre_id")
            if isinstance(cid, str):
                add(per_cadre.setdefault(cid, blank()), value)
        try:  # a village whose file cannot be read fails before any of its answers is counted
            submissions.scan(vid, on, keep, db)
        except PartitionUnavailable:
            unavailable.append(vid)
            continue
        rows.append({"id": vid, "name": (villages_by_id.get(vid) or {}).get("name") or vid, **acc})
    for acc in [total] + rows + list(per_cadre.values()):
        if is_number:
            acc["sum"] = present.number(round(acc["sum"], 6))
    choices = [{"name": c.get("name"), "label": present.label(c.get("label")) or c.get("name")}
               for c in field.get("choices") or []]
    return {"form": form_id, "field": name, "label": present.label(field.get("label")) or name,
            "type": field["type"], "choices": choices, "from": first, "to": last,
            "villages": rows, "totals": total, "unavailable": unavailable,
            "cadres": [{"id": cid, "name": cadre_names.get(cid, cid), **acc} for cid, acc in
                       sorted(per_cadre.items(), key=lambda kv: (cadre_names.get(kv[0], kv[0]), kv[0]))]}


# ---- the lists behind the numbers ------------------------------------------------------------------


def list_items(village_ids, kind, *, db=None, registry=None, cadre_id=None, stage=None, date_from=None,
               date_to=None, product=None, unit=None, month=None, form=None, field=None, value=None,
               channel=None, unavailable=None):
    """The records behind one figure of this module (KINDS), across `village_ids` (already checked
    against the caller's scope). Given a list as `unavailable`, a village whose file cannot be read
    is added to it and left out (as stats.list_items does)."""
    if unavailable is not None:
        items = []
        for vid in village_ids:
            try:
                items.extend(list_items([vid], kind, db=db, registry=registry, cadre_id=cadre_id,
                                        stage=stage, date_from=date_from, date_to=date_to,
                                        product=product, unit=unit, month=month, form=form,
                                        field=field, value=value, channel=channel))
            except PartitionUnavailable:
                unavailable.append(vid)
        items.sort(key=lambda i: (i.get("day") or "", i.get("household_id") or "",
                                  i.get("uuid") or i.get("id") or ""), reverse=kind != "pv_capacity")
        return items
    db = db or get_store()
    registry = registry or formdefs.registry()
    items = []

    def in_range(day):
        return (not date_from or day >= date_from) and (not date_to or day <= date_to)

    for vid in village_ids:
        heads = dict(households.scan(vid, lambda h: (h["id"], h.get("head_name", "")), db=db))
        if kind == "help_entries":
            def on(s, heads=heads, vid=vid):
                if cadre_id is not None and s.get("cadre_id") != cadre_id:
                    return
                day = day_of(s)
                if not in_range(day) or (month and day[:7] != month):
                    return
                asked = None  # the channel question of the submission's own form version
                for i, prod, u, q, p, amount, ch in help_entries(s, registry):
                    if (product is None or prod == product) and (unit is None or u == unit) \
                            and (channel is None or (ch or NOT_RECORDED) == channel):
                        if ch and asked is None:
                            asked = channel_field(registry.get(s.get("form"), s.get("form_version")),
                                                  help_spec(s.get("form"), s.get("form_version"), registry)) or {}
                        items.append({"uuid": s["uuid"], "index": i, "household_id": s.get("household_id"),
                                      "head_name": heads.get(s.get("household_id"), ""),
                                      "village_id": vid, "cadre_id": s.get("cadre_id"), "day": day,
                                      "product": prod, "unit": u, "quantity": present.number(q),
                                      "price": present.number(p), "amount": round(amount, 2),
                                      "channel": ch,
                                      "channel_text": present.choice_label(asked, ch) if ch else ""})
            submissions.scan(vid, on, db=db)
        elif kind == "stage_changes":
            def on_change(entry, heads=heads, vid=vid):
                found = stage_changes(entry)
                if not found:
                    return
                new, old, kw, at = found
                day = change_day(at)
                if in_range(day) and (stage is None or new == stage):
                    items.append({"id": entry.get("id"), "household_id": entry.get("household_id"),
                                  "head_name": heads.get(entry.get("household_id"), ""),
                                  "village_id": vid, "day": day, "at": at, "stage": new,
                                  "from_stage": old, "kw": present.number(kw),
                                  "submission": entry.get("submission")})
            households.scan_history(vid, on_change, db=db)
        elif kind == "pv_capacity":
            def on_household(h, vid=vid):
                s = stats.pv_stage(h)
                if s and (stage is None or s == stage) and (cadre_id is None or cadre_id in (h.get("cadre_ids") or [])):
                    items.append({"id": h["id"], "household_id": h["id"], "head_name": h.get("head_name", ""),
                                  "village_id": vid, "stage": s,
                                  "kw": present.number(_number((h.get("pv_status") or {}).get("capacity_kw")) or 0)})
            households.scan(vid, on_household, db=db)
        elif kind == "answers":
            spec, _why = find_question(registry, form, field) if form and field else (None, None)
            if spec is None:
                continue
            keep = answer_keeps(form, None, None)
            def on_answer(s, heads=heads, vid=vid, spec=spec):
                if cadre_id is not None and s.get("cadre_id") != cadre_id:
                    return
                answer = (s.get("answers") or {}).get(field)
                numeric = spec["type"] in ("integer", "decimal")
                if value is not None:  # one choice's count (a number question has none)
                    counted = not numeric and value in _values(spec, answer)
                else:  # answered at all: what "answered" and "sum" count
                    counted = _number(answer) is not None if numeric else bool(_values(spec, answer))
                if not counted:
                    return
                items.append({"uuid": s["uuid"], "household_id": s.get("household_id"),
                              "head_name": heads.get(s.get("household_id"), ""), "village_id": vid,
                              "cadre_id": s.get("cadre_id"), "day": day_of(s), "form": s.get("form"),
                              "form_version": s.get("form_version"),
                              "value": answer, "text": present.text(spec, answer)})
            submissions.scan(vid, on_answer, lambda s, keep=keep: keep(s) and in_range(day_of(s)), db)
    items.sort(key=lambda i: (i.get("day") or "", i.get("household_id") or "", i.get("uuid") or i.get("id") or ""),
               reverse=kind != "pv_capacity")
    return items


def default_range(today):
    return preset_range("this_month", today)


def iso(d):
    return d.isoformat() if isinstance(d, date) else d
