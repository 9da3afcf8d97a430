"""Record owners: one module per kind of record (audit, users, villages, households, submissions,
reviews). Each creates, changes and answers queries about its records; it is the one place a
record's `version` is bumped and its audit entry written, and, with store.py, the only code that
names a table or a partition. Views, the CLI, roster import, demo data and printing call these
functions and never the store (ODK Central's lib/model/query/* is the model).

Functions take `db`: the store for reads (default: the app's store), or the write transaction
`tx` inside `store.write(...)`, so one owner's change can be part of another's write.
"""
