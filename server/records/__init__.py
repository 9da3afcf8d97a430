"""Record owners: one module per kind of record (audit, users, villages, households, submissions,
reviews). Each creates, changes and answers queries about its records; it is the one place a
record's `version` is bumped and its audit entry written, and, with store.py, the only code that
names a table or a partition. Views, the CLI, roster import, demo data and printing call these
functions and never the store (ODK Central's lib/model/query/* is the model).

Functions take `db`: the store for reads (default: the app's store), or the write transaction
`tx` inside `store.write(...)`, so one owner's change can be part of another's write.
"""


def scan_partition(db, partition, table, project, keep=None):
    """[project(doc)] for the documents of one table of a partition that keep(doc) accepts, without
    copying them: the store copies what a search returns, so the condition records what it needs
    and matches nothing. Both functions see the stored document and must only read it, returning
    plain values (a queue or an export of 100,000 visits then costs their keys, not their copies)."""
    out = []

    def cond(doc):
        if keep is None or keep(doc):
            out.append(project(doc))
        return False

    db.search(partition, table, cond)
    return out
