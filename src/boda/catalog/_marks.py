"""A person's culling decisions for a scanned folder: pick or reject, and 1-5 stars.

Design
------
- Marks are the user's own work, not something boda measured, so they live in a
  file of their own beside the catalog (``DIR/.boda/catalog.marks.db`` for
  ``DIR/.boda/catalog.db``): a catalog may be moved away and rebuilt by a new
  scan ("not a usable boda catalog ... scan again"), a marks file is never
  touched by a scan, and ``boda serve`` can write marks while the catalog stays
  open read-only.
- A mark is keyed by the file's path relative to the scanned folder, as exact
  bytes (names that are not UTF-8 round-trip), like the catalog's records, and
  holds the pixel hash, size and modification time the file had when it was
  marked: a mark applies only while the file at that path still holds those
  pixels, or is still that very file (same size and modification time: its
  pixel hash changes when it is analysed at another ``--max-side`` or by another
  analysis version, and the mark must not be lost then) (:meth:`Mark.applies_to`),
  so a new photo at an old path (a card whose numbering restarted) is never
  taken for the one that was picked or rejected there.  A file edited in place
  is undecided again.  A
  file renamed or moved inside the folder keeps its mark when the next scan
  recognises the move (:meth:`Marks.move`); a file that is removed keeps it,
  unseen (every selection goes through the catalog's records).
- The decision and the rating are independent, as in Lightroom's flags and
  stars: a rejected frame may keep its stars.  A row whose decision and rating
  are both cleared is deleted.
- SQLite in WAL mode with one transaction per call: a browser marking frames
  while ``boda report`` reads them never blocks either.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from boda.catalog._catalog import connect_readonly, disk_full, resolve_catalog_path, use_wal
from boda.errors import CatalogError, InvalidParameterError

__all__ = ["DECISIONS", "Mark", "Marks", "marks_path", "moves_by_pixels"]

#: The decisions a file can carry (``None``: undecided).
DECISIONS = ("pick", "reject")

#: 2: the file's size and mtime_ns kept with each mark (version 1 files are upgraded
#: when opened for writing; read as they are, their marks match by pixel hash only).
_SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS marks_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS marks (
    relpath BLOB PRIMARY KEY,
    decision TEXT CHECK (decision IN ('pick', 'reject')),
    rating INTEGER CHECK (rating BETWEEN 1 AND 5),
    updated REAL NOT NULL,
    pixel_hash TEXT,
    size INTEGER,
    mtime_ns INTEGER
);
"""

#: The columns of a mark, in :class:`Mark`'s order after ``relpath``.
_MARK_COLUMNS = "decision, rating, updated, pixel_hash, size, mtime_ns"

#: SQL true when the mark ``m`` belongs to the file of the catalog's ``images`` row at its
#: path (the one rule of :meth:`Mark.applies_to`, for the joins that select marks).
MARK_APPLIES = (
    "((m.pixel_hash IS NULL AND (m.size IS NULL OR m.mtime_ns IS NULL)) "
    "OR m.pixel_hash = images.pixel_hash OR (m.size IS NOT NULL "
    "AND m.mtime_ns IS NOT NULL AND m.size = images.size AND m.mtime_ns = images.mtime_ns))"
)


class Mark(NamedTuple):
    """One file's mark: ``decision`` (``"pick"``, ``"reject"`` or None), ``rating``
    (1-5 stars, or None), when it last changed (seconds since the epoch), and the
    pixel hash, size and ``mtime_ns`` of the file it was given to (size and time None:
    not known, a mark of a version 1 marks file; all three None: any file at the
    path).  A mark with no pixel hash but a size and time was given to an unreadable
    file: it applies to that very file only."""

    decision: str | None
    rating: int | None
    updated: float
    pixel_hash: str | None = None
    size: int | None = None
    mtime_ns: int | None = None

    def applies_to(
        self, pixel_hash: str | None, size: int | None = None, mtime_ns: int | None = None
    ) -> bool:
        """Whether this mark belongs to the file at its path that has this pixel hash,
        size and modification time: the same pixels, or the very file it was given to
        (analysed since at another resolution, which changes its pixel hash)."""
        known = self.size is not None and self.mtime_ns is not None
        if self.pixel_hash is None and not known:
            return True  # given to a file the catalog did not know: any file at the path
        if self.pixel_hash is not None and self.pixel_hash == pixel_hash:
            return True
        # an unreadable file's mark (no pixels) belongs to that very file only: a good
        # copy put at its path later is another file, not the one rejected there
        return known and (self.size, self.mtime_ns) == (size, mtime_ns)


def moves_by_pixels(
    marks: dict[bytes, Mark],
    displaced: Iterable[bytes],
    analysed: dict[bytes, tuple[str | None, int | None, int | None]],
) -> list[tuple[bytes, bytes]]:
    """The ``(old, new)`` moves of marks that lost their file in one scan to the file
    that now holds its pixels: a photo renamed *and* edited (metadata written by
    another program changes its size and time, so the scan cannot pair the paths
    by them), or two names swapped.

    ``displaced``: the paths whose file went in this scan or was analysed again
    (its mark then no longer applies); ``analysed``: what the files analysed in
    this scan hold now (pixel hash, size, time, by path).  A mark moves only
    when its pixel hash is unique among the displaced marks and the file it
    names is the only one of the analysed files with that hash that no mark
    applies to; a mark already at the new path is replaced only when it moves
    on itself (a swap), so no mark is lost.  A mark of a file gone in an
    earlier scan never moves: a photo imported again long after it was
    rejected and deleted is not rejected in its new place.
    """

    def holds_own(path: bytes) -> bool:
        mark, now = marks.get(path), analysed.get(path)
        return mark is not None and now is not None and mark.applies_to(*now)

    old_by_hash: dict[str, list[bytes]] = {}
    for path in dict.fromkeys(displaced):
        mark = marks.get(path)
        if mark is not None and mark.pixel_hash is not None and not holds_own(path):
            old_by_hash.setdefault(mark.pixel_hash, []).append(path)
    new_by_hash: dict[str, list[bytes]] = {}
    for path, (pixel_hash, _size, _mtime) in analysed.items():
        if pixel_hash is not None and pixel_hash in old_by_hash and not holds_own(path):
            new_by_hash.setdefault(pixel_hash, []).append(path)
    pairs = [
        (olds[0], news[0])
        for pixel_hash, olds in old_by_hash.items()
        if len(olds) == 1 and len(news := new_by_hash.get(pixel_hash, ())) == 1
        and olds[0] != news[0]
    ]
    # A mark at the new path must move on, or the move is dropped; a dropped move
    # keeps its old mark in place, which may drop the move onto that path in turn.
    old_of = {new: old for old, new in pairs}
    leaving = set(old_of.values())
    blocked = [new for new in old_of if new in marks and new not in leaving]
    while blocked:
        stays = old_of.pop(blocked.pop())
        leaving.discard(stays)
        if stays in old_of:  # the move onto it would overwrite its mark
            blocked.append(stays)
    return [(old, new) for old, new in pairs if new in old_of]


def marks_path(catalog_path: str | Path) -> Path:
    """The marks file of a catalog: ``catalog.marks.db`` beside ``catalog.db``.

    ``catalog_path`` is the catalog file or the scanned folder holding it (as
    :func:`resolve_catalog_path` takes it).

    Examples
    --------
    >>> marks_path("photos/.boda/catalog.db").as_posix()
    'photos/.boda/catalog.marks.db'
    >>> marks_path("/tmp/shoot.db").as_posix()
    '/tmp/shoot.marks.db'
    """
    catalog = resolve_catalog_path(catalog_path)
    return catalog.with_name(catalog.stem + ".marks.db")


def check_decision(decision: object) -> str | None:
    """``decision`` if it is one of :data:`DECISIONS` or None; else a clear error."""
    if decision is None or decision in DECISIONS:
        return decision  # type: ignore[return-value]
    raise InvalidParameterError(
        f"decision must be 'pick', 'reject' or None (undecided); got {decision!r}"
    )


def check_rating(rating: object) -> int | None:
    """``rating`` as stars 1-5, or None for 0 / None (no rating); else a clear error."""
    if rating is None:
        return None
    if isinstance(rating, bool) or not isinstance(rating, int) or not 0 <= rating <= 5:
        raise InvalidParameterError(
            f"rating must be a whole number of stars from 0 (none) to 5; got {rating!r}"
        )
    return rating or None


class Marks:
    """The marks of one catalog's files.  Use as a context manager or call :meth:`close`.

    Parameters
    ----------
    catalog_path : str or Path
        The catalog file, or the scanned folder holding it; the marks live in
        :func:`marks_path` of it.
    readonly : bool
        Only read: a missing marks file reads as no marks, and nothing is created.

    Raises
    ------
    CatalogError
        The marks file cannot be made or written (a read-only folder: the
        message says so), is not a marks file, or was made by a newer boda.

    Examples
    --------
    >>> with Marks("photos") as marks:                         # doctest: +SKIP
    ...     marks.set_decision([b"IMG_0001.jpg"], "pick")
    ...     marks.set_rating([b"IMG_0001.jpg"], 4)
    ...     marks.get(b"IMG_0001.jpg")
    Mark(decision='pick', rating=4, updated=1795...)
    """

    def __init__(self, catalog_path: str | Path, *, readonly: bool = False):
        self.catalog = resolve_catalog_path(catalog_path)
        self.path = marks_path(self.catalog)
        self.readonly = readonly
        self._db: sqlite3.Connection | None = None
        self._select: str | None = None  # see _columns
        if readonly and not self.path.is_file():
            return  # no marks yet: every read answers "none"
        try:
            if readonly:
                self._db = connect_readonly(self.path)  # a read-only share too
                self._db.execute("PRAGMA query_only = ON")
                if not marks_columns(self._db):  # its first write was cut short: no marks
                    self.close()
                    return
            else:
                self._writable_or_raise()
                self._db = sqlite3.connect(self.path, timeout=30)
                use_wal(self._db)  # made at the same moment by another boda: waits its turn
                self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise self._unusable(exc) from None

    def _unusable(self, exc: sqlite3.DatabaseError) -> CatalogError:
        """The error of a marks file that could not be opened.  A full disk or another
        program's lock is no damage: "move it away" would lose every pick and rating."""
        if disk_full(exc, self.path.parent):
            return CatalogError(
                f"cannot open the marks file {str(self.path)!r}: the disk holding it is full "
                f"({exc}); free some space and try again (the marks are kept)"
            )
        if self.readonly and getattr(exc, "sqlite_errorname", "") == "SQLITE_CANTOPEN":
            # a read-only folder: the marks in the -wal file cannot be read without a -shm
            return CatalogError(
                f"cannot read the latest marks of {str(self.path)!r} ({exc}): they are in its "
                "-wal file, which SQLite cannot read in this read-only folder without a -shm "
                "file; make the folder writable, or copy the catalog's folder to a writable "
                "place"
            )
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            return CatalogError(
                f"the marks file {str(self.path)!r} is locked by another program ({exc}): "
                "close the program that has it open (a database browser, a sync tool) and "
                "try again"
            )
        return CatalogError(
            f"{str(self.path)!r} is not a usable boda marks file ({exc}); move it "
            "away (the catalog itself is not affected)"
        )

    def _writable_or_raise(self) -> None:
        folder = self.path.parent
        target = self.path if self.path.exists() else folder
        if not os.access(target, os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
            raise CatalogError(
                f"cannot write the marks file {str(self.path)!r}: "
                f"{'it' if target == self.path else 'its folder'} is read-only; make it "
                "writable, or copy the catalog to a writable place and give that with --catalog"
            )

    def _check_version(self) -> None:
        assert self._db is not None
        row = self._db.execute("SELECT MAX(version) FROM marks_schema").fetchone()
        if row[0] is None:
            if not self.readonly:
                with self._db:
                    self._db.execute("INSERT INTO marks_schema VALUES (?)", (_SCHEMA_VERSION,))
        elif row[0] > _SCHEMA_VERSION:
            raise CatalogError(
                f"the marks file {str(self.path)!r} was made by a newer boda (version "
                f"{row[0]}); upgrade boda"
            )
        elif row[0] < 2 and not self.readonly:
            with self._db:  # version 1: the files' sizes and times unknown (NULL)
                for column in ("size", "mtime_ns"):
                    if column not in marks_columns(self._db):
                        self._db.execute(f"ALTER TABLE marks ADD COLUMN {column} INTEGER")
                self._db.execute("UPDATE marks_schema SET version = ?", (_SCHEMA_VERSION,))

    def _columns(self) -> str:
        """The SELECT list of a mark: a version 1 file read as it is has no sizes and
        times (asked of the file once)."""
        assert self._db is not None
        if self._select is None:
            self._select = (_MARK_COLUMNS if "mtime_ns" in marks_columns(self._db)
                            else "decision, rating, updated, pixel_hash, NULL, NULL")
        return self._select

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def __enter__(self) -> Marks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------
    def all(self) -> dict[bytes, Mark]:
        """Every file's mark, by its path relative to the scanned folder (bytes)."""
        if self._db is None:
            return {}
        rows = self._db.execute(f"SELECT relpath, {self._columns()} FROM marks")
        return {bytes(r[0]): Mark(*r[1:]) for r in rows}

    def get(self, relpath: bytes) -> Mark | None:
        """One file's mark, or None when it has none."""
        if self._db is None:
            return None
        row = self._db.execute(
            f"SELECT {self._columns()} FROM marks WHERE relpath = ?", (relpath,)
        ).fetchone()
        return None if row is None else Mark(*row)

    def counts(self) -> dict[str, int]:
        """How many marks are picks, rejects and ratings (1 star or more), those of files
        gone since included (see :meth:`boda.catalog.Catalog.mark_rows` for the marks of
        the catalog's files)."""
        if self._db is None:
            return {"pick": 0, "reject": 0, "rated": 0}
        pick, reject, rated = self._db.execute(
            "SELECT COUNT(decision = 'pick' OR NULL), COUNT(decision = 'reject' OR NULL), "
            "COUNT(rating) FROM marks"
        ).fetchone()
        return {"pick": pick, "reject": reject, "rated": rated}

    # -- writing ---------------------------------------------------------------------
    def set_decision(self, relpaths: Iterable[bytes], decision: str | None) -> int:
        """Pick (``"pick"``), reject (``"reject"``) or clear (None) the decision of
        these files, keeping their ratings; returns how many marks changed."""
        decision = check_decision(decision)
        return self._write(relpaths, "decision", decision)

    def set_rating(self, relpaths: Iterable[bytes], rating: int | None) -> int:
        """Give these files 1-5 stars, or clear their rating (0 or None), keeping
        their decisions; returns how many marks changed."""
        return self._write(relpaths, "rating", check_rating(rating))

    def move(
        self,
        pairs: Iterable[tuple[bytes, bytes]],
        *,
        expected: dict[bytes, Mark | None] | None = None,
    ) -> int:
        """Carry marks to new paths, ``(old, new)`` for each file renamed or moved (a
        scan that recognises the move calls it); returns how many marks moved.

        A file without a mark moves nothing; a mark already at ``new`` (left by a
        file removed from that path earlier) is replaced by ``old``'s.  All the
        marks are read before any is written, so a swap of two names swaps them.
        ``expected``: the marks (None: none) the moves were chosen from, by path; when
        one of them has changed since (a person marking in ``boda serve`` meanwhile),
        nothing moves, rather than a new mark be overwritten.
        """
        if self.readonly or self._db is None:
            raise CatalogError(f"the marks file {str(self.path)!r} was opened read-only")
        pairs = [(bytes(old), bytes(new)) for old, new in pairs]
        try:
            with self._db:  # one transaction: all of them or none
                # reads and writes as one: another program's mark waits, or came before
                self._db.execute("BEGIN IMMEDIATE")
                if expected and any(self.get(p) != m for p, m in expected.items()):
                    return 0
                moving = []
                for old, new in pairs:
                    row = self._db.execute(
                        f"SELECT {_MARK_COLUMNS} FROM marks WHERE relpath = ?", (old,)
                    ).fetchone()
                    if row is not None:
                        moving.append((new, *row))
                self._db.executemany("DELETE FROM marks WHERE relpath = ?",
                                     [(old,) for old, _ in pairs])
                self._db.executemany(
                    f"INSERT OR REPLACE INTO marks (relpath, {_MARK_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", moving
                )
        except sqlite3.OperationalError as exc:
            raise CatalogError(
                f"cannot write the marks file {str(self.path)!r} ({exc}); nothing was changed"
            ) from None
        return len(moving)

    def _write(self, relpaths: Iterable[bytes], column: str, value: object) -> int:
        if self.readonly or self._db is None:
            raise CatalogError(f"the marks file {str(self.path)!r} was opened read-only")
        paths = sorted({bytes(p) for p in relpaths})
        files = self._file_identities(paths)
        now = time.time()
        changed = 0
        try:
            with self._db:  # one transaction: all of them or none
                for relpath in paths:
                    pixel_hash, size, mtime_ns = files.get(relpath, (None, None, None))
                    old = self._db.execute(
                        f"SELECT {_MARK_COLUMNS} FROM marks WHERE relpath = ?", (relpath,)
                    ).fetchone()
                    if old is not None and not Mark(*old).applies_to(pixel_hash, size, mtime_ns):
                        # a mark left by another file at this path (gone, or replaced) goes
                        self._db.execute("DELETE FROM marks WHERE relpath = ?", (relpath,))
                    elif old is not None:  # the file's mark: it now says the file as it is
                        self._db.execute(
                            "UPDATE marks SET pixel_hash = ?, size = COALESCE(?, size), "
                            "mtime_ns = COALESCE(?, mtime_ns) WHERE relpath = ?",
                            (pixel_hash, size, mtime_ns, relpath),
                        )
                    if value is None:  # clearing makes no row for a file without one
                        sql = (f"UPDATE marks SET {column} = NULL, updated = ? "
                               f"WHERE relpath = ? AND {column} IS NOT NULL")
                        args: tuple = (now, relpath)
                    else:
                        sql = (
                            f"INSERT INTO marks (relpath, {column}, updated, pixel_hash, size, "
                            "mtime_ns) VALUES (?, ?, ?, ?, ?, ?) "
                            f"ON CONFLICT(relpath) DO UPDATE SET {column} = excluded.{column}, "
                            "updated = excluded.updated "
                            f"WHERE {column} IS NOT excluded.{column}"
                        )
                        args = (relpath, value, now, pixel_hash, size, mtime_ns)
                    changed += self._db.execute(sql, args).rowcount > 0
                self._db.execute("DELETE FROM marks WHERE decision IS NULL AND rating IS NULL")
        except sqlite3.OperationalError as exc:
            raise CatalogError(
                f"cannot write the marks file {str(self.path)!r} ({exc}); nothing was changed"
            ) from None
        return changed

    def _file_identities(
        self, relpaths: list[bytes]
    ) -> dict[bytes, tuple[str | None, int | None, int | None]]:
        """What the catalog holds of these files for their marks to belong to
        (:meth:`boda.catalog.Catalog.file_identities`); files it does not hold are
        left out.  A file waiting to be analysed again (a scan at another
        ``--max-side``, or a newer boda's, running or stopped) has no stored time: its
        size and time are read from the disk, else its mark would keep only the pixel
        hash that the new analysis changes, and be lost when the file is analysed."""
        from boda.catalog._catalog import Catalog

        if not self.catalog.is_file():
            return {}
        with Catalog(self.catalog, readonly=True) as catalog:
            files = catalog.file_identities(relpaths)
            root = catalog.get_setting("root")
        if isinstance(root, str):
            for relpath, (pixel_hash, size, mtime_ns) in files.items():
                if size is None or mtime_ns is None:
                    files[relpath] = (pixel_hash, *_on_disk(os.path.join(os.fsencode(root),
                                                                         relpath)))
        return files


#: SQLite's integers are signed 64-bit (nanoseconds up to the year 2262).
_MTIME_LIMIT_NS = 2**63 - 1


def _on_disk(path: bytes) -> tuple[int | None, int | None]:
    """The size and modification time of the file at ``path``, as a scan stores them
    (a time past 2262 clamped), or ``(None, None)`` when it cannot be read."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None, None
    return st.st_size, max(-_MTIME_LIMIT_NS, min(st.st_mtime_ns, _MTIME_LIMIT_NS))


def marks_columns(db: sqlite3.Connection, schema: str = "main") -> set[str]:
    """The column names of the ``marks`` table of ``schema`` in ``db``; none when it has
    no such table: a marks file whose first write was cut short (``boda mark`` or
    ``boda serve`` killed as they made it, a disk that was full), which holds no marks
    yet (the next mark fills it in)."""
    return {row[1] for row in db.execute(f"PRAGMA {schema}.table_info(marks)")}
