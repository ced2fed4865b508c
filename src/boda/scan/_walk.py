"""Finding the image files under a folder."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from boda.io import SUPPORTED_EXTENSIONS

__all__ = ["FoundFile", "walk_images"]


@dataclasses.dataclass(frozen=True)
class FoundFile:
    """A candidate file: absolute path, path relative to the root (bytes), and stat results.

    ``error`` is set when the file (or folder) could not even be stat'ed or
    listed; the scan records it as failed without trying to decode it.
    """

    path: str
    relpath: bytes
    size: int
    mtime_ns: int
    error: str | None = None


def _relpath(path: str, root: str) -> bytes:
    rel = os.path.relpath(os.fsencode(path), os.fsencode(root))
    return rel.replace(os.sep.encode(), b"/")


def walk_images(root: str | Path, *, include_hidden: bool = False) -> Iterator[FoundFile]:
    """Yield every file with a supported image extension under ``root``, recursively.

    Folder symlinks are not followed (so symlink loops cannot trap the walk);
    file symlinks are read.  Folders whose names start with ``.`` (``.boda``,
    ``.git``, ``.thumbnails``...) are skipped unless ``include_hidden``.  A
    folder that cannot be listed, or a file that cannot be stat'ed (dangling
    link, link loop, permission), is yielded with ``error`` set.
    """
    root = os.fspath(root)
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        for exc in errors:
            where = exc.filename or dirpath
            yield FoundFile(
                os.fspath(where), _relpath(os.fspath(where), root), 0, 0,
                f"cannot list folder: {exc.strerror or exc}",
            )
        errors.clear()
        dirnames[:] = sorted(d for d in dirnames if include_hidden or not d.startswith("."))
        for name in sorted(filenames):
            if os.path.splitext(name)[1].lower() not in SUPPORTED_EXTENSIONS:
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if exc.errno == 40:  # ELOOP
                    reason = "symbolic link loop"
                elif os.path.islink(path):
                    reason = f"broken symbolic link ({reason})"
                yield FoundFile(path, _relpath(path, root), 0, 0, reason)
                continue
            if not stat.S_ISREG(st.st_mode):
                # FIFOs and devices would block or stream forever when opened.
                yield FoundFile(path, _relpath(path, root), 0, 0, "not a regular file")
                continue
            yield FoundFile(path, _relpath(path, root), st.st_size, st.st_mtime_ns)
    for exc in errors:  # the root itself could not be listed
        yield FoundFile(root, b".", 0, 0, f"cannot list folder: {exc.strerror or exc}")
