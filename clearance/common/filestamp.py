"""Change detection for files re-read while running (pods file, token file)."""
from __future__ import annotations

import os

FileStamp = tuple[int, int, int]  # (mtime_ns, size, inode)


def stamp(path: str | os.PathLike[str]) -> FileStamp | None:
    """What changes when the file is rewritten or replaced (a new inode when a symlink is swapped,
    as for mounted Secrets); None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino
