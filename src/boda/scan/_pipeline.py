"""``scan``: walk a folder, analyse new and changed images, store and flag them."""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import errno
import functools
import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from boda.catalog import Catalog, FileState, ImageRecord, default_catalog_path, display_path
from boda.catalog._catalog import _STALE_MTIME, MIRRORED_SCAN_KEY, disk_full
from boda.core.numbers import whole_number
from boda.errors import CatalogError, InvalidParameterError
from boda.io import DEFAULT_MAX_PIXELS
from boda.scan._analyze import ANALYSIS_VERSION, analyze_file
from boda.scan._exclude import Excludes, read_ignore_file
from boda.scan._flags import (
    FlagDeriver,
    StepProgress,
    default_thresholds,
    flag_descriptions,
    resolve_thresholds,
)
from boda.scan._pool import _iter_results, _start_pool
from boda.scan._pool import _stop as _stop_pool
from boda.scan._ray import ENGINES, check_ray, ray_results
from boda.scan._walk import RAW_EXTENSIONS, FoundFile, walk_images

__all__ = ["ScanSummary", "scan", "default_workers", "same_mtime"]

_log = logging.getLogger(__name__)

#: Records written per transaction; a killed scan loses at most this many.
BATCH_SIZE = 32
#: ...or whatever finished within this many seconds, whichever comes first.
BATCH_SECONDS = 2.0
#: A stopped scan still derives the flags of a catalog of up to this many
#: records (well under a second); a larger one's are marked stale instead, so
#: Ctrl-C or SIGTERM ends the scan in seconds (the next scan derives them).
DERIVE_ON_STOP_LIMIT = 20_000
#: Files between two calls of a step's progress.
_STEP_EVERY = 2_000


def default_workers() -> int:
    """All the cores this process may use."""
    from boda.core.blocks import usable_cores

    return usable_cores()


@dataclasses.dataclass
class ScanSummary:
    """What a scan did.

    ``total`` counts the files found, ``analysed`` the ones decoded in this
    run (new + changed + retried failures), ``unchanged`` the ones skipped
    because size and mtime matched, ``links`` the file symlinks to another
    file of the folder (recorded as links, not analysed), ``removed`` the
    catalog rows of files that are gone (forgotten even when the scan is
    interrupted: the listing is complete before the analysis starts).
    ``failed`` lists ``(path, reason)`` for every file of the folder that
    could not be read, ``flag_counts`` how many images carry each flag (every
    flag, 0 included), ``thresholds`` the thresholds used, of which
    ``remembered_thresholds`` are the ones other than the defaults that came
    from the catalog (given to an earlier scan), ``raw_files`` how many
    camera RAW files (which boda cannot decode) were passed over, by
    extension, and ``folder_links`` the ``(path, target)`` of the folder
    symlinks that were not followed (their files are not scanned).  When
    ``interrupted``, ``pending`` files were still to analyse, and
    ``flags_stale`` says that the flags were not derived again (a large
    catalog: the stop is prompt; ``flag_counts`` then counts the stored flags,
    which the next scan derives).  ``seconds`` is the wall time of the whole
    scan, ``analysis_seconds`` the part spent decoding and measuring the
    ``analysed`` files (``analysed / analysis_seconds`` is the analysis rate).

    ``moved`` counts the files found under a new path whose record was taken
    over from a file gone in the same scan (moved, renamed or both: same size
    and modification time, see :func:`_moves`; not decoded again, marks moved along);
    ``excluded`` the catalog rows forgotten because an exclude skips their
    files now, or they lie in a hidden folder an earlier scan entered with
    ``include_hidden`` (``removed`` counts the files that are gone from the disk).
    ``default_skipped`` and ``skipped`` count, by pattern, the folders and
    image files the default excludes and the user's excludes (``excludes``:
    ``--exclude`` patterns in force, ``remembered_excludes`` the ones from
    the catalog; ``ignore_file``: the patterns of ``DIR/.bodaignore``, then those of the
    ``.bodaignore`` files in its folders as patterns relative to DIR) passed
    over; ``default_excludes`` says whether the defaults were in force.
    ``icloud_placeholders`` lists the photos present only as iCloud
    placeholders (``.IMG_1.HEIC.icloud``): not on the disk, not scanned.
    So ``total == analysed + unchanged + moved + links`` (+ ``pending`` when
    interrupted), except in a scan that analyses every file afresh (another
    ``max_side``, ``reanalyze``): its moved files, their records and marks taken
    over, are analysed too.  ``engine`` names the engine that analysed the files
    (``"local"`` or ``"ray"``).  ``mirrored`` says whether near duplicates
    included left-right mirror images (``remembered_mirrored``: so because an
    earlier scan was asked to), and ``without_mirrored_hash`` how many images
    with a pHash took no part in that (analysed before boda kept the mirrored
    pHash; 0 when ``mirrored`` is off).  ``marks_followed`` counts the culling marks
    that followed their photo to another path by its pixels (renamed and edited, or
    names swapped: see :func:`_follow_marks`), or to where it was moved while the scan
    ran (:func:`_carry_marks_away`).  ``describe`` says whether the files analysed
    got the measures that decide no flag (dominant colours, colourfulness, edge
    density: :data:`boda.scan.DESCRIPTIVE_MEASURES`), ``remembered_describe``
    that this came from the catalog rather than from the call.
    """

    root: Path
    catalog_path: Path
    total: int = 0
    analysed: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    flag_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    thresholds: dict[str, float] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    interrupted: bool = False
    raw_files: dict[str, int] = dataclasses.field(default_factory=dict)
    links: int = 0
    pending: int = 0
    remembered_thresholds: dict[str, float] = dataclasses.field(default_factory=dict)
    flags_stale: bool = False
    analysis_seconds: float = 0.0
    folder_links: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    moved: int = 0
    excluded: int = 0
    default_excludes: bool = True
    excludes: list[str] = dataclasses.field(default_factory=list)
    remembered_excludes: list[str] = dataclasses.field(default_factory=list)
    ignore_file: list[str] = dataclasses.field(default_factory=list)
    default_skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    icloud_placeholders: list[str] = dataclasses.field(default_factory=list)
    engine: str = "local"
    mirrored: bool = False
    remembered_mirrored: bool = False
    without_mirrored_hash: int = 0
    marks_followed: int = 0
    describe: bool = False
    remembered_describe: bool = False

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        out = dataclasses.asdict(self)
        out["root"] = display_path(str(self.root))
        out["catalog_path"] = display_path(str(self.catalog_path))
        for key in ("excludes", "remembered_excludes", "ignore_file"):
            out[key] = [display_path(pattern) for pattern in out[key]]
        out["skipped"] = _shown_keys(self.skipped)
        out["default_skipped"] = _shown_keys(self.default_skipped)
        out["failed"] = [{"path": p, "reason": r} for p, r in self.failed]
        out["folder_links"] = [{"path": p, "target": t} for p, t in self.folder_links]
        return out


@contextlib.contextmanager
def _only_scan_of(catalog_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``CATALOG.lock`` for the scan, or refuse to start.

    Two scans of one catalog would each analyse every file, and one with
    another ``--max-side`` could leave rows of the other's kind behind in a
    catalog that says otherwise.  The lock is a POSIX record lock (``lockf``):
    the kernel drops it when this process ends, ``kill -9`` included, and forked
    workers do not inherit it (an ``flock`` would live on in orphaned workers
    and refuse the rerun), so no stale lock survives.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    lock_path = catalog_path.with_name(catalog_path.name + ".lock")
    try:
        # Unbuffered: a pid that cannot be written fails at the write, not again at close.
        lock = open(lock_path, "a+b", buffering=0)  # noqa: SIM115
    except OSError as exc:  # no room for it (a full disk), a read-only or odd lock file
        fix = ("the disk is full: free some space and run the scan again"
               if exc.errno == errno.ENOSPC
               else "remove it (it holds only the number of the last scan's process)")
        raise CatalogError(
            f"cannot open {str(lock_path)!r}, the lock that keeps two scans of the catalog "
            f"apart ({exc.strerror or exc}); {fix}; the catalog is intact"
        ) from None
    with lock:
        try:
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):  # held: those two only
                # ENOLCK, EOPNOTSUPP...: a network or FUSE file system without locks.
                _log.warning(
                    "note: cannot lock %r (%s): scanning without the guard against a second "
                    "scan of this catalog at the same time", str(lock_path), exc.strerror,
                )
                yield
                return
            lock.seek(0)
            holder = lock.read(100).decode(errors="replace").strip() or "another process"
            raise CatalogError(
                f"another boda scan ({holder}) is writing {str(catalog_path)!r}; wait for it "
                "to finish, or scan into another --catalog"
            ) from None
        # The pid only names the holder to a second scan: one that cannot be written (a
        # full disk) leaves the lock held, and the catalog's first write says what is wrong.
        with contextlib.suppress(OSError):
            lock.truncate(0)
            lock.write(f"pid {os.getpid()}".encode())
        try:
            yield
        finally:
            fcntl.lockf(lock, fcntl.LOCK_UN)


#: What stops a scan: Ctrl-C, and SIGTERM and SIGHUP where the CLI handles them like it.
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class _StopOnce:
    """Stop signals (Ctrl-C; SIGTERM and SIGHUP where the CLI handles them like it) raise
    ``KeyboardInterrupt`` once between :meth:`arm` and :meth:`release`; later ones are
    only counted (:attr:`count`).

    A scan that is stopping must finish stopping: Ctrl-C pressed again (people press it
    two or three times) would otherwise cut the pool's stop short, whose threads then
    hang the exit or print a traceback there, or lose the last batch.  The first signal
    switches to counting in the handler itself, before anything is raised, so no moment
    is left where a second one would raise.  The first reaches the handler it replaced
    (the CLI's records which signal stopped the command: its exit status), the later
    ones do not.  Signal handlers belong to the main thread: elsewhere (where no
    ``KeyboardInterrupt`` arrives) this does nothing, and signals without a Python
    handler (``SIG_DFL``, ``SIG_IGN``) are left alone.
    """

    def __init__(self) -> None:
        self.count = 0
        self._saved: dict[int, Callable] = {}

    def arm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler):
                self._saved[signum] = handler
                signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count == 1:
            self._saved[signum](signum, frame)  # KeyboardInterrupt, as without this

    def stopping(self) -> None:
        """The scan stops (a ``KeyboardInterrupt`` raised otherwise than by a signal,
        too): from now on every stop signal is only counted."""
        self.count = max(self.count, 1)

    def release(self) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        self._saved.clear()


def _analyze_job(job: tuple[FoundFile, int, int | None, bool]) -> ImageRecord:
    return analyze_file(*job)


def _analysis(max_side: int, describe: bool) -> dict:
    """The analysis settings the stored scores come from (``Catalog.begin_analysis``):
    a change re-analyses every file.  A described analysis has no ``describe`` key,
    as every catalog made before the option had: those stay as they are."""
    analysis = {"version": ANALYSIS_VERSION, "max_side": max_side}
    return analysis if describe else {**analysis, "describe": False}


def _described(catalog: Catalog) -> bool:
    """Whether the catalog's last scan measured the descriptive measures: a new catalog
    is not described; one whose analysis has no ``describe`` key (made before the
    option) is."""
    stored = catalog.get_setting("analysis")
    return isinstance(stored, dict) and stored.get("describe", True) is not False


def _move_marks(catalog_path: Path, moves: list[tuple[bytes, bytes]]) -> int:
    """Carry the culling marks of moved files along (when the catalog has marks);
    returns how many marks moved."""
    from boda.catalog import Marks, marks_path

    if not marks_path(catalog_path).is_file():
        return 0
    try:
        with Marks(catalog_path) as marks:
            return marks.move(moves)
    except CatalogError as exc:  # the scan goes on: its records are not the marks
        _log.warning("note: the marks of %d moved files stay at their old paths: %s",
                     len(moves), exc)
        return 0


def _marked(catalog: Catalog, vanished: list[ImageRecord]) -> list[ImageRecord]:
    """The files gone since the listing (``vanished``: their error records, with the
    size and time the listing saw) whose catalogued file has a culling mark."""
    from boda.catalog import Marks, marks_path

    if not vanished or not marks_path(catalog.path).is_file():
        return []
    try:
        with Marks(catalog.path, readonly=True) as marks:
            held = {r.relpath: mark for r in vanished if (mark := marks.get(r.relpath))}
    except CatalogError:  # an unreadable marks file: the scan goes on, the reports say it
        return []
    files = catalog.file_identities(held)
    return [r for r in vanished  # a mark left by an earlier file at the path stays
            if r.relpath in held and r.relpath in files
            and held[r.relpath].applies_to(*files[r.relpath])]


def _carry_marks_away(
    root: Path, catalog_path: Path, marked: list[ImageRecord], listed: set[bytes],
    include_hidden: bool, excludes: Excludes,
) -> int:
    """Move the marks of ``marked``, files gone from their listed paths while the scan
    ran, to where they went (a folder renamed during a scan that analyses its files,
    after ``--reanalyze`` or an upgrade): the folder is listed again, and a file that
    is new since the first listing (not in ``listed``) takes the mark of a gone one
    as :func:`_moves` pairs files between two scans (size, time, name or folder).
    The next scan analyses it as a new file, its mark in place; without this, the
    mark stayed at the old path, which no scan would see again.  Returns how many
    marks moved."""
    own = _catalog_files(root, catalog_path)
    arrived = [
        f for f in _walk(root, include_hidden, {}, None, excludes=excludes)
        if f.relpath not in listed and f.relpath not in own
    ]
    states = {r.relpath: FileState(0, r.size, r.mtime_ns, "ok") for r in marked}
    moves = _moves(list(states), states, arrived)
    return _move_marks(catalog_path, moves) if moves else 0


def _follow_marks(catalog: Catalog, displaced: list[bytes], analysed: list[bytes]) -> int:
    """Move the marks of files that went, or changed, in this scan to the file analysed
    in it that holds their pixels (:func:`boda.catalog._marks.moves_by_pixels`): a
    photo renamed and edited in one go, or two names swapped, keeps its mark.  Returns
    how many marks moved."""
    from boda.catalog import Marks, marks_path
    from boda.catalog._marks import moves_by_pixels

    if not analysed or not marks_path(catalog.path).is_file():
        return 0
    try:
        with Marks(catalog.path) as marks:
            held = marks.all()
            now = catalog.file_identities(analysed)
            pairs = moves_by_pixels(held, [*displaced, *analysed], now)
            touched = {path for pair in pairs for path in pair}
            # chosen from these marks: a mark set since (boda serve) is not overwritten
            return marks.move(pairs, expected={p: held.get(p) for p in touched}) if pairs else 0
    except CatalogError as exc:  # the scan goes on: its records are not the marks
        _log.warning("note: marks were not matched to renamed and edited files: %s", exc)
        return 0


def _write(catalog: Catalog, batch: list[ImageRecord]) -> None:
    """Commit ``batch`` (the flags are derived from the catalog afterwards)."""
    catalog.write_batch(batch)


def _refuse_newer_analysis(catalog: Catalog) -> None:
    """Raise if the catalog's scores come from a newer boda's analysis: re-analysing
    would replace them with this older version's, and two machines sharing the
    catalog would undo each other's work on every scan."""
    stored = catalog.get_setting("analysis")
    version = stored.get("version") if isinstance(stored, dict) else None
    if isinstance(version, int) and version > ANALYSIS_VERSION:
        raise CatalogError(
            f"the catalog {str(catalog.path)!r} was made by a newer boda (analysis version "
            f"{version}; this boda has {ANALYSIS_VERSION}); upgrade boda, or scan into "
            "another --catalog"
        )


def _refuse_emptying(catalog: Catalog, root: Path, summary: ScanSummary) -> None:
    """Raise if ``root`` holds no images but the catalog lists some: an unmounted
    card or share looks like an empty folder, and forgetting every file would
    throw the catalog away.  So do excludes that skip every file."""
    listed = catalog.count_all()
    if listed and summary.skipped:
        raise CatalogError(
            f"{str(root)!r} holds no images that are not excluded (by "
            f"{', '.join(summary.skipped)}), but the catalog {str(catalog.path)!r} lists "
            f"{listed}; nothing was changed: give other excludes (--reset-excludes forgets "
            "the remembered ones; see .bodaignore), or delete the catalog"
        )
    if listed:
        raise CatalogError(
            f"{str(root)!r} holds no images now, but the catalog {str(catalog.path)!r} lists "
            f"{listed}; is the card or share mounted? Nothing was changed (if the images are "
            "gone for good, delete the catalog and scan again)"
        )


def _gone_and_kept(
    known: dict[bytes, object], seen: set[bytes], found: list[FoundFile]
) -> tuple[list[bytes], dict[bytes, int]]:
    """The catalogued paths to forget (not found this time), and how many rows are
    kept under each folder that could not be listed: its files may all be there."""
    unlisted = [f.relpath for f in found if f.unlisted_folder]
    kept = dict.fromkeys(unlisted, 0)
    # Each path's folders looked up, not every unlisted folder tried for each path: a
    # share with 1 000 unreadable folders over 100 000 catalogued files took 7 s here.
    rank = {folder: i for i, folder in reversed(list(enumerate(unlisted)))}  # the first
    gone = []
    for path in known:
        if path in seen:
            continue
        holders = [a for a in _folders_of(path) if a in rank]
        folder = min(holders, key=rank.__getitem__) if holders else None
        if folder is None:
            gone.append(path)
        else:
            kept[folder] += 1
    return gone, kept


def _folders_of(relpath: bytes) -> Iterator[bytes]:
    """The folders holding ``relpath``, as the walk names them: ``.`` (the root), then
    each ancestor (``b"a/b/c.jpg"``: ``.``, ``a``, ``a/b``)."""
    yield b"."
    end = relpath.find(b"/")
    while end != -1:
        yield relpath[:end]
        end = relpath.find(b"/", end + 1)


#: The modification-time resolutions of the file systems a photo library lives on,
#: coarsest first (ns): FAT (2 s), HFS+ and some SMB servers (1 s), exFAT (10 ms),
#: some copy tools (1 ms, 1 us), NTFS (100 ns).
_MTIME_STEPS_NS = (2_000_000_000, 1_000_000_000, 10_000_000, 1_000_000, 1_000, 100)


def _mtime_resolution(mtime_ns: int) -> int:
    """The coarsest resolution ``mtime_ns`` is a whole multiple of (1: nanoseconds)."""
    return next((step for step in _MTIME_STEPS_NS if mtime_ns % step == 0), 1)


def same_mtime(stored_ns: int, current_ns: int) -> bool:
    """Whether two modification times of one file are the same time, seen by file
    systems of different resolutions.

    The same disk seen through exFAT, FAT or an SMB server gives times rounded to
    10 ms, 2 s or 1 s: exact equality would analyse every file again.  The
    resolution of each value is read from the value itself (the coarsest of
    :data:`_MTIME_STEPS_NS` it is a multiple of); when they differ, the times
    agree if they are less than the coarser resolution apart (rounded down or
    up, as file systems do).  Values of the same resolution must be equal.

    This is rsync's ``--modify-window`` (rsync's own advice for FAT is 1 s), only
    narrower: the window is the coarser side's resolution, and only when one
    side is that coarse.  With the size equal too (the caller checks), a file
    is taken as unchanged wrongly only when it was rewritten in place, at the
    same size, within one step of the coarse clock (2 s at most), or when a
    nanosecond time happens to be a whole multiple of 10 ms (one in 10^7)
    and is then changed within 10 ms.  The stale mark of a catalog analysed
    afresh (-1) matches nothing.

    >>> same_mtime(1_700_000_000_123_456_789, 1_700_000_000_120_000_000)  # exFAT: 10 ms
    True
    >>> same_mtime(1_700_000_000_123_456_789, 1_700_000_002_000_000_000)  # FAT: 2 s
    True
    >>> same_mtime(1_700_000_000_000_000_000, 1_700_000_002_000_000_000)  # both 2 s
    False
    """
    if stored_ns == current_ns:
        return True
    if stored_ns == _STALE_MTIME or current_ns == _STALE_MTIME:
        return False
    # Two values of one resolution differ by a whole step or more: only equal ones agree.
    coarser = max(_mtime_resolution(stored_ns), _mtime_resolution(current_ns))
    return abs(stored_ns - current_ns) < coarser


def _moves(
    gone: list[bytes], known: dict[bytes, FileState], found: list[FoundFile]
) -> list[tuple[bytes, bytes]]:
    """``(old, new)`` for each file gone from ``old`` and found at ``new`` (moved, or
    renamed, or both), so its record is reused instead of decoding the file again.

    The key is what a move keeps and the catalog holds: the size in bytes, the
    file name, and the modification time, compared as :func:`same_mtime`
    compares it for unchanged files (a disk with coarse times, exFAT, FAT or
    SMB, keeps them rounded).  A key must name one gone record and one new
    file; where several share it (copies moved together, or times within one
    step of a coarse clock), the parent folder's name must tell them apart
    too, else they are analysed.  Then a file renamed where it is (``IMG_0031.jpg``
    to ``Beach.jpg``: a rename keeps the size and the time) is found among the
    files left, by its folder, size and time, again only where one gone record
    and one new file share them.  Last, a file moved *and* renamed (photo
    organisers file ``IMG_0031.jpg`` as ``2026/11/20261123_140307.jpg``) is found
    by its size and time alone, where exactly one gone record and one new file
    share them in the whole folder.  Only readable records of this analysis are
    reused.  A different file with the same size and time (and name or folder),
    which appears while the other disappears, would take over its scores: that
    needs a tool that copied the time from the gone file.
    """
    pairs: list[tuple[bytes, bytes]] = []
    for key, by_parent in ((_name_key, True), (_folder_key, False), (_size_key, False)):
        olds, news = {old for old, _ in pairs}, {new for _, new in pairs}
        left_old = [p for p in gone if p not in olds]
        left_new = [f for f in found if f.relpath not in news]
        pairs += _paired(left_old, known, left_new, key, by_parent=by_parent)
    return pairs


def _in_hidden_folder(relpath: bytes) -> bool:
    """Whether ``relpath`` lies in a folder whose name starts with ``.`` (one a scan
    enters only with ``include_hidden``).

    >>> _in_hidden_folder(b".edits/a.jpg"), _in_hidden_folder(b"day1/.x.jpg")
    (True, False)
    """
    return any(part.startswith(b".") for part in relpath.split(b"/")[:-1])


def _name_key(relpath: bytes, size: int) -> tuple[int, bytes]:
    return size, relpath.rsplit(b"/", 1)[-1]


def _folder_key(relpath: bytes, size: int) -> tuple[int, bytes]:
    parts = relpath.rsplit(b"/", 1)
    return size, parts[0] if len(parts) > 1 else b""


def _size_key(_relpath: bytes, size: int) -> tuple[int]:
    return (size,)


def _paired(
    gone: list[bytes], known: dict[bytes, FileState], found: list[FoundFile],
    key: Callable[[bytes, int], tuple], *, by_parent: bool,
) -> list[tuple[bytes, bytes]]:
    """The moves :func:`_moves` finds with one ``key`` (what old and new share)."""
    olds: dict[tuple, list[tuple[bytes, int]]] = {}
    for relpath in gone:
        state = known[relpath]
        if state.status == "ok" and state.mtime_ns != _STALE_MTIME:
            olds.setdefault(key(relpath, state.size), []).append((relpath, state.mtime_ns))
    if not olds:
        return []
    news: dict[tuple, list[tuple[bytes, int]]] = {}
    for f in found:
        if f.error is None and f.relpath not in known:
            news.setdefault(key(f.relpath, f.size), []).append((f.relpath, f.mtime_ns))
    pairs = []
    for k, old_files in olds.items():
        for old, new in _same_time_groups(old_files, news.get(k, [])):
            if len(old) == 1 and len(new) == 1:
                pairs.append((old[0], new[0]))
            elif old and new and by_parent:
                pairs += _pair_by_parent(old, new)
    return pairs


def _same_time_groups(
    old: list[tuple[bytes, int]], new: list[tuple[bytes, int]]
) -> list[tuple[list[bytes], list[bytes]]]:
    """The gone and new files of one size and name, grouped by :func:`same_mtime`:
    two files are in one group when a chain of files of agreeing times links them
    (the relation is not transitive), so a group with one file of each side is a
    move no other file could claim.

    Not every pair is compared (3 000 same-sized files renamed in one folder, a
    dataset of PGM or BMP files, took 48 s that way, and 4 times as long for twice
    as many, before any file was analysed): equal times agree, and two
    unequal ones only when the coarser is less than its own step from the finer
    (two times of one resolution a step apart or more do not), so each time looks
    for partners of finer resolutions within its step only, by bisection.
    """
    files = [(path, mtime, True) for path, mtime in old] + [(p, m, False) for p, m in new]
    group = list(range(len(files)))

    def top(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    # Equal times agree with the same files: one group a time (gone files, or new
    # ones, alone in a group pair nothing, together or apart).
    first: dict[int, int] = {}
    by_step: dict[int, list[tuple[int, int]]] = {}
    for i, (_, mtime, _) in enumerate(files):
        group[top(i)] = top(first.setdefault(mtime, i))
        by_step.setdefault(_mtime_resolution(mtime), []).append((mtime, i))
    for times in by_step.values():
        times.sort()
    for i, (_, mtime, is_old) in enumerate(files):
        step = _mtime_resolution(mtime)
        for finer, times in by_step.items():
            if finer >= step:
                continue
            lo = bisect.bisect_right(times, (mtime - step, len(files)))
            hi = bisect.bisect_left(times, (mtime + step, -1))
            for other, j in times[lo:hi]:
                if files[j][2] != is_old and same_mtime(other, mtime):
                    group[top(i)] = top(j)
    out: dict[int, tuple[list[bytes], list[bytes]]] = {}
    for i, (path, _, is_old) in enumerate(files):
        out.setdefault(top(i), ([], []))[0 if is_old else 1].append(path)
    return list(out.values())


def _pair_by_parent(old: list[bytes], new: list[bytes]) -> list[tuple[bytes, bytes]]:
    """The pairs of files of one key that the name of their folder tells apart."""

    def parent(relpath: bytes) -> bytes:
        parts = relpath.rsplit(b"/", 2)
        return parts[-2] if len(parts) > 1 else b""

    by_old: dict[bytes, list[bytes]] = {}
    by_new: dict[bytes, list[bytes]] = {}
    for relpath in old:
        by_old.setdefault(parent(relpath), []).append(relpath)
    for relpath in new:
        by_new.setdefault(parent(relpath), []).append(relpath)
    return [
        (o[0], by_new[name][0]) for name, o in by_old.items()
        if len(o) == 1 and len(by_new.get(name, [])) == 1
    ]


def _check_root(catalog: Catalog, root: Path, found: list[FoundFile]) -> None:
    """Refuse to scan ``root`` into a catalog made for another folder, or remember
    ``root`` as the catalog's folder.

    A catalog inside ``root`` is ``root``'s (one that travels with its disk is
    not refused at a new mount path).  One outside it that was made for another
    folder is refused when fewer than half of its records are found at the same
    paths: scanning would forget them (a sub-folder, the wrong mount).  With
    half or more found, the folder was moved or mounted elsewhere: accepted,
    and the new path remembered.
    """
    here = str(root.resolve())
    stored = catalog.get_setting("root")
    inside = catalog.path.resolve().is_relative_to(here)
    if isinstance(stored, str) and stored != here and not inside:
        known = catalog.file_states()
        kept = sum(1 for f in found if f.relpath in known)
        if 2 * kept < len(known):
            raise InvalidParameterError(_other_root_message(catalog, stored, here, len(known)))
    catalog.set_setting("root", here)


def _other_root_message(catalog: Catalog, stored: str, here: str, records: int) -> str:
    """The refusal of :func:`_check_root`, with the commands that fix it."""
    import shlex

    where = str(catalog.path)
    text = (
        f"the catalog {where!r} was made for the folder {stored!r}, not {here!r}: scanning "
        f"{here!r} into it would forget most of its {records} records. Scan {stored!r} "
        f"with it ('boda scan {shlex.quote(stored)} --catalog {shlex.quote(where)}')"
    )
    if Path(here).is_relative_to(stored):
        under = Path(here).relative_to(stored).as_posix()
        text += (
            f", and report this sub-folder with 'boda report {shlex.quote(stored)} --catalog "
            f"{shlex.quote(where)} --under {shlex.quote(under + '/')}'"
        )
    return text + (
        "; or give this folder a catalog of its own (another --catalog file, or none: "
        "DIR/.boda/catalog.db). Nothing was changed"
    )


def _excludes(
    catalog: Catalog, root: Path, summary: ScanSummary, given: list[str],
    default_excludes: bool | None, reset: bool,
) -> Excludes:
    """The excludes of this scan: ``given`` added to those remembered in the catalog
    (unless ``reset``), ``DIR/.bodaignore``'s, and the defaults (unless turned off,
    now or by an earlier scan); told in ``summary`` (the scan remembers them)."""
    stored = {} if reset else catalog.get_setting("excludes", {})
    stored = stored if isinstance(stored, dict) else {}
    remembered = []
    for pattern in stored.get("patterns", []) if isinstance(stored.get("patterns"), list) else []:
        try:  # a pattern this boda would refuse (a hand-edited catalog) is left out
            if isinstance(pattern, str) and Excludes([pattern], default_excludes=False):
                remembered.append(pattern)
        except InvalidParameterError:
            continue
    patterns = remembered + [p for p in given if p not in remembered]
    if default_excludes is None:
        default_excludes = stored.get("default_excludes") is not False
    summary.ignore_file = read_ignore_file(root)
    summary.excludes = patterns
    summary.remembered_excludes = [p for p in remembered if p not in given]
    summary.default_excludes = default_excludes
    return Excludes(patterns, ignore_file=summary.ignore_file, default_excludes=default_excludes)


def _remembered_thresholds(catalog: Catalog) -> dict[str, float]:
    """The thresholds other than the defaults that an earlier scan of this catalog used.

    A catalog of an older boda has only the last scan's full ``thresholds``:
    its values other than today's defaults count.  Names this boda does not
    know and values it would refuse are left out.
    """
    stored = catalog.get_setting("threshold_overrides")
    if not isinstance(stored, dict):
        stored = catalog.get_setting("thresholds")
    if not isinstance(stored, dict):
        return {}
    defaults = default_thresholds()
    out = {}
    for name, value in stored.items():
        if name not in defaults or value == defaults[name]:
            continue
        try:
            out[name] = resolve_thresholds({name: value})[name]
        except InvalidParameterError:
            continue
    return out


def _given_thresholds(thresholds: object) -> dict[str, float]:
    """The thresholds a caller gave, by name (checked by :func:`resolve_thresholds`)."""
    from boda.quality import QualityThresholds

    resolve_thresholds(thresholds)  # raises for unknown names and bad values
    if thresholds is None:
        return {}
    if isinstance(thresholds, QualityThresholds):
        return dataclasses.asdict(thresholds)
    return dict(thresholds)  # a Mapping: resolve_thresholds said so


def _link_records(found: list[FoundFile]) -> tuple[list[FoundFile], list[ImageRecord]]:
    """Split off the file symlinks whose target the walk found as a file of its own.

    Such a link is recorded as a link (not analysed): analysed, it would be
    its own target's exact duplicate, and deleting the "copy" would leave the
    link dangling.  A link to a file outside the folder (or one the walk
    skips, in a hidden folder say) is scanned as a file.
    """
    if not any(f.link_to is not None for f in found):
        return found, []
    files = {f.relpath for f in found if f.link_to is None and not f.unlisted_folder}
    kept: list[FoundFile] = []
    links: list[ImageRecord] = []
    for f in found:
        if f.link_to is not None and f.error is None and f.link_to in files:
            links.append(
                ImageRecord(f.relpath, f.size, f.mtime_ns, "link", link_to=f.link_to)
            )
        else:
            kept.append(f)
    return kept, links


def _walk(
    root: Path, include_hidden: bool, raw_files: dict[str, int], step: StepProgress | None,
    folder_links: list[tuple[str, str]] | None = None,
    excludes: Excludes | None = None, summary: ScanSummary | None = None,
) -> list[FoundFile]:
    """Every file the walk finds, with ``step("walk", found, None)`` as it goes; what
    ``excludes`` skipped and the iCloud placeholders go to ``summary``."""
    found: list[FoundFile] = []
    skipped: dict[str, int] = {}
    icloud: list[str] = []
    for f in walk_images(
        root, include_hidden=include_hidden, raw_files=raw_files, folder_links=folder_links,
        excludes=excludes, skipped=skipped, icloud=icloud,
    ):
        found.append(f)
        if step and len(found) % _STEP_EVERY == 0:
            step("walk", len(found), None)
    if step:
        step("walk", len(found), len(found))
    if folder_links:
        folder_links.sort()  # path order, as everything else a scan lists
    if summary is not None:
        if excludes is not None:  # the .bodaignore files below the top, as paths from it
            summary.ignore_file = [*summary.ignore_file, *excludes.nested_patterns]
        defaults = excludes.default_patterns if excludes is not None else frozenset()
        summary.default_skipped = {p: n for p, n in skipped.items() if p in defaults}
        summary.skipped = {p: n for p, n in skipped.items() if p not in defaults}
        summary.icloud_placeholders = sorted(icloud)
    return found


def _catalog_files(root: Path, catalog_path: Path) -> frozenset[bytes]:
    """The paths relative to ``root`` (as the walk gives them) of the catalog's own
    files, where it lies in ``root``: the catalog, its ``-wal``, ``-shm``,
    ``-journal`` and ``.lock`` files, and its marks file with its own.  A catalog
    named like an image (``--catalog DIR/shoot.png``) is never scanned as one."""
    from boda.catalog import marks_path
    from boda.scan._walk import _inside

    real_root = os.fsencode(os.path.realpath(root))
    catalog = Path(os.path.realpath(catalog_path))
    marks = marks_path(catalog).name
    names = [catalog.name + end for end in ("", "-wal", "-shm", "-journal", ".lock")]
    names += [marks + end for end in ("", "-wal", "-shm", "-journal")]
    inside = (_inside(os.fsencode(catalog.parent / name), real_root) for name in names)
    return frozenset(path for path in inside if path is not None)


#: How many paths of each kind of file not scanned the catalog keeps, for the report.
NOT_SCANNED_EXAMPLES = 20


def _not_scanned(summary: ScanSummary) -> dict[str, object]:
    """What the walk passed over, as the console said it, for ``boda report`` and
    ``boda serve``: counts, and the first few paths of each kind."""
    keep = NOT_SCANNED_EXAMPLES
    return {
        "icloud_placeholders": {"count": len(summary.icloud_placeholders),
                                "first": summary.icloud_placeholders[:keep]},
        "folder_links": {"count": len(summary.folder_links),
                         "first": [list(pair) for pair in summary.folder_links[:keep]]},
        "default_skipped": _shown_keys(summary.default_skipped),
        "skipped": _shown_keys(summary.skipped),
    }


def _shown_keys(counts: dict[str, int]) -> dict[str, int]:
    """Counts by pattern, the patterns fit to show and store (:func:`display_path`)."""
    return {display_path(pattern): count for pattern, count in counts.items()}


#: The setting that says what the stored flags were derived from (:func:`_flag_inputs`).
FLAGS_FROM_KEY = "flags_derived_from"


@functools.cache
def _flag_code() -> str:
    """A hash of the code that derives the flags (its source files' bytes, so a boda
    whose rules changed derives them again); read once a process."""
    import hashlib

    from boda import __version__, duplicates
    from boda.catalog import _catalog
    from boda.scan import _flags

    code = hashlib.sha256(f"{__version__} {ANALYSIS_VERSION}".encode())
    for module in (_flags, duplicates._clusters, duplicates._hashes, _catalog):
        try:
            code.update(Path(module.__file__).read_bytes())
        except (OSError, TypeError):  # no source at hand: no way to tell, derive again
            code.update(os.urandom(16))
    return code.hexdigest()


def _flag_inputs(thresholds: dict[str, float], mirrored: bool, content: int) -> dict:
    """What a scan's flags are derived from: the records (the catalog's content
    version, counted up by every scan that changes them), the thresholds, the
    mirrored option, and the code that derives them (:func:`_flag_code`)."""
    return {"content": content, "thresholds": thresholds, "mirrored": mirrored,
            "code": _flag_code()}


def _flags_unchanged(
    derived_from: object, catalog: Catalog, thresholds: dict[str, float], mirrored: bool
) -> bool:
    """Whether the flags stored before this scan (fresh, not stale) came from exactly
    these inputs and are still as they were stored (another boda's scan may derive
    them by its own rules and not say so): then deriving them again (half of a rescan
    that finds nothing new in a large folder) would give the same flags."""
    return (
        isinstance(derived_from, dict)
        and derived_from.get("inputs")
        == _flag_inputs(thresholds, mirrored, catalog.content_version())
        and derived_from.get("counts") == catalog.flag_counts()
    )


def _stored_flags(catalog: Catalog) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The failed files and the images per flag as the catalog holds them (a scan that
    did not derive the flags: kept as they were, or stale)."""
    failed = [(display_path(p), e or "") for p, e in catalog.failures()]
    return failed, catalog.flag_counts()


def _derive_flags(
    catalog: Catalog, thresholds: dict[str, float], step: StepProgress | None,
    mirrored: bool = False, summary: ScanSummary | None = None,
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Derive every flag from the catalog and store them; return the failed files
    and the images per flag.  With ``mirrored``, mirror images are near duplicates
    too, and ``summary.without_mirrored_hash`` counts the images with a pHash but no
    mirrored pHash (they take no part in mirrored matching).

    A light pass (:meth:`Catalog.flag_inputs`: ids, statuses, scores, hashes, sizes)
    in path order, so memory holds only what the duplicate grouping needs, not
    the records; the flags are written back in batches, in one transaction.
    Steps: ``"flags"`` (records read), ``"duplicates"``, ``"distances"``, ``"save"``.
    """
    total = catalog.count_all()
    deriver = FlagDeriver(thresholds, mirrored=mirrored)
    failed: list[tuple[str, str]] = []
    if step:
        step("flags", 0, total)
    read = 0
    for read, row in enumerate(catalog.flag_inputs(mirrored=mirrored), 1):
        if row.status == "ok":
            deriver.add(
                row.id, row.scores, row.pixel_hash, row.phash, size=(row.width, row.height),
                phash_mirrored=row.phash_mirrored,
            )
        elif row.status == "error":
            failed.append((display_path(row.relpath), row.error or ""))
        if step and read % _STEP_EVERY == 0:
            step("flags", read, total)
    if step:
        step("flags", read, read)
    rows = deriver.image_rows
    rows += deriver.size_rows()
    rows += deriver.duplicate_rows(step)
    mirrored_ids, without_mirrored = deriver.mirrored_ids, deriver.without_mirrored
    del deriver
    if step:
        step("save", 0, len(rows))
    catalog.replace_flags(
        rows, progress=(lambda n: step("save", n, len(rows))) if step else None,
        mirrored_ids=mirrored_ids,
    )
    counts: dict[str, int] = {}
    for _, name, _, _ in rows:  # one row per (image, flag), as stored
        counts[name] = counts.get(name, 0) + 1
    if summary is not None:
        summary.without_mirrored_hash = without_mirrored
    return failed, counts


def _vanished(root: bytes, record: ImageRecord) -> bool:
    """Whether ``record`` failed because its file was deleted after the listing."""
    return (
        record.status == "error"
        and record.error == "no such file"
        and not os.path.lexists(os.path.join(root, record.relpath))
    )


def _write_failed(
    catalog_path: Path, exc: sqlite3.DatabaseError, saved: int, to_analyse: int | None
) -> CatalogError:
    """The one-line error of a catalog read or write that failed in the middle of a scan
    (``to_analyse`` None: before the files to analyse were counted)."""
    where = str(catalog_path)
    if not isinstance(exc, sqlite3.OperationalError):  # SQLITE_CORRUPT, SQLITE_NOTADB
        return CatalogError(
            f"the catalog {where!r} is damaged ({exc}); move it away and scan again (every "
            "file is analysed afresh)"
        )
    done = (
        "no file was analysed yet and the catalog is intact" if to_analyse is None
        else f"{saved} of the {to_analyse} files to analyse are saved and the catalog is intact"
    )
    if disk_full(exc, Path(catalog_path).parent):
        return CatalogError(
            f"the disk holding the catalog {where!r} is full ({exc}); {done}: free some "
            "space (or choose another place with --catalog) and run the scan again to finish"
        )
    if "readonly" in str(exc):
        return CatalogError(
            f"cannot write the catalog at {where!r} ({exc}); {done}: choose a writable place "
            "with --catalog ('boda report' can still read it)"
        )
    return CatalogError(
        f"cannot write the catalog at {where!r} ({exc}); {done}: run the scan again to finish"
    )


def _exclude_patterns(exclude: object) -> list[str]:
    """``exclude`` as a list of patterns (None: none), or a clear error."""
    if exclude is None:
        return []
    try:
        patterns = list(exclude)  # type: ignore[call-overload]
    except TypeError:
        patterns = None
    if patterns is None or not all(isinstance(p, str) for p in patterns):
        raise InvalidParameterError(
            f"exclude takes a list of patterns (strings such as 'Export/' or '*.tmp.jpg') "
            f"or None, got {exclude!r}"
        )
    return patterns


def scan(
    root: str | Path,
    *,
    catalog_path: str | Path | None = None,
    workers: int | None = None,
    thresholds: dict[str, float] | None = None,
    max_side: int | None = None,
    include_hidden: bool = False,
    progress: Callable[[int, int, ImageRecord | None], None] | None = None,
    reset_thresholds: bool = False,
    step: StepProgress | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    exclude: Sequence[str] | None = (),
    default_excludes: bool | None = None,
    reset_excludes: bool = False,
    engine: str = "local",
    address: str | None = None,
    mirrored: bool | None = None,
    reanalyze: bool = False,
    describe: bool | None = None,
) -> ScanSummary:
    """Scan ``root`` recursively and bring its catalog up to date.

    New and changed files (by size and modification time) are decoded at
    ``max_side`` (draft decoding) and measured; unchanged ones are skipped;
    rows of deleted files are removed.  Results are committed in batches of
    :data:`BATCH_SIZE`, so an interrupted scan keeps its work and the next one
    finishes the rest.  When the catalog was made with another ``max_side`` or
    by a boda whose measures differ (:data:`boda.scan.ANALYSIS_VERSION`), every
    file is analysed again, so one catalog never mixes two kinds of scores.
    Files that are gone are forgotten before the analysis starts, so an
    interrupted scan forgets them too.  Flags are then re-derived for the
    whole folder from the stored scores and the thresholds (a light pass over
    the catalog: no image is decoded again, no record is held in memory).
    User files are only read.

    A scan stopped by Ctrl-C (or SIGTERM, SIGHUP in the CLI) keeps what it
    committed and ends at once: the flags of a catalog of more than
    :data:`DERIVE_ON_STOP_LIMIT` records are then not derived but marked
    stale (``summary.flags_stale``; the report says so) until the next scan.

    Thresholds are remembered: those other than the defaults are stored in the
    catalog, and a later scan without them uses them again
    (``summary.remembered_thresholds`` names them) until ``reset_thresholds``.
    A file symlink to another file of the folder is recorded as a link
    (``status="link"``), not analysed, and is in no duplicate group.

    What real disks hold that is not the user's photos is skipped by default
    (:data:`boda.scan.DEFAULT_EXCLUDES`: AppleDouble ``._*`` files, NAS
    thumbnail folders and recycle bins, photo-library packages...) and counted
    in the summary; ``exclude`` patterns and ``ROOT/.bodaignore`` skip more
    (syntax: :mod:`boda.scan._exclude`, docs/scan.md).  ``exclude`` patterns and
    ``default_excludes`` are remembered like thresholds; catalogued files an
    exclude skips now are forgotten (``summary.excluded``).

    A file renamed or moved inside the folder keeps its record, thumbnail and
    culling marks without being decoded again when it is found under its new
    path in the same scan that misses the old one (same size, modification
    time and name; ``summary.moved``).  Modification times are compared at
    the coarser resolution of the two (:func:`same_mtime`), so the same disk
    seen through exFAT, FAT or SMB is not analysed again.  A catalog outside
    ``root`` made for another folder is refused when scanning would forget
    most of it (:class:`InvalidParameterError`).

    Parameters
    ----------
    root : str or pathlib.Path
        The folder to scan.
    catalog_path : path, optional
        Default ``ROOT/.boda/catalog.db``; a folder holding a scan's catalog
        stands for it (:func:`boda.catalog.resolve_catalog_path`).
    workers : int, optional
        Processes to decode and measure with (default: all cores).
    thresholds : dict, optional
        Thresholds by flag name (see :func:`boda.scan.default_thresholds`);
        the others are the ones remembered in the catalog, else the defaults.
    max_side : int, optional
        Analysis resolution (default :data:`boda.quality.ANALYSIS_MAX_SIDE`).
    include_hidden : bool
        Also enter folders whose names start with a dot.
    progress : callable, optional
        Called as ``progress(done, to_analyse, record)`` after each file
        (``record`` is None for the initial call).
    step : callable, optional
        Called as ``step(name, done, total)`` during the other long steps:
        ``"walk"`` (files found; ``total`` None until the end), ``"compare"``
        (files compared with the catalog), then after the analysis ``"flags"``
        (records read), ``"duplicates"`` (hashes clustered; ``total`` None
        until the clustering knows it), ``"distances"`` (near-duplicate groups
        measured) and ``"save"`` (flags written).
    reset_thresholds : bool
        Forget the thresholds remembered in the catalog: the defaults, updated
        with ``thresholds``, apply (and are remembered).
    max_pixels : int or None
        Decompression-bomb guard of every read (:func:`boda.io.open_image`): a
        file over it is recorded as unreadable with the reason, and the scan
        goes on.  None (a trusted folder) disables it; a file other than a JPEG
        above Pillow's own limit also needs ``PIL.Image.MAX_IMAGE_PIXELS = None``
        (the workers take this process's value; ``boda scan --max-pixels`` does
        both).  It changes no score, so unlike ``max_side`` it is not part of
        the catalog's analysis settings: failed files are retried by every scan,
        so a later scan with a higher limit reads the files this one refused.
    exclude : sequence of str, optional
        Patterns of files and folders to skip (``.gitignore``-like, relative to
        ``root``: ``"Export/"``, ``"*.tmp.jpg"``, ``"Photos/2019/"``, ``"!keep/"``),
        added to those remembered from earlier scans.  Default (or None): none
        added.
    default_excludes : bool, optional
        False scans what the default excludes skip; None (default): as the
        last scan of the catalog did (True for a new one).
    reset_excludes : bool
        Forget the remembered ``exclude`` patterns and ``default_excludes``.
    engine : {"local", "ray"}
        Where the files are analysed: ``"local"``, a process pool on this
        machine; ``"ray"``, Ray tasks on a local Ray runtime of ``workers``
        CPUs or on the cluster at ``address`` (needs ``boda[ray]``; every
        node must see the folder at the same path).  The records, the catalog
        and everything else are the same.
    address : str, optional
        The Ray cluster to run on (``"auto"``, ``"HOST:PORT"``,
        ``"ray://HOST:PORT"``); only with ``engine="ray"``.  None starts a
        local Ray runtime; one the caller initialised is used as it is.
    mirrored : bool, optional
        True: an image and a left-right mirror image of it (a horizontally
        flipped copy, possibly resized or recompressed) are near duplicates too
        (:func:`boda.duplicates.find_near_duplicates_mirrored`).  Off by default:
        it makes up to 1.7 times as many chance pairs between unrelated images
        (docs/duplicates.md).  Remembered like thresholds: None (default) does
        as the last scan of the catalog did.  Every scan stores each image's
        mirrored pHash in its record's ``extra`` (``phash_mirrored``); records
        analysed by a boda from before it have none and take no part in
        mirrored matching (``summary.without_mirrored_hash`` counts them).
    reanalyze : bool
        Analyse every file afresh, unchanged ones too (after upgrading boda
        within one analysis version, to give older records the mirrored pHash,
        or when in doubt).  Done as a change of analysis settings is: every
        record is marked for analysis first, so a scan stopped midway is
        finished by the next scan, with or without ``reanalyze``.  Scores are
        replaced; culling marks, which live beside the catalog, are kept.
    describe : bool, optional
        Also measure what decides no flag: each image's dominant colours (the
        report's swatches), ``colorfulness`` and ``edge_density``
        (:data:`boda.scan.DESCRIPTIVE_MEASURES`); about a fifth of the time on
        folders of small images.  Remembered like thresholds: None (default)
        does as the catalog's last scan did; a new catalog is not described, a
        catalog made before this option is.  Turning it on or off is a change of
        analysis, as another ``max_side`` is: every file is analysed again, so
        that all records hold the same measures.

    Returns
    -------
    ScanSummary

    Raises
    ------
    InvalidParameterError
        ``root`` is not a folder, or an option is out of range.
    MissingDependencyError
        ``engine="ray"`` and Ray is not installed.
    BodaError
        ``engine="ray"`` and the Ray cluster at ``address`` cannot be reached.
    CatalogError
        The catalog cannot be opened or written (the message says how many
        files were saved: a rerun finishes the rest), was made by a newer
        boda, or lists files while ``root`` holds no images at all (an
        unmounted card or share: nothing is changed).  Files under a folder
        that cannot be listed are kept, and the folder is reported as failed.
    """
    from boda.quality import ANALYSIS_MAX_SIDE

    root = Path(root)
    if not root.exists():
        raise InvalidParameterError(f"{str(root)!r} does not exist; give the folder to scan")
    if not root.is_dir():
        raise InvalidParameterError(f"{str(root)!r} is not a folder; give the folder to scan")
    workers = default_workers() if workers is None else workers
    # A float or a bool would fail only when the pool starts, after the walk.
    if not whole_number(workers) or workers < 1:
        raise InvalidParameterError(
            f"workers must be a whole number of at least 1, got {workers!r}"
        )
    workers = int(workers)
    if engine not in ENGINES:
        raise InvalidParameterError(
            f"engine must be one of {', '.join(map(repr, ENGINES))}, got {engine!r}"
        )
    if address is not None and engine != "ray":
        raise InvalidParameterError(
            f"address {address!r} is a Ray cluster's; it needs engine='ray' (--engine ray)"
        )
    if engine == "ray":
        check_ray(address)  # not installed, or no cluster there: before any work
    max_side = ANALYSIS_MAX_SIDE if max_side is None else max_side
    # Checked here: a worker would record the same error for every file and
    # replace the catalog's good scores with it.
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1:
        raise InvalidParameterError(
            f"max_side must be a positive number of pixels, got {max_side!r} "
            f"(default {ANALYSIS_MAX_SIDE})"
        )
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1
    ):
        raise InvalidParameterError(
            f"max_pixels must be a positive number of pixels or None, got {max_pixels!r}"
        )
    given = _given_thresholds(thresholds)  # bad names and values fail before any work
    if not isinstance(reanalyze, bool):
        raise InvalidParameterError(f"reanalyze must be True or False, got {reanalyze!r}")
    if describe is not None and not isinstance(describe, bool):
        raise InvalidParameterError(
            f"describe must be True, False or None (as the last scan), got {describe!r}"
        )
    if mirrored is not None and not isinstance(mirrored, bool):
        raise InvalidParameterError(
            f"mirrored must be True, False or None (as the last scan), got {mirrored!r}"
        )
    if isinstance(exclude, str):
        raise InvalidParameterError(
            f"exclude takes a list of patterns, got the string {exclude!r}; write [{exclude!r}]"
        )
    exclude = _exclude_patterns(exclude)
    Excludes(exclude, default_excludes=False)  # a bad pattern fails before any work
    read_ignore_file(root)  # an unreadable .bodaignore too
    # Given as it is: a trailing "/" says "a folder" (Path() would drop it).
    catalog_path = catalog_path or default_catalog_path(root)
    started = time.perf_counter()
    summary = ScanSummary(root=root, catalog_path=Path(catalog_path), engine=engine)

    with Catalog(catalog_path) as catalog, _only_scan_of(catalog.path):
        catalog_path = summary.catalog_path = catalog.path  # a folder stands for its catalog
        _refuse_newer_analysis(catalog)
        summary.describe = _described(catalog) if describe is None else describe
        summary.remembered_describe = describe is None and summary.describe
        analysis = _analysis(max_side, summary.describe)
        remembered = {} if reset_thresholds else _remembered_thresholds(catalog)
        resolved = summary.thresholds = resolve_thresholds({**remembered, **given})
        summary.remembered_thresholds = {
            k: v for k, v in remembered.items() if k not in given
        }
        summary.mirrored = (
            catalog.mirrored_scan() if mirrored is None else mirrored
        )
        summary.remembered_mirrored = mirrored is None and summary.mirrored
        excludes = _excludes(
            catalog, root, summary, exclude, default_excludes, reset_excludes
        )
        found = _walk(
            root, include_hidden, summary.raw_files, step, summary.folder_links, excludes,
            summary,
        )
        own = _catalog_files(root, catalog.path)
        found = [f for f in found if f.relpath not in own]
        if not found:
            _refuse_emptying(catalog, root, summary)
        try:  # the scan's first writes: a full disk is said as during the analysis
            _check_root(catalog, root, found)  # before anything is written
            catalog.set_setting(
                "excludes",
                {"patterns": summary.excludes, "default_excludes": summary.default_excludes},
            )
        except sqlite3.DatabaseError as exc:
            raise _write_failed(catalog_path, exc, 0, None) from None
        summary.total = len(found)
        found, links = _link_records(found)
        summary.links = len(links)
        saved = to_analyse = 0
        stops = _StopOnce()  # armed when the analysis starts
        try:
            # Read before a change of analysis clears the stored times, so that moved
            # files are still paired by them and take their marks along.
            known = catalog.file_states()
            # Scores of another analysis are not comparable: every file is analysed again.
            afresh = catalog.begin_analysis(analysis, again=reanalyze)
            if step:
                step("compare", 0, len(found))
            seen = {f.relpath for f in found} | {r.relpath for r in links}
            gone, kept = _gone_and_kept(known, seen, found)
            # Files an exclude skips now are still there: forgotten, but not as
            # deleted, and never taken for the old place of a moved file.  So are the
            # files of hidden folders an earlier scan entered (--include-hidden) that
            # are still on the disk (one moved out of such a folder is a move).
            skipped_now = [
                p for p in gone
                if excludes.skips(os.fsdecode(p)) or (
                    not include_hidden and _in_hidden_folder(p)
                    and os.path.lexists(os.path.join(os.fsencode(root), p))
                )
            ]
            if skipped_now:
                skipped_set = set(skipped_now)
                gone = [p for p in gone if p not in skipped_set]
            moves = _moves(gone, known, found)
            if afresh:  # as begin_analysis left them: no file is unchanged
                known = {
                    path: dataclasses.replace(state, mtime_ns=_STALE_MTIME)
                    for path, state in known.items()
                }
            # Until they are derived again at the end, the stored flags may not
            # match the records (a kill -9 leaves the mark for the report to show).
            derived_from = None if catalog.flags_stale() else catalog.get_setting(FLAGS_FROM_KEY)
            catalog.mark_flags_stale()
            if moves:
                _move_marks(catalog.path, moves)  # first: a rerun finds the move again
                catalog.move(moves)
                moved_from = {old for old, _ in moves}
                gone = [p for p in gone if p not in moved_from]
                for old, new in moves:
                    known[new] = known.pop(old)
            summary.moved = len(moves)
            moved_to = {new for _, new in moves}
            # The listing is complete: files that are gone are forgotten now, so a
            # scan interrupted below reports no file that no longer exists.
            summary.removed = catalog.remove(gone)
            summary.excluded = catalog.remove(skipped_now)
            jobs = []
            for compared, f in enumerate(found, 1):
                if step and compared % _STEP_EVERY == 0:
                    step("compare", compared, len(found))
                state = known.get(f.relpath)
                if (
                    f.error is None
                    and state is not None
                    and state.status == "ok"
                    and state.size == f.size
                    and same_mtime(state.mtime_ns, f.mtime_ns)
                ):
                    if f.relpath not in moved_to:
                        summary.unchanged += 1
                else:
                    if f.unlisted_folder and kept.get(f.relpath):
                        f = dataclasses.replace(
                            f, error=f"{f.error} (its {kept[f.relpath]} catalogued files are "
                            "kept until it can be listed again)",
                        )
                    jobs.append((f, max_side, max_pixels, summary.describe))
            new_links = any(link.relpath not in known for link in links)
            del known, seen
            if step:
                step("compare", len(found), len(found))
            to_analyse = len(jobs)
            if jobs or new_links or moves or summary.removed or summary.excluded:
                catalog.note_content_changed()
            catalog.write_batch(links)  # cheap: links are not analysed
            # Until the scan ends, the catalog says it did not finish, and how many
            # files it had to analyse from when: a report after a `kill -9` counts
            # the files still to analyse from it (Catalog.analysed_since).
            catalog.set_setting(
                "last_scan",
                {"complete": not jobs, "started": time.time(), "to_analyse": len(jobs)},
            )
            # From here on, Ctrl-C stops the scan once: pressed again, it cannot cut the
            # stop (the pool, the last batch, the catalog's settings) short.
            stops.arm()
            batch: list[ImageRecord] = []
            done = 0
            vanished: list[ImageRecord] = []
            analysed_paths: list[bytes] = []  # for the marks that follow their pixels
            root_bytes = os.fsencode(root)
            results = None
            # Fork the workers before the caller's progress display starts its thread.
            processes = min(workers, len(jobs))
            raw = any(os.path.splitext(j[0].path)[1].lower() in RAW_EXTENSIONS for j in jobs)
            local = engine == "local"
            # A pool even for one file when workers were asked for: a file that kills
            # its process (out of memory, a decoder crash) then costs only itself.
            pool = _start_pool(processes, raw) if local and workers > 1 and jobs else None
            analysis_started = last_commit = time.monotonic()
            try:  # at once: the pool is stopped whenever the scan stops
                if progress:
                    progress(0, len(jobs), None)
                results = (
                    _iter_results(
                        jobs, pool, processes, _analyze_job,
                        restart=lambda: _start_pool(processes, raw),
                    ) if local
                    else ray_results(jobs, processes, address)  # Ray starts on the first record
                )
                for record in results:  # None: a while without a finished file
                    if record is not None:
                        done += 1
                        if _vanished(root_bytes, record):
                            vanished.append(record)  # deleted (or moved) since the listing
                        else:
                            batch.append(record)
                            analysed_paths.append(record.relpath)
                            summary.analysed += 1
                    if len(batch) >= BATCH_SIZE or (
                        batch and time.monotonic() - last_commit > BATCH_SECONDS
                    ):
                        # Swapped out first: a batch that fails to commit is not retried below.
                        pending, batch = batch, []
                        _write(catalog, pending)
                        saved += len(pending)
                        last_commit = time.monotonic()
                    if progress and record is not None:
                        progress(done, len(jobs), record)
            except KeyboardInterrupt:
                stops.stopping()
                summary.interrupted = True
            finally:
                if results is not None:
                    results.close()  # stops the pool at once if we were interrupted
                if pool is not None:  # one that results never got to use, too
                    _stop_pool(pool)
                _write(catalog, batch)
                saved += len(batch)
                # Read before their records go: the marks of files moved meanwhile follow.
                marked_away = _marked(catalog, vanished)
                # "No output shows a file that is gone", deleted during the scan too.
                summary.removed += catalog.remove([r.relpath for r in vanished])
                saved += len(vanished)
                summary.analysis_seconds = time.monotonic() - analysis_started
            summary.pending = to_analyse - saved
            # after the records are written: their pixel hashes say where a mark went
            summary.marks_followed = _follow_marks(catalog, gone, analysed_paths)
            if marked_away and stops.count < 2:  # stopped twice: at once, no second walk
                listed = {f.relpath for f in found} | {r.relpath for r in links}
                summary.marks_followed += _carry_marks_away(
                    root, catalog.path, marked_away, listed, include_hidden, excludes
                )

            # Stopped again while stopping: at once, as a large catalog is.
            stale = summary.interrupted and (
                stops.count > 1 or catalog.count_all() > DERIVE_ON_STOP_LIMIT
            )
            if not stale and _flags_unchanged(derived_from, catalog, resolved, summary.mirrored):
                catalog.keep_flags()  # nothing they come from changed: the stored flags stand
                summary.without_mirrored_hash = derived_from.get("without_mirrored_hash", 0)
                failed, counts = _stored_flags(catalog)
            elif not stale:
                try:
                    failed, counts = _derive_flags(
                        catalog, resolved, step, summary.mirrored, summary
                    )
                except KeyboardInterrupt:  # stopped while deriving: as prompt as above
                    stops.stopping()
                    summary.interrupted = stale = True
            if stale:  # the flags of the files that are gone went with them
                catalog.mark_flags_stale()  # and the groups they leave with one member
                summary.flags_stale = True
                failed, counts = _stored_flags(catalog)
            if (catalog.get_setting("thresholds"), catalog.get_setting(MIRRORED_SCAN_KEY)) != (
                resolved, summary.mirrored
            ):
                catalog.note_content_changed()  # other flags
            catalog.set_setting("thresholds", resolved)
            catalog.set_setting(MIRRORED_SCAN_KEY, summary.mirrored)
            defaults = default_thresholds()
            catalog.set_setting(
                "threshold_overrides", {k: v for k, v in resolved.items() if v != defaults[k]}
            )
            catalog.set_setting(
                "last_scan",
                {"complete": not summary.interrupted, "to_analyse": to_analyse,
                 "pending": summary.pending},
            )
            if not stale:  # what the flags now stored were derived from
                catalog.set_setting(FLAGS_FROM_KEY, {
                    "inputs": _flag_inputs(resolved, summary.mirrored, catalog.content_version()),
                    "without_mirrored_hash": summary.without_mirrored_hash,
                    "counts": counts,  # as stored (the derivation counts its rows)
                })
            catalog.set_setting("max_side", max_side)
            catalog.set_setting("raw_files", summary.raw_files)  # for the report
            catalog.set_setting("not_scanned", _not_scanned(summary))  # for the report, serve
        except sqlite3.DatabaseError as exc:  # a full disk, a read-only file, a damaged page
            raise _write_failed(catalog_path, exc, saved, to_analyse) from None
        finally:
            stops.release()

    summary.failed = failed
    summary.flag_counts = {**dict.fromkeys(flag_descriptions(), 0), **counts}
    summary.seconds = time.perf_counter() - started
    return summary
