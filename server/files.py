"""Files written so that a reader or a crash sees the old file or the new one, never half: a temp
file beside the target, fsync, rename, fsync of the folder. The one way this server writes a file
that must survive (snapshots, form archive, attachments, rendered PDFs)."""

import os
import tempfile


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data, *, durable=True):
    """Write bytes (or text, as UTF-8) to `path` atomically. durable=False skips the fsyncs, for
    caches that can be rebuilt (a torn cache file is still never seen: the rename is atomic)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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
