"""Files written so that a reader or a crash sees the old file or the new one, never half: a temp
file beside the target, fsync, rename, fsync of the folder. The one way this server writes a file
that must survive or must never be seen half-written (snapshots, the key index, form archive,
attachments, backups, rendered PDFs and ZIPs, thumbnails)."""

import os
import tempfile
from contextlib import contextmanager

# Files get the mode open() would give them (0666 less the umask), not mkstemp's 0600: who may read
# the data folder is the deployment's choice (umask, systemd's UMask=), the same for every file.
_UMASK = os.umask(0)
os.umask(_UMASK)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path, *, durable=True):
    """A file object whose content appears at `path` only when the block ends without an error:
    for files written as a stream (a tar, a merged PDF, a ZIP, a JPEG). durable=False skips the
    fsyncs, for caches that can be rebuilt: a process crash still never shows a torn file, but
    after a power cut one can be empty, so whoever reads such a cache rebuilds what it cannot read."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_dir(folder)


def write_atomic(path, data, *, durable=True):
    """Write bytes (or text, as UTF-8) to `path` atomically."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_file(path, durable=durable) as f:
        f.write(data)
