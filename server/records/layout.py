"""Where the domain's records live in the store, beyond "core" and the villages: the layout every
store is opened with (the store itself names no record). The owners name their tables; this module
gathers what the store must know of them:

- submissions are found by uuid alone (a phone re-sending a visit, a review, an attachment), so
  their key is unique server-wide and the store keeps an index of uuid -> village
  (records/submissions.py);
- audit entries are partitioned by day ("audit.20260501", the file audit/20260501.json), so the
  log grows in small files instead of in core (records/audit.py).

The app factory passes LAYOUT to the store seam (store.init_app); tests and benches that open a
store themselves pass it too. Changing it changes where existing data is looked for: it is part of
the data folder's and the database's format.
"""

from server.records import audit, households, submissions, users, villages
from server.store import CORE, StoreLayout

LAYOUT = StoreLayout(global_keys={submissions.TABLE: submissions.KEY}, families=(audit.FAMILY,))


def tally(db, partition):
    """What one partition holds, in the numbers a restore reports of a backup: core its villages
    and accounts (and how many are administrators: a backup without one is refused), a village its
    households and visits; a family's day (the audit log) nothing counted."""
    if partition == CORE:
        people = users.list_all(db)
        return {"villages": len(villages.list_all(db)), "households": 0, "submissions": 0,
                "users": len(people), "admins": sum(u.get("role") == "admin" for u in people)}
    if LAYOUT.family_of(partition):
        return {}
    return {"households": households.count_in_village(partition, db),
            "submissions": submissions.count_in_village(partition, db)}
