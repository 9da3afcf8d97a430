"""The one atomic file write: all or nothing, and files readable as the deployment's umask says."""

import os
import stat

import pytest

from server.core.files import atomic_file, write_atomic


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_file_appears_whole_with_the_mode_open_would_give_it(tmp_path):
    target = tmp_path / "sub" / "snapshot.json"
    write_atomic(str(target), "数据")
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    assert target.read_text(encoding="utf-8") == "数据"
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~_umask()


def test_a_stream_that_fails_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "backup.tar.gz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(str(target)) as f:
            f.write(b"half of the new")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.tar.gz"]
