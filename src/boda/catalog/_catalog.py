"""SQLite catalog of a scanned folder.

Design
------
- One file, default ``DIR/.boda/catalog.db``, in WAL mode so a reader (``boda
  report``, ``boda serve``) never blocks the scan and a killed scan leaves a
  consistent database: every batch of results is one transaction, so ``kill
  -9`` loses at most the batch in flight.
- Paths are stored relative to the scanned root as **bytes** (``os.fsencode``)
  so file names that are not valid UTF-8 round-trip exactly; a display
  string (undecodable bytes as ``\\xNN`` escapes) is stored beside them.
- ``schema_version`` holds one row; opening a catalog written by a newer boda
  raises :class:`boda.errors.CatalogError` instead of guessing, and one of an
  older schema is migrated when opened for writing (read as it is otherwise).
  Version 2 added ``images.link_to`` and the status ``'link'`` (a file symlink
  to another file of the scanned folder).
- Scores are a JSON object per image (measures come and go between versions
  without migrations); flags are derived from scores and thresholds at the end
  of each scan and stored in their own table, replaced as a whole.  A scan
  stopped before it derived them marks them stale (:meth:`Catalog.flags_stale`).
- An index on ``(display_path, relpath)`` gives the path order of the readers
  without sorting the whole table first, and one on ``status`` finds the few failed
  files and links without reading every row (both created when a catalog is opened
  for writing; a catalog without them is read the same way, only slower).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from boda.errors import CatalogError

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "FileState",
    "FlagInput",
    "ImageRecord",
    "default_catalog_path",
    "display_path",
    "resolve_catalog_path",
]

SCHEMA_VERSION = 2

# A stored mtime no file has: marks a row whose scores must be recomputed.
_STALE_MTIME = -1

#: The images table (schema version 2); ``{name}`` is filled in by the migration.
_IMAGES_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
    id INTEGER PRIMARY KEY,
    relpath BLOB NOT NULL UNIQUE,
    display_path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error', 'link')),
    error TEXT,
    width INTEGER,
    height INTEGER,
    format TEXT,
    pixel_hash TEXT,
    phash INTEGER,
    scores TEXT NOT NULL DEFAULT '{{}}',
    extra TEXT NOT NULL DEFAULT '{{}}',
    scanned_at REAL NOT NULL,
    link_to BLOB
);
"""

#: The columns of schema version 1's images table (all kept by version 2).
_V1_COLUMNS = (
    "id, relpath, display_path, size, mtime_ns, status, error, width, height, format, "
    "pixel_hash, phash, scores, extra, scanned_at"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
""" + _IMAGES_TABLE.format(name="images") + """CREATE TABLE IF NOT EXISTS thumbnails (
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    jpeg BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS flags (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    score REAL,
    group_id INTEGER,
    PRIMARY KEY (image_id, name)
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS flags_by_name ON flags(name, score);
"""

#: Made after a migration too (a migrated images table is a new table).  By status:
#: the failed files and the links are few, and a mark set in ``boda serve`` (which looks
#: for links), the failures view and the counts of every summary poll read them; without
#: it each read every row (0.1 s per click at 100 000 records, 1 s at a million).
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS images_by_path ON images(display_path, relpath)",
    "CREATE INDEX IF NOT EXISTS images_by_status ON images(status)",
)

#: The order of every reader: the display path, then the exact bytes.
_PATH_ORDER = "ORDER BY display_path, relpath"

#: :data:`_PATH_ORDER` of the stored columns, for the queries that give a column's
#: name to a typed form of it (:func:`_typed`): the order still uses the index.
_RECORD_ORDER = "ORDER BY images.display_path, images.relpath"

#: How long (seconds) opening or reading the catalog waits for a lock another
#: connection holds (a scan's write, a database browser's open transaction).
_BUSY_TIMEOUT = 30.0


def _typed(column: str, kind: str) -> str:
    """SQL giving ``column`` only when its cell holds a value of ``kind``, else NULL.

    SQLite stores any type in any column, and a catalog is a file anyone could
    have edited (``UPDATE images SET relpath = 'new.png'`` stores text, not
    bytes): the readers take a cell of the wrong type as missing, as they take
    scores of the wrong type, instead of failing on it far from here.
    """
    if kind == "blob":  # paths: text is taken as its UTF-8 bytes
        return f"CAST({column} AS BLOB) AS {column}"
    if kind == "int32":  # pixel sizes, which the Parquet table holds as int32
        return (f"CASE WHEN typeof({column}) = 'integer' AND {column} BETWEEN 0 AND 2147483647 "
                f"THEN {column} END AS {column}")
    if kind == "number":
        return f"CASE WHEN typeof({column}) IN ('integer', 'real') THEN {column} END AS {column}"
    return f"CASE WHEN typeof({column}) = '{kind}' THEN {column} END AS {column}"


#: The columns of the images table the record readers take, each of its type.
_RECORD_COLUMNS = {
    "id": "id", "relpath": _typed("relpath", "blob"), "status": "status",
    "error": _typed("error", "text"), "size": _typed("size", "integer"),
    "width": _typed("width", "int32"), "height": _typed("height", "int32"),
    "format": _typed("format", "text"), "pixel_hash": _typed("pixel_hash", "text"),
    "phash": _typed("phash", "integer"), "scores": "scores", "extra": "extra",
    "mtime_ns": "mtime_ns", "link_to": _typed("link_to", "blob"),
}  # fmt: skip

#: The flags table's columns, each of its type (a group id is a whole number).
_FLAG_COLUMNS = f"image_id, name, {_typed('score', 'number')}, {_typed('group_id', 'integer')}"

#: Rows of the flags table written per ``executemany`` (with a progress call between).
_FLAG_BATCH = 50_000

#: The setting that says the stored flags predate the catalog's records.
_STALE_KEY = "flags_stale"

#: The setting that lists the near-duplicate members matched as mirror images.
_MIRRORED_KEY = "near_duplicate_mirrored"

#: The setting that says whether the last scan matched mirror images (``--mirrored``).
MIRRORED_SCAN_KEY = "mirrored"

#: Setting counting the scans that changed what the catalog says: records added,
#: analysed again, moved or removed, or flags decided by other thresholds.  Every
#: scan writes the catalog's file; this tells a page whether what it shows is out of date.
CONTENT_VERSION_KEY = "content_version"


def default_catalog_path(root: str | Path) -> Path:
    """Where ``boda scan ROOT`` keeps its catalog: ``ROOT/.boda/catalog.db``."""
    return Path(root) / ".boda" / "catalog.db"


def resolve_catalog_path(path: str | Path) -> Path:
    """The catalog file meant by ``path``: a catalog file, or a scanned folder.

    A folder stands for the catalog ``boda scan`` keeps in it,
    ``FOLDER/.boda/catalog.db`` (``FOLDER/catalog.db`` for the ``.boda``
    folder itself); anything else is returned as it is.  A path ending in a
    separator (``"shoots/"``) says "a folder": one that is no folder yet is
    refused, not made a catalog file of that name.

    Raises
    ------
    CatalogError
        ``path`` is a folder with no catalog in it (the message names the file
        looked for), ends in a separator but is no folder, or is the default
        catalog's place, ``DIR/.boda/catalog.db``, taken by a folder.

    Examples
    --------
    >>> resolve_catalog_path("photos/.boda/catalog.db")       # doctest: +SKIP
    PosixPath('photos/.boda/catalog.db')
    >>> resolve_catalog_path("photos")                        # doctest: +SKIP
    PosixPath('photos/.boda/catalog.db')
    """
    text = os.fspath(path)
    path = Path(path)
    if not path.is_dir():
        if text.endswith(_SEPARATORS):  # Path("shoots/") is Path("shoots")
            raise CatalogError(folder_without_catalog(text))
        return path
    inside = path / "catalog.db" if path.name == ".boda" else default_catalog_path(path)
    if inside.is_file():
        return inside
    if path.name == "catalog.db" and path.parent.name == ".boda":
        raise CatalogError(
            f"{str(path)!r} is a folder, in the place of the catalog file of "
            f"{str(path.parent.parent)!r}; move that folder away and scan again, or give "
            "another --catalog"
        )
    raise CatalogError(
        f"no catalog at {str(inside)!r} ({str(path)!r} is a folder, and no scan has left a "
        f"catalog in it); run 'boda scan {path}' first, or give the catalog file (a new "
        f"catalog needs a file path, such as {str(path / 'catalog.db')!r})"
    )


#: What ends a path that names a folder: ``/`` (and ``\\`` on Windows).
_SEPARATORS = tuple({"/", os.sep, os.altsep or "/"})


def folder_without_catalog(text: str) -> str:
    """The refusal of ``text``, a catalog path ending in a separator that is no folder
    (made as it was given, ``--catalog shoots/`` became a catalog file ``shoots``)."""
    path = Path(text)
    return (
        f"{text!r} ends in {text[-1]!r}, a folder, but {str(path)!r} is no folder; a new "
        f"catalog needs a file path, such as {str(path / 'catalog.db')!r}"
    )


def scan_running(catalog_path: str | Path) -> bool:
    """Whether a ``boda scan`` holds the lock of the catalog at ``catalog_path`` now
    (``CATALOG.lock``, a POSIX record lock the scan holds while it runs: a
    non-blocking attempt to take a shared lock on it fails).  The file is opened
    for reading only, never made; False where there is no such lock (not POSIX)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the scan takes no lock either
        return False
    path = Path(catalog_path)
    try:
        lock = open(path.with_name(path.name + ".lock"), "rb")  # noqa: SIM115
    except OSError:  # no lock file: no scan has run since it exists
        return False
    with lock:
        try:
            fcntl.lockf(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held by the scan
            return True
        fcntl.lockf(lock, fcntl.LOCK_UN)
        return False


def display_path(relpath: bytes | str) -> str:
    """The readable form of a stored path: UTF-8, undecodable bytes as ``\\xNN``.

    A ``str`` (a name from the file system or the command line, where such bytes
    are surrogate escapes) is taken as its ``os.fsencode`` bytes.

    Two names that differ only in bytes that are not UTF-8 keep different
    display forms (``b"a\\xff.png"`` is ``"a\\\\xff.png"``); the exact bytes are
    :attr:`ImageRecord.relpath` (``path_bytes_hex`` in the exports).

    >>> display_path(b"caf\\xe9.png")
    'caf\\\\xe9.png'
    """
    if isinstance(relpath, str):
        relpath = os.fsencode(relpath)
    return relpath.decode("utf-8", errors="backslashreplace")


@dataclasses.dataclass(frozen=True)
class FileState:
    """What the catalog knows of a file, to decide whether to re-analyse it."""

    id: int
    size: int
    mtime_ns: int
    status: str


class FlagInput(NamedTuple):
    """What deriving flags needs of a record (:meth:`Catalog.flag_inputs`)."""

    id: int
    relpath: bytes
    status: str
    error: str | None
    scores: dict[str, float]
    pixel_hash: str | None
    phash: int | None
    width: int | None = None
    height: int | None = None
    #: The pHash of the left-right mirror image (``extra["phash_mirrored"]``), read
    #: only by ``flag_inputs(mirrored=True)``; None when the record has none.
    phash_mirrored: int | None = None


@dataclasses.dataclass
class ImageRecord:
    """One analysed (or failed) file, as stored in the catalog.

    ``relpath`` is the path relative to the scanned root as bytes; ``path`` is
    its display form.  ``status`` is ``"ok"``, ``"error"`` (``error`` says
    why) or ``"link"``: a file symlink to another file of the scanned folder,
    ``link_to`` (relative path, bytes), which is analysed under its own name
    only.  ``scores`` maps measure names to floats; ``extra`` holds
    non-scalar results (e.g. dominant colours).  ``flags`` maps flag names to
    ``(score, group_id)`` and is filled when read back from the catalog, and so is
    ``mirrored``: True for a ``near_duplicate`` member whose nearest match in its
    group is a left-right mirror image of it (a scan with ``mirrored``).
    """

    relpath: bytes
    size: int
    mtime_ns: int
    status: str
    error: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    pixel_hash: str | None = None
    phash: int | None = None
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    thumbnail: bytes | None = None
    id: int | None = None
    flags: dict[str, tuple[float | None, int | None]] = dataclasses.field(default_factory=dict)
    link_to: bytes | None = None
    mirrored: bool = False

    @property
    def path(self) -> str:
        """Display form of the relative path (see :func:`display_path`)."""
        return display_path(self.relpath)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the record (no thumbnail bytes).

        ``path_bytes_hex`` is None for names that are valid UTF-8 (``path`` is
        then exact), else the hex of the name's bytes (``bytes.fromhex`` gives
        them back).  ``link_to`` is the display path of a link's target.
        """
        return _record_dict(
            self.relpath, self.status, self.link_to, self.error, self.size, self.width,
            self.height, self.format, self.flags, self.scores, self.extra, self.pixel_hash,
            self.phash, self.mirrored,
        )


def _record_dict(
    relpath: bytes,
    status: str,
    link_to: bytes | None,
    error: str | None,
    size: int,
    width: int | None,
    height: int | None,
    image_format: str | None,
    flags: dict[str, tuple[float | None, int | None]],
    scores: dict[str, float],
    extra: dict[str, Any],
    pixel_hash: str | None,
    phash: int | None,
    mirrored: bool = False,
) -> dict[str, Any]:
    """:meth:`ImageRecord.to_dict` from the record's fields (``phash`` unsigned).

    ``mirrored``: whether the record is a near-duplicate member whose nearest match
    is a mirror image of it (:meth:`Catalog.mirrored_ids`); True only with the
    ``near_duplicate`` flag."""
    try:
        path, path_hex = relpath.decode("utf-8"), None
    except UnicodeDecodeError:
        path, path_hex = display_path(relpath), relpath.hex()
    if flags:
        ordered = sorted(flags.items())
        names = [name for name, _ in ordered]
        flag_scores = {name: score for name, (score, _) in ordered}
        groups = {name: group for name, (_, group) in ordered if group is not None}
    else:  # most records: no flags
        names, flag_scores, groups = [], {}, {}
    return {
        "path": path,
        "path_bytes_hex": path_hex,
        "status": status,
        "link_to": None if link_to is None else display_path(link_to),
        "error": error,
        "size": size,
        "width": width,
        "height": height,
        "format": image_format,
        "flags": names,
        "flag_scores": flag_scores,
        "groups": groups,
        "mirrored": bool(mirrored) and "near_duplicate" in groups,
        "scores": scores,
        "extra": extra,
        "pixel_hash": pixel_hash,
        "phash": None if phash is None else f"{phash:016x}",
    }


def _hex_hash(value: object) -> int | None:
    """A 64-bit hash stored as 16 hex digits (``extra["phash_mirrored"]``); None for
    anything else (a hand-edited or damaged value takes no part)."""
    if not isinstance(value, str) or len(value) != 16 or not value.isascii() or not value.isalnum():
        return None  # also no sign, space, "0x" or "_" that int() would take
    try:
        return int(value, 16)
    except ValueError:
        return None


def _to_signed64(value: int | None) -> int | None:
    # SQLite integers are signed 64-bit; perceptual hashes are unsigned.
    if value is None:
        return None
    return value - (1 << 64) if value >= (1 << 63) else value


def _to_unsigned64(value: int | None) -> int | None:
    if value is None:
        return None
    return value + (1 << 64) if value < 0 else value


def _reason(exc: Exception) -> str:
    """The OS's words for an error, without Python's ``[Errno n]`` prefix."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


#: Free bytes under which a disk counts as full (SQLite's ``-shm`` file alone takes 32 KiB).
_FULL_BELOW = 1 << 20


def disk_full(exc: Exception, folder: str | Path | None = None) -> bool:
    """Whether SQLite failed because the disk (or the database's size limit) is full.

    ``SQLITE_FULL`` says so; an I/O error does when the disk holding ``folder`` has
    no room left: opening a WAL database on a full disk fails to grow its ``-shm``
    file, ``SQLITE_IOERR_SHMSIZE`` ("disk I/O error"; SQLite's result-code page:
    it "may indicate that the underlying filesystem volume is out of space").
    A full disk damages nothing: the file is sound once space is freed.
    """
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL" or "disk is full" in str(exc):
        return True
    if folder is None or not name.startswith("SQLITE_IOERR"):
        return False
    try:
        return shutil.disk_usage(folder).free < _FULL_BELOW
    except OSError:
        return False


def _remove_catalog_files(path: Path) -> None:
    """Remove a catalog file and its WAL companions (of a catalog that was never made)."""
    for end in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.unlink(path.with_name(path.name + end))


def _connected(uri: str) -> sqlite3.Connection:
    """A connection to ``uri`` that has read the schema (closed again if it cannot)."""
    db = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT)
    try:
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _shm_unmakeable(exc: sqlite3.OperationalError, path: Path) -> bool:
    """Whether a read-only open of the WAL database ``path`` failed only for want of its
    ``-shm`` file, which a read-only folder (a share, a copy on read-only media) keeps
    from being made, while its ``-wal`` file holds nothing: then opening it as
    immutable reads all of it (SQLite's URI parameter ``immutable``)."""
    if getattr(exc, "sqlite_errorname", "") != "SQLITE_CANTOPEN":
        return False
    try:
        return path.with_name(path.name + "-wal").stat().st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def use_wal(db: sqlite3.Connection) -> None:
    """Put the database of ``db`` in WAL mode (``PRAGMA journal_mode = WAL``), waiting
    for the other connections that do the same at that moment.

    Two connections that make one new database at once (two scans started together,
    ``boda mark`` beside the first mark set in ``boda serve``) each read it, then both
    need its exclusive lock: SQLite answers one of them SQLITE_BUSY at once, without
    the busy handler (waiting could deadlock, https://sqlite.org/c3ref/busy_handler.html),
    and the command failed with "locked by another program".  Tried again, the
    switch waits its turn (a database already in WAL mode does not change), as long
    as any lock is waited for (``_BUSY_TIMEOUT``).
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorname", "") == "SQLITE_BUSY"
            if not busy or time.monotonic() > deadline:
                raise
        time.sleep(0.005)


T = TypeVar("T")


def _read_only(path: Path, open_uri: Callable[[str], T]) -> T:
    """``open_uri`` of the read-only URI of the SQLite file ``path``, and of the same URI
    as immutable where that fails for want of a ``-shm`` file while the ``-wal`` holds
    nothing (:func:`_shm_unmakeable`): a marks file on a read-only share read as
    "unable to open database file; move it away"."""
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        return open_uri(uri)
    except sqlite3.OperationalError as exc:
        if not _shm_unmakeable(exc, path):
            raise
    return open_uri(uri + "&immutable=1")


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that only reads the SQLite file ``path`` (a marks file), immutable
    on a read-only share (:func:`_read_only`)."""
    return _read_only(path, _connected)


class Catalog:
    """An open catalog.  Use as a context manager or call :meth:`close`.

    Parameters
    ----------
    path : str or pathlib.Path
        The database file (its folder is created if missing), or a scanned
        folder, which stands for the catalog the scan left in it,
        ``FOLDER/.boda/catalog.db`` (:func:`resolve_catalog_path`): a folder
        opens an existing catalog only, never makes a new one.
    readonly : bool
        Open an existing catalog only to read it: nothing is created, and no
        record changes.  (Where the file and its folder are writable, the
        connection may write the way SQLite readers do: the last one to close
        folds the ``-wal`` file into the catalog and removes ``-wal``/``-shm``.)

    Raises
    ------
    CatalogError
        The file is not a boda catalog, is corrupt, is of a newer schema, may
        not be written (read-only file or folder; not for ``readonly``), cannot
        be created on a full disk (no empty file is left), or (read-only) does
        not exist or has results in a ``-wal`` file that a read-only folder
        keeps from being read; ``path`` is a folder without a catalog.  The
        message names the file looked at.

    Examples
    --------
    >>> with Catalog("photos", readonly=True) as catalog:    # doctest: +SKIP
    ...     print(catalog.path, catalog.count())
    photos/.boda/catalog.db {'ok': 12, 'error': 1, 'link': 0}
    """

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = resolve_catalog_path(path)
        self._new_folder = False  # set by _open_writable when it makes the folder
        existed = readonly or self.path.exists()
        self._db = self._open_readonly() if readonly else self._open_writable()
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            if existed:
                self._refuse_other_files(readonly)
            if not readonly:
                use_wal(self._db)
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._db.executescript(_SCHEMA)
            version = self._check_version(readonly)
            if version < SCHEMA_VERSION and not readonly:
                self._migrate(version)
            if not readonly:
                for index in _INDEXES:
                    self._db.execute(index)
        except CatalogError:
            self._db.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if not existed:  # a catalog this call began: no empty file left behind
                _remove_catalog_files(self.path)
                if self._new_folder:
                    with contextlib.suppress(OSError):
                        self.path.parent.rmdir()
            if not existed and disk_full(exc, self.path.parent):
                raise CatalogError(
                    f"cannot create the catalog at {str(self.path)!r}: the disk is full "
                    f"({exc}); free some space, or choose another place with --catalog"
                ) from None
            if not readonly and isinstance(exc, sqlite3.OperationalError) and (
                "readonly" in str(exc) or not os.access(self.path.parent, os.W_OK)
            ):
                raise self._read_only(str(exc)) from None
            raise self._unusable(exc) from None

    def _read_only(self, reason: str, fix: str = "") -> CatalogError:
        return CatalogError(
            f"cannot write the catalog at {str(self.path)!r} ({reason}); {fix}choose a "
            "writable place with --catalog ('boda report' can still read it)"
        )

    def _open_writable(self) -> sqlite3.Connection:
        from boda._io_raw import RAW_EXTENSIONS
        from boda.io import SUPPORTED_EXTENSIONS

        suffix = self.path.suffix.lower()
        if (suffix in SUPPORTED_EXTENSIONS | RAW_EXTENSIONS and self.path.is_file()
                and self.path.stat().st_size == 0):
            # An empty file is "boda's to fill", but one named as an image is a photo (an
            # interrupted copy): a scan never writes into an image.  (A new catalog may
            # have such a name: the scan leaves its own catalog out.)
            raise CatalogError(
                f"{str(self.path)!r} is an empty image file (named {self.path.suffix}), not a "
                "boda catalog; nothing was written: give a catalog file, such as "
                f"{str(self.path.with_suffix('.db'))!r}"
            )
        if self.path.exists() and not os.access(self.path, os.W_OK):
            # SQLite would open it read-only without a word and fail at the first
            # write, after the analysis: say so before any work.
            if not os.access(self.path.parent, os.W_OK | os.X_OK):
                raise self._read_only("the file and its folder are read-only")
            raise self._read_only("the file is read-only", "make it writable (chmod u+w) or ")
        self._new_folder = not self.path.parent.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT)
        except (OSError, sqlite3.Error) as exc:
            blocking = next((p for p in self.path.parents if p.is_file()), None)
            if blocking is not None:  # a file DIR/.boda: "File exists" said nothing
                raise CatalogError(
                    f"cannot create the catalog at {str(self.path)!r}: {str(blocking)!r} "
                    "is a file, not a folder to hold it; move that file away, or choose "
                    "another place with --catalog"
                ) from None
            raise CatalogError(
                f"cannot create the catalog at {str(self.path)!r} ({_reason(exc)}); "
                "choose a writable place with --catalog"
            ) from None

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise CatalogError(  # a folder scanned with --catalog elsewhere: not here
                f"no catalog at {str(self.path)!r}; run 'boda scan' on the folder first, "
                "or give the catalog a scan wrote elsewhere with --catalog FILE"
            )
        # as_uri() percent-encodes the path: a raw '#', '?' or '%' in a folder
        # name would otherwise end the file name and drop the mode.
        uri = self.path.resolve().as_uri()
        if os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK):
            # An ordinary connection that only reads: the last connection to close
            # folds the -wal file back in and deletes it and the -shm, which a
            # mode=ro connection leaves beside the catalog.
            try:
                db = _connected(uri + "?mode=rw")
            except sqlite3.DatabaseError as exc:
                raise self._unusable(exc) from None
            db.execute("PRAGMA query_only = ON")
            return db
        try:
            return _connected(uri + "?mode=ro")
        except sqlite3.DatabaseError as exc:
            # Not a database at all ("file is not a database"), or a folder we
            # could write to: nothing the immutable fallback below could mend.
            if not isinstance(exc, sqlite3.OperationalError) or os.access(
                self.path.parent, os.W_OK
            ):
                raise self._unusable(exc) from None
        # A WAL database needs its -shm file even to be read.  In a folder we may
        # not write to (a read-only share, another user's dataset) it is opened as
        # immutable: a scan running there at the same time would not be seen, and
        # neither would results still in the -wal file, so those are refused.
        wal = self.path.with_name(self.path.name + "-wal")
        with contextlib.suppress(OSError):
            if wal.stat().st_size > 0:
                raise CatalogError(
                    f"cannot read the latest results of the catalog {str(self.path)!r}: they "
                    f"are in {wal.name!r}, which SQLite cannot read in this read-only folder "
                    f"without a usable {self.path.name + '-shm'!r} file (a copy may have left "
                    "it out); make the folder writable, or copy the catalog with its -wal "
                    "file to a writable place and give that with --catalog"
                )
        try:
            return _connected(uri + "?mode=ro&immutable=1")
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from None

    def _unusable(self, exc: Exception) -> CatalogError:
        from boda.io import SUPPORTED_EXTENSIONS

        if self.path.suffix.lower() in SUPPORTED_EXTENSIONS:  # --catalog photo.jpg
            return CatalogError(
                f"{str(self.path)!r} is an image, not a boda catalog; give the catalog file "
                "(DIR/.boda/catalog.db) or another --catalog"
            )
        if disk_full(exc, self.path.parent):
            # No damage either: "move it away" would lose its marks and every result.
            return CatalogError(
                f"cannot open the catalog {str(self.path)!r}: the disk holding it is full "
                f"({exc}); free some space and try again (a full disk damages no catalog)"
            )
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            # A lock held past the timeout is no damage: moving the catalog away (the
            # advice below) would lose its marks for nothing.
            return CatalogError(
                f"the catalog {str(self.path)!r} is locked by another program ({exc}) and "
                f"stayed so for {_BUSY_TIMEOUT:g} s: close the program that has it open "
                "(a database browser, a sync tool) and try again"
            )
        return CatalogError(
            f"{str(self.path)!r} is not a usable boda catalog ({exc}); "
            "move it away and scan again"
        )

    def _refuse_other_files(self, readonly: bool) -> None:
        """Raise, having written nothing, if the existing file is another program's
        SQLite database (a Lightroom ``.lrcat``, a digiKam database given as
        ``--catalog``) or a catalog of a newer boda: opening it for writing would
        switch it to WAL mode and add boda's tables.  Read only, an empty file is
        refused too (said as such: read, it gave "no such table ...; move it away")."""
        tables = {
            row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables and readonly:
            raise CatalogError(
                f"{str(self.path)!r} is empty, not a boda catalog: no scan has written it; "
                "give the catalog of a scanned folder (DIR/.boda/catalog.db), or scan into "
                "this file first ('boda scan DIR --catalog FILE')"
            )
        if not tables:
            return  # an empty file or database: boda's to fill
        if "schema_version" not in tables:
            shown_tables = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise CatalogError(
                f"{str(self.path)!r} is another program's database (tables: {shown_tables}), "
                "not a boda catalog; nothing was changed: give another --catalog"
            )
        if self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] is not None:
            self._check_version(readonly=True)  # a newer schema is refused here, unwritten

    def _check_version(self, readonly: bool) -> int:
        """The catalog's schema version (a new catalog gets this boda's), or raise."""
        lowest, highest = self._db.execute(
            "SELECT MIN(version), MAX(version) FROM schema_version"
        ).fetchone()
        if highest is None:
            if readonly:
                raise CatalogError(f"{str(self.path)!r} has no schema version; scan again")
            with self._db:
                self._db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            return SCHEMA_VERSION
        elif not isinstance(lowest, int) or not isinstance(highest, int) or lowest < 1:
            bad = lowest if not isinstance(lowest, int) or lowest < 1 else highest
            raise CatalogError(
                f"{str(self.path)!r} is not a boda catalog (schema version {bad!r}); "
                "give another --catalog, or move it away and scan again"
            )
        elif highest > SCHEMA_VERSION:
            raise CatalogError(
                f"catalog {str(self.path)!r} has schema version {highest}, newer than this "
                f"boda understands ({SCHEMA_VERSION}): it was made by a newer boda; upgrade boda"
            )
        return highest

    def _migrate(self, version: int) -> None:
        """Bring a catalog of an older schema to :data:`SCHEMA_VERSION`, in one transaction.

        1 -> 2: the images table gains ``link_to`` and the status ``'link'``.
        SQLite cannot change a CHECK constraint in place, so the table is
        copied into a new one that takes its name (the procedure of SQLite's
        ALTER TABLE page, section 7); ids, and so flags and thumbnails, stay.
        """
        self._db.execute("PRAGMA foreign_keys = OFF")  # no effect inside a transaction
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                if version < 2:
                    self._db.execute(_IMAGES_TABLE.format(name="images_v2"))
                    self._db.execute(
                        f"INSERT INTO images_v2 ({_V1_COLUMNS}) SELECT {_V1_COLUMNS} FROM images"
                    )
                    self._db.execute("DROP TABLE images")
                    self._db.execute("ALTER TABLE images_v2 RENAME TO images")
                self._db.execute("DELETE FROM schema_version")
                self._db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        finally:
            self._db.execute("PRAGMA foreign_keys = ON")

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------
    def file_states(self) -> dict[bytes, FileState]:
        """Map every catalogued relative path to its stored size/mtime/status."""
        cursor = self._db.cursor()
        cursor.row_factory = None
        cursor.execute("SELECT relpath, id, size, mtime_ns, status FROM images")
        return {relpath: FileState(*state) for relpath, *state in cursor}

    def write_batch(self, records: Iterable[ImageRecord]) -> None:
        """Insert or replace records in **one transaction**; each record's ``id`` is set."""
        now = time.time()
        with self._db:
            for rec in records:
                cur = self._db.execute(
                    """INSERT INTO images (relpath, display_path, size, mtime_ns, status, error,
                           width, height, format, pixel_hash, phash, scores, extra, scanned_at,
                           link_to)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(relpath) DO UPDATE SET
                           display_path=excluded.display_path,
                           size=excluded.size, mtime_ns=excluded.mtime_ns,
                           status=excluded.status, error=excluded.error, width=excluded.width,
                           height=excluded.height, format=excluded.format,
                           pixel_hash=excluded.pixel_hash, phash=excluded.phash,
                           scores=excluded.scores, extra=excluded.extra,
                           scanned_at=excluded.scanned_at, link_to=excluded.link_to
                       RETURNING id""",
                    (
                        rec.relpath, rec.path, rec.size, rec.mtime_ns, rec.status, rec.error,
                        rec.width, rec.height, rec.format, rec.pixel_hash,
                        _to_signed64(rec.phash), json.dumps(rec.scores, allow_nan=True),
                        json.dumps(rec.extra), now, rec.link_to,
                    ),
                )
                image_id = cur.fetchone()[0]
                rec.id = image_id
                self._db.execute("DELETE FROM thumbnails WHERE image_id = ?", (image_id,))
                if rec.thumbnail:
                    self._db.execute(
                        "INSERT INTO thumbnails VALUES (?, ?)", (image_id, rec.thumbnail)
                    )

    def remove(self, relpaths: Iterable[bytes]) -> int:
        """Forget files that no longer exist; return how many rows went."""
        with self._db:
            cur = self._db.executemany(
                "DELETE FROM images WHERE relpath = ?", [(p,) for p in relpaths]
            )
        return cur.rowcount

    def move(self, pairs: Iterable[tuple[bytes, bytes]]) -> int:
        """Give records new paths, ``(old, new)`` relative paths (files renamed or
        moved), in one transaction; the rest stays: id, scores, hashes, thumbnail and
        flags.  Each ``new`` must be a path the catalog does not hold.  Returns how
        many records moved."""
        rows = [(new, display_path(new), old) for old, new in pairs]
        with self._db:
            cur = self._db.executemany(
                "UPDATE images SET relpath = ?, display_path = ? WHERE relpath = ?", rows
            )
        return cur.rowcount

    def replace_flags(
        self,
        flags: Iterable[tuple[int, str, float | None, int | None]],
        *,
        progress: Callable[[int], None] | None = None,
        mirrored_ids: Iterable[int] = (),
    ) -> None:
        """Replace the whole flags table with ``(image_id, name, score, group_id)`` rows.

        One transaction, written in batches (``progress(rows_written)`` after
        each); the flags are no longer stale (:meth:`flags_stale`) once it commits.
        ``mirrored_ids`` are the ``near_duplicate`` members whose nearest match is a
        left-right mirror image of them (:meth:`mirrored_ids`), kept in the same
        transaction.
        """
        rows = iter(flags)
        written = 0
        mirrored = sorted(set(mirrored_ids))
        with self._db:
            self._db.execute("DELETE FROM flags")
            while batch := list(itertools.islice(rows, _FLAG_BATCH)):
                self._db.executemany("INSERT INTO flags VALUES (?, ?, ?, ?)", batch)
                written += len(batch)
                if progress:
                    progress(written)
            self._db.execute("DELETE FROM settings WHERE key = ?", (_STALE_KEY,))
            if mirrored:
                self._put_setting(_MIRRORED_KEY, mirrored)
            else:
                self._db.execute("DELETE FROM settings WHERE key = ?", (_MIRRORED_KEY,))

    def mirrored_ids(self) -> frozenset[int]:
        """The ids of the ``near_duplicate`` members whose nearest match in their group
        is a left-right mirror image of them (a scan with ``mirrored``); empty
        otherwise, and for a catalog that never had such a scan."""
        try:
            stored = self.get_setting(_MIRRORED_KEY)
        except sqlite3.OperationalError:  # a version 1 catalog opened read-only: no settings
            return frozenset()
        if not isinstance(stored, list):
            return frozenset()
        return frozenset(i for i in stored if type(i) is int)

    def mark_flags_stale(self) -> None:
        """Say that the stored flags predate the records (a scan stopped before it
        derived them), and drop the duplicate flags of groups left with one member.

        The flags of the files that are gone went with them; the others stay as
        the last derivation left them (a group's size or distances may have
        changed since) until :meth:`replace_flags` writes new ones.
        """
        with self._db:
            self._db.execute(
                """DELETE FROM flags WHERE group_id IS NOT NULL AND (name, group_id) IN (
                       SELECT name, group_id FROM flags WHERE group_id IS NOT NULL
                       GROUP BY name, group_id HAVING COUNT(*) < 2)"""
            )
            self._put_setting(_STALE_KEY, True)

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable setting (e.g. the thresholds of the last scan)."""
        with self._db:
            self._put_setting(key, value)

    def _put_setting(self, key: str, value: Any) -> None:
        """The write of :meth:`set_setting`, inside the caller's transaction."""
        self._db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value)))

    def get_setting(self, key: str, default: Any = None) -> Any:
        """Read a setting stored by :meth:`set_setting`; ``default`` when it is
        missing or not JSON (a damaged or hand-edited catalog: callers check types)."""
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else _json_or(row["value"], default)

    def begin_analysis(self, analysis: Any, *, again: bool = False) -> bool:
        """Record that stored scores come from ``analysis`` (a JSON value); True if it
        changed, or ``again`` was asked.

        When the catalog holds another analysis, or ``again`` (analyse every file
        afresh anyway), every file's stored mtime is cleared in the same
        transaction, so :meth:`file_states` no longer matches any file: each is
        analysed again, an interrupted re-analysis resumes where it stopped, and
        the old scores stay readable until replaced.
        """
        if self.get_setting("analysis") == analysis and not again:
            return False
        with self._db:
            self._db.execute("UPDATE images SET mtime_ns = ?", (_STALE_MTIME,))
            self._put_setting("analysis", analysis)
        return True

    # -- reading ---------------------------------------------------------
    def keep_flags(self) -> None:
        """Say that the stored flags match the records after all: a scan that marked
        them stale (:meth:`mark_flags_stale`) changed nothing they are derived from."""
        with self._db:
            self._db.execute("DELETE FROM settings WHERE key = ?", (_STALE_KEY,))

    def flags_stale(self) -> bool:
        """Whether the stored flags predate the records: the last scan was stopped
        before it derived them again (the next scan does)."""
        return self.get_setting(_STALE_KEY) is True

    def mirrored_scan(self) -> bool:
        """Whether the last scan counted left-right mirror images as near duplicates
        (``--mirrored``, :data:`MIRRORED_SCAN_KEY`)."""
        return self.get_setting(MIRRORED_SCAN_KEY) is True

    def content_version(self) -> int:
        """How many scans changed the records or the flags (:data:`CONTENT_VERSION_KEY`);
        0 for a catalog no such scan wrote."""
        version = self.get_setting(CONTENT_VERSION_KEY, 0)
        return version if isinstance(version, int) and not isinstance(version, bool) else 0

    def note_content_changed(self) -> None:
        """Count one more scan that changed the records or the flags."""
        self.set_setting(CONTENT_VERSION_KEY, self.content_version() + 1)

    def flag_counts(self) -> dict[str, int]:
        """How many images carry each stored flag (flags no image carries left out)."""
        rows = self._db.execute("SELECT name, COUNT(*) AS n FROM flags GROUP BY name")
        return {r["name"]: r["n"] for r in rows}

    def failures(self) -> list[tuple[bytes, str | None]]:
        """``(relpath, error)`` of every file that could not be read, ordered by path."""
        rows = self._db.execute(
            f"SELECT relpath, error FROM images WHERE status = 'error' {_PATH_ORDER}"
        )
        return [(bytes(r["relpath"]), r["error"]) for r in rows]

    def failure_reasons(self) -> list[tuple[str, int, bytes]]:
        """``(reason, files, first file)`` for each reason files could not be read,
        the most frequent first (then by reason); the first file by its name's bytes."""
        rows = self._db.execute(
            "SELECT COALESCE(error, 'unknown') AS reason, COUNT(*) AS n, MIN(relpath) AS first "
            "FROM images WHERE status = 'error' GROUP BY reason ORDER BY n DESC, reason"
        )
        return [(r["reason"], r["n"], bytes(r["first"])) for r in rows]

    def score_names(self) -> list[str]:
        """Every score name found in the catalog, sorted (the CSV's score columns);
        reads only the scores."""
        cursor = self._db.cursor()
        cursor.row_factory = None
        cursor.execute("SELECT scores FROM images")
        names: set[str] = set()
        for (text,) in cursor:
            names.update(_json_dict(text))
        return sorted(name for name in names if isinstance(name, str))

    def flag_inputs(self, *, mirrored: bool = False) -> Iterator[FlagInput]:
        """What deriving flags needs of every record, ordered by path (as :meth:`records`).

        A light pass for catalogs of any size: no thumbnails, no ``extra``, no
        record objects; ``scores`` is parsed only for readable images (``{}``
        for the others).  With ``mirrored``, ``phash_mirrored`` is read from
        ``extra`` (SQLite's ``json_extract``: no other part of it is parsed);
        a record without one, or with a value that is not 16 hex digits, gets None.
        """
        cursor = self._db.cursor()
        cursor.row_factory = None  # plain tuples: several times faster than sqlite3.Row
        flipped = (
            "CASE WHEN status = 'ok' AND json_valid(extra) "
            "THEN json_extract(extra, '$.phash_mirrored') END" if mirrored else "NULL"
        )
        # Each cell of its type, as the record readers take it (_RECORD_COLUMNS): a
        # pHash stored as text stopped the scan here with a TypeError.
        columns = ", ".join(_RECORD_COLUMNS[c] for c in ("pixel_hash", "phash", "width", "height"))
        cursor.execute(
            f"SELECT id, relpath, status, error, scores, {columns}, "
            f"{flipped} FROM images " + _PATH_ORDER
        )
        for (
            image_id, relpath, status, error, scores, pixel_hash, phash, width, height, other,
        ) in cursor:  # fmt: skip
            yield FlagInput(
                image_id, relpath, status, error,
                _json_dict(scores) if status == "ok" else {},
                pixel_hash,
                phash + (1 << 64) if phash is not None and phash < 0 else phash,
                width, height,
                None if other is None else _hex_hash(other),
            )

    def records(self, *, with_thumbnails: bool = False) -> Iterator[ImageRecord]:
        """Every record, ordered by path, with its flags."""
        flags = self._all_flags()
        mirrored = self.mirrored_ids()
        thumbs: dict[int, bytes] = {}
        if with_thumbnails:
            thumbs = {
                r["image_id"]: bytes(r["jpeg"])
                for r in self._db.execute("SELECT image_id, jpeg FROM thumbnails")
            }
        for r in self._db.execute(f"SELECT {self._record_columns()} FROM images {_RECORD_ORDER}"):
            yield _record(r, flags.get(r["id"], {}), thumbs.get(r["id"]), mirrored)

    def record_dicts(self) -> Iterator[dict[str, Any]]:
        """Every record as :meth:`ImageRecord.to_dict` gives it (with ``mirrored``),
        ordered by path.

        The exports' pass over a catalog of any size: plain rows and no record
        objects, so what is left of its time is mostly parsing the stored
        ``scores`` and ``extra``.
        """
        flags = self._all_flags()
        cursor = self._db.cursor()
        cursor.row_factory = None  # plain tuples
        columns = self._record_columns((
            "id", "relpath", "status", "error", "size", "width", "height", "format",
            "pixel_hash", "phash", "scores", "extra", "link_to",
        ))  # fmt: skip
        cursor.execute(f"SELECT {columns} FROM images {_RECORD_ORDER}")
        loads = json.loads
        no_flags: dict[str, tuple[float | None, int | None]] = {}
        mirrored = self.mirrored_ids()
        for (
            image_id, relpath, status, error, size, width, height, image_format, pixel_hash,
            phash, scores, extra, link,
        ) in cursor:  # fmt: skip
            try:
                parsed = loads(scores), loads(extra)
            except (ValueError, TypeError):  # a damaged row: its values count as missing
                parsed = _json_dict(scores), _json_dict(extra)
            if type(parsed[0]) is not dict or type(parsed[1]) is not dict:  # as _record()
                parsed = _json_dict(scores), _json_dict(extra)
            yield _record_dict(
                relpath, status, link, error, size, width, height, image_format,
                flags.get(image_id, no_flags), *parsed, pixel_hash,
                phash + (1 << 64) if phash is not None and phash < 0 else phash,
                image_id in mirrored,
            )

    def _all_flags(self) -> dict[int, dict[str, tuple[float | None, int | None]]]:
        """Every stored flag: ``{image_id: {name: (score, group_id)}}``."""
        cursor = self._db.cursor()
        cursor.row_factory = None
        cursor.execute(f"SELECT {_FLAG_COLUMNS} FROM flags")
        flags: dict[int, dict[str, tuple[float | None, int | None]]] = {}
        for image_id, name, score, group_id in cursor:
            of_image = flags.get(image_id)
            if of_image is None:
                of_image = flags[image_id] = {}
            of_image[name] = (score, group_id)
        return flags

    def _image_columns(self) -> list[str]:
        return [r[1] for r in self._db.execute("PRAGMA table_info(images)")]

    def _record_columns(self, names: Iterable[str] = _RECORD_COLUMNS) -> str:
        """The SQL of :data:`_RECORD_COLUMNS` ``names``, in that order; ``link_to`` is
        NULL in a version 1 catalog opened read-only, which has no such column."""
        has_link = "link_to" in self._image_columns()
        return ", ".join(
            _RECORD_COLUMNS[name] if name != "link_to" or has_link else "NULL AS link_to"
            for name in names
        )

    def records_by_id(
        self, ids: Iterable[int], *, with_thumbnails: bool = False
    ) -> dict[int, ImageRecord]:
        """The records with these ids, with their flags (missing ids left out).

        For readers that pick a few records out of a large catalog (the
        report's cards) without holding every record in memory.
        """
        out: dict[int, ImageRecord] = {}
        mirrored = self.mirrored_ids()
        for chunk in _chunks(sorted(set(ids))):
            marks = ",".join("?" * len(chunk))
            flags: dict[int, dict[str, tuple[float | None, int | None]]] = {}
            for r in self._db.execute(
                f"SELECT {_FLAG_COLUMNS} FROM flags WHERE image_id IN ({marks})", chunk
            ):
                flags.setdefault(r["image_id"], {})[r["name"]] = (r["score"], r["group_id"])
            thumbs = self.thumbnails(chunk) if with_thumbnails else {}
            for r in self._db.execute(
                f"SELECT {self._record_columns()} FROM images WHERE id IN ({marks})", chunk
            ):
                out[r["id"]] = _record(
                    r, flags.get(r["id"], {}), thumbs.get(r["id"]), mirrored
                )
        return out

    def has_file(self, relpath: bytes) -> bool:
        """Whether the catalog holds a record of the file at ``relpath``."""
        row = self._db.execute("SELECT 1 FROM images WHERE relpath = ?", (relpath,)).fetchone()
        return row is not None

    def thumbnails(self, ids: Iterable[int]) -> dict[int, bytes]:
        """The stored JPEG thumbnails of the images with these ids (missing ones left out)."""
        out: dict[int, bytes] = {}
        for chunk in _chunks(sorted(set(ids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT image_id, jpeg FROM thumbnails WHERE image_id IN ({marks})", chunk
            )
            out.update((r["image_id"], bytes(r["jpeg"])) for r in rows)
        return out

    def analysed_since(self, started: float) -> int:
        """How many files (links left out) were written at or after ``started`` (a
        :func:`time.time`): the files a scan that began then has analysed."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM images WHERE scanned_at >= ? AND status != 'link'", (started,)
        ).fetchone()
        return row[0]

    def count_from_earlier_analysis(self) -> int:
        """How many records still hold the scores of the analysis before the current
        one (see :meth:`begin_analysis`): a re-analysis stopped before their turn."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM images WHERE mtime_ns = ? AND status != 'link'",
            (_STALE_MTIME,),
        ).fetchone()
        return row[0]

    def count_all(self) -> int:
        """Number of records (read from an index: cheaper than summing :meth:`count`)."""
        return self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def count(self) -> dict[str, int]:
        """Number of files by status (``ok``, ``error``, ``link``)."""
        rows = self._db.execute("SELECT status, COUNT(*) AS n FROM images GROUP BY status")
        counts = {"ok": 0, "error": 0, "link": 0}
        counts.update({r["status"]: r["n"] for r in rows})
        return counts

    def integrity_check(self) -> str:
        """Run ``PRAGMA integrity_check``; ``"ok"`` when the file is sound."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    # -- queries of ``boda serve`` (read-only; added after the methods above) ------
    def select_ids(
        self,
        *,
        flags: Iterable[str] = (),
        failed: bool = False,
        unflagged: bool = False,
        among: Iterable[int] | None = None,
        path_contains: str | None = None,
        sort: str = "path",
        descending: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[int], int]:
        """One page of the ids of the records in a selection, sorted; and how many there are.

        The filtering, sorting and paging are done by SQLite, so a page of a large
        catalog costs milliseconds, not a pass over every record.

        Parameters
        ----------
        flags : iterable of str
            Select the records carrying any of these stored flags.
        failed : bool
            Select the files that could not be read (status ``'error'``).
        unflagged : bool
            Select the readable files (status ``'ok'``) that carry no flag.
        among : iterable of int, optional
            Select these ids as well (e.g. the redundant copies of
            :func:`boda.report.duplicate_sets`).
        path_contains : str, optional
            Keep only the records whose display path holds this text (ASCII
            letters compared case-insensitively, as SQLite's ``LIKE``).
        sort : str
            ``"path"`` (display path, then the exact bytes), ``"size"`` (bytes
            on disk), ``"score:KEY"`` (the stored score ``KEY``) or
            ``"group:FLAG"`` (the duplicate group id of flag ``FLAG``) or
            ``"flag:FLAG"`` (the score stored with flag ``FLAG``: only its
            images have one, e.g. ``odd_size``'s size ratio) or ``"time:NAME"``
            (the ISO 8601 time ``NAME`` of the record's ``extra``, e.g. ``taken``,
            by its clock time: a UTC offset is ignored, so photos with and
            without one interleave as their cameras' clocks read; across time
            zones, local clock order).  Records
            without the value sort last in either order; ties go in path order.
        descending : bool
            Sort from the largest value down.
        offset, limit : int
            The page: skip ``offset`` records, return at most ``limit`` (None: all).

        Returns
        -------
        (list of int, int)
            The page's ids in order, and the number of records selected.  With
            no selection given (no ``flags``, ``failed``, ``unflagged`` or
            ``among``) every record is selected, links included; a selection
            holds the records :func:`boda.report.select_records` gives for it.

        Raises
        ------
        CatalogError
            An unknown ``sort``.

        Examples
        --------
        >>> with Catalog("photos", readonly=True) as c:               # doctest: +SKIP
        ...     ids, total = c.select_ids(flags=["blurry"], sort="score:blurry", limit=50)
        """
        where, params = self._selection_sql(flags, failed, unflagged, among, path_contains)
        value, value_params, join, join_params = self._sort_value(sort)
        total = self._db.execute(f"SELECT COUNT(*) FROM images WHERE {where}", params).fetchone()[0]
        way = "DESC" if descending else "ASC"
        page = "" if limit is None else f" LIMIT {max(int(limit), 0)}"
        if offset:
            page = (page or " LIMIT -1") + f" OFFSET {max(int(offset), 0)}"
        cursor = self._db.cursor()
        cursor.row_factory = None
        if value is None:  # path order: read from the index, no sort
            cursor.execute(
                f"SELECT id FROM images WHERE {where} "
                f"ORDER BY display_path {way}, relpath {way}{page}",
                params,
            )
        else:  # the sort value computed once per row (a JSON score is parsed once)
            cursor.execute(
                f"SELECT id FROM (SELECT images.id AS id, images.display_path AS dp, "
                f"images.relpath AS rp, {value} AS v FROM images {join} WHERE {where}) "
                f"ORDER BY v IS NULL, v {way}, dp {way}, rp {way}{page}",
                [*value_params, *join_params, *params],
            )
        return [row[0] for row in cursor], total

    @staticmethod
    def _selection_sql(
        flags: Iterable[str],
        failed: bool,
        unflagged: bool,
        among: Iterable[int] | None,
        path_contains: str | None,
    ) -> tuple[str, list[Any]]:
        """The WHERE clause of :meth:`select_ids`, and its parameters."""
        parts: list[str] = []
        params: list[Any] = []
        names = sorted(set(flags))
        if names:
            marks = ",".join("?" * len(names))
            parts.append(f"images.id IN (SELECT image_id FROM flags WHERE name IN ({marks}))")
            params += names
        if failed:
            parts.append("images.status = 'error'")
        if unflagged:
            # "+": most records are 'ok', so the status index would only make SQLite sort
            # them all; the page's path order reads the path index and stops at the page
            parts.append(
                "(+images.status = 'ok' AND NOT EXISTS "
                "(SELECT 1 FROM flags AS f WHERE f.image_id = images.id))"
            )
        if among is not None:
            parts.append("images.id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(sorted({int(i) for i in among})))
        where = "(" + " OR ".join(parts) + ")" if parts else "1"
        if path_contains:
            escaped = path_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where += " AND images.display_path LIKE ? ESCAPE '\\'"
            params.append(f"%{escaped}%")
        return where, params

    @staticmethod
    def _sort_value(sort: str) -> tuple[str | None, list[Any], str, list[Any]]:
        """What :meth:`select_ids` sorts by for ``sort`` (None: the path), with its
        parameters, and the join it needs, with its parameters."""
        kind, _, name = sort.partition(":")
        if sort == "path":
            return None, [], "", []
        if sort == "size":
            return "images.size", [], "", []
        if kind == "score" and name:
            # A row whose scores are not strict JSON (a NaN written by an old scan,
            # a damaged cell) has no value here instead of failing the whole query.
            key = '$."' + name.replace('"', '\\"') + '"'
            value = "(CASE WHEN json_valid(images.scores) THEN json_extract(images.scores, ?) END)"
            return value, [key], "", []
        if kind == "group" and name:
            join = "LEFT JOIN flags AS g ON g.image_id = images.id AND g.name = ?"
            return "g.group_id", [], join, [name]
        if kind == "flag" and name:  # a flag's stored score (one derived at flag time)
            join = "LEFT JOIN flags AS fs ON fs.image_id = images.id AND fs.name = ?"
            return "fs.score", [], join, [name]
        if kind == "time" and name:
            # An ISO 8601 time in ``extra`` (``taken``), by its clock time: a trailing
            # UTC offset is dropped, so a camera that records one and a camera that
            # does not (its clock time, zone unknown) interleave as their clocks read.
            # As text, fractional seconds sort right ("07" < "07.25" < "07.5").
            key = '$."' + name.replace('"', '\\"') + '"'
            value = (
                "(SELECT CASE WHEN typeof(t) != 'text' THEN NULL "
                "WHEN length(t) > 19 AND substr(t, -6, 1) IN ('+', '-') AND "
                "substr(t, -3, 1) = ':' THEN substr(t, 1, length(t) - 6) "
                "ELSE t END FROM (SELECT CASE WHEN json_valid(images.extra) "
                "THEN json_extract(images.extra, ?) END AS t))"
            )
            return value, [key], "", []
        raise CatalogError(
            f"unknown sort {sort!r}; use 'path', 'size', 'score:NAME', 'group:FLAG', "
            "'flag:FLAG' or 'time:NAME'"
        )

    def sort_order(self, sort: str) -> tuple[list[int], int]:
        """Every record's id in the ascending order of ``sort`` (as :meth:`select_ids`
        sorts: records without the value last, ties in path order), and how many
        records have the value.

        For readers that page through one order many times (``boda serve`` keeps
        it until the catalog changes): the descending order is the first ``n`` ids
        reversed, then the others reversed.
        """
        value, value_params, join, join_params = self._sort_value(sort)
        if value is None:
            value, value_params = "NULL", []
        cursor = self._db.cursor()
        cursor.row_factory = None
        cursor.execute(
            f"SELECT id, v IS NULL FROM (SELECT images.id AS id, images.display_path AS dp, "
            f"images.relpath AS rp, {value} AS v FROM images {join}) "
            "ORDER BY v IS NULL, v, dp, rp",
            [*value_params, *join_params],
        )
        ids, missing = [], 0
        for image_id, is_null in cursor:
            ids.append(image_id)
            missing += is_null
        return ids, len(ids) - missing

    def group_members(self, flag: str, group_id: int) -> list[int]:
        """The ids of the records in duplicate group ``group_id`` of ``flag``, in path order."""
        rows = self._db.execute(
            "SELECT images.id FROM flags JOIN images ON images.id = flags.image_id "
            f"WHERE flags.name = ? AND flags.group_id = ? {_PATH_ORDER}",
            (flag, group_id),
        )
        return [r[0] for r in rows]

    def relpaths_of(self, ids: Iterable[int]) -> dict[int, bytes]:
        """The stored paths (bytes, relative to the scanned folder) of the records with
        these ids; ids the catalog does not hold are left out."""
        out: dict[int, bytes] = {}
        for chunk in _chunks(sorted(set(ids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(  # typed: a path stored as text is its UTF-8 bytes
                f"SELECT id, {_RECORD_COLUMNS['relpath']} FROM images WHERE id IN ({marks})",
                chunk,
            )
            out.update((r[0], bytes(r[1])) for r in rows)
        return out

    def ids_of_paths(self, paths: Iterable[str]) -> dict[str, int]:
        """The ids of the records with these display paths (:attr:`ImageRecord.path`);
        paths the catalog does not hold are left out."""
        out: dict[str, int] = {}
        wanted = sorted(set(paths))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT display_path, id FROM images WHERE display_path IN ({marks})", chunk
            )
            out.update((r[0], r[1]) for r in rows)
        return out

    def flag_groups(self, flag: str) -> dict[int, int]:
        """The duplicate group of every record flagged ``flag``: ``{id: group_id}``
        (records whose flag has no group left out)."""
        rows = self._db.execute(
            "SELECT image_id, group_id FROM flags WHERE name = ? AND group_id IS NOT NULL",
            (flag,),
        )
        return {r[0]: r[1] for r in rows}

    def pixel_hashes(self, relpaths: Iterable[bytes]) -> dict[bytes, str | None]:
        """The pixel hash of each of these files the catalog holds (None for an unreadable
        file or a link); files it does not hold are left out."""
        return {path: ident[0] for path, ident in self.file_identities(relpaths).items()}

    def file_identities(
        self, relpaths: Iterable[bytes]
    ) -> dict[bytes, tuple[str | None, int | None, int | None]]:
        """``(pixel_hash, size, mtime_ns)`` of each of these files the catalog holds: what
        a culling mark given to it keeps (:class:`boda.catalog.Marks`).  ``size`` and
        ``mtime_ns`` are None while the file waits to be analysed again (its stored time
        was cleared by a change of analysis: the pair no longer names the file); files
        the catalog does not hold are left out."""
        out: dict[bytes, tuple[str | None, int | None, int | None]] = {}
        wanted = sorted({bytes(p) for p in relpaths})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT relpath, {self._record_columns(('pixel_hash', 'size'))}, mtime_ns "
                f"FROM images WHERE relpath IN ({marks})", chunk
            )
            for relpath, pixel_hash, size, mtime_ns in rows:
                known = isinstance(mtime_ns, int) and mtime_ns != _STALE_MTIME
                out[bytes(relpath)] = (pixel_hash, *((size, mtime_ns) if known else (None, None)))
        return out

    def ids_with_status(self, status: str) -> list[int]:
        """The ids of the records of one status (``"ok"``, ``"error"``, ``"link"``), in
        id order."""
        rows = self._db.execute("SELECT id FROM images WHERE status = ? ORDER BY id", (status,))
        return [r[0] for r in rows]

    def mark_rows(self, marks_file: str | Path) -> list[tuple[int, str, str | None, int | None]]:
        """``(id, status, decision, rating)`` of every record that has a culling mark in
        ``marks_file`` (:class:`boda.catalog.Marks`): the file ATTACHed read-only and
        joined on the stored path, one indexed query however many records there are.
        No file: no rows.

        Raises
        ------
        CatalogError
            The marks file cannot be read (the catalog itself is not affected).
        """
        from boda.catalog._marks import MARK_APPLIES, marks_columns

        path = Path(marks_file)
        if not path.is_file():
            return []
        try:
            attach = "ATTACH DATABASE ? AS boda_marks"
            _read_only(path, lambda uri: self._db.execute(attach, (uri,)))
            try:
                # a mark given to another file at this path does not apply (a version 1
                # marks file, read as it is, has no sizes and times to match)
                columns = marks_columns(self._db, "boda_marks")
                applies = (MARK_APPLIES if "mtime_ns" in columns
                           else "(m.pixel_hash IS NULL OR m.pixel_hash IS images.pixel_hash)")
                rows = self._db.execute(
                    "SELECT images.id, images.status, m.decision, m.rating "
                    "FROM boda_marks.marks AS m JOIN images ON images.relpath = m.relpath "
                    f"AND {applies}"
                ).fetchall() if columns else []
                # (no marks table: a file whose first write was cut short, killed or on a
                # full disk; no marks yet, as no file, and "move it away" helps nothing)
            finally:
                self._db.execute("DETACH DATABASE boda_marks")
        except sqlite3.DatabaseError as exc:
            raise CatalogError(
                f"cannot read the marks file {str(path)!r} ({exc}); move it away (the "
                "catalog itself is not affected)"
            ) from None
        return [tuple(row) for row in rows]  # type: ignore[misc]


def _record(
    row: sqlite3.Row,
    flags: dict[str, tuple[float | None, int | None]],
    thumbnail: bytes | None,
    mirrored: frozenset[int] = frozenset(),
) -> ImageRecord:
    """An :class:`ImageRecord` from a row of the ``images`` table; ``mirrored``: the
    catalog's :meth:`Catalog.mirrored_ids`."""
    link_to = row["link_to"]
    return ImageRecord(
        relpath=bytes(row["relpath"]),
        size=row["size"],
        mtime_ns=row["mtime_ns"],
        status=row["status"],
        error=row["error"],
        width=row["width"],
        height=row["height"],
        format=row["format"],
        pixel_hash=row["pixel_hash"],
        phash=_to_unsigned64(row["phash"]),
        scores=_json_dict(row["scores"]),
        extra=_json_dict(row["extra"]),
        thumbnail=thumbnail,
        id=row["id"],
        flags=flags,
        link_to=None if link_to is None else bytes(link_to),
        mirrored=row["id"] in mirrored and "near_duplicate" in flags,
    )


def _json_or(text: Any, default: Any) -> Any:
    """``json.loads(text)``, or ``default`` when ``text`` is not JSON."""
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return default


def _json_dict(text: Any) -> dict[str, Any]:
    """The JSON object in a ``scores`` or ``extra`` cell; ``{}`` when the cell holds
    anything else (not JSON, a list...): a damaged row's values count as missing."""
    value = _json_or(text, {})
    return value if isinstance(value, dict) else {}


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    """``ids`` in lists of at most ``size``: under SQLite's bound-variable limit."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def relpath_bytes(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bytes:
    """Relative path of ``path`` under ``root`` as bytes, with ``/`` separators."""
    rel = os.path.relpath(os.fsencode(path), os.fsencode(root))
    return rel.replace(os.sep.encode(), b"/")
