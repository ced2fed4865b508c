"""What the web app shows, read from the catalog and the person's marks: no HTTP here,
no algorithm either.

Every call opens its own read-only connection (:class:`boda.catalog.Catalog`
with ``readonly=True``), so the page stays live while a scan of the same folder
writes (WAL) and requests served from several threads share nothing but the
cache.  The cache holds what needs a pass over every record (the duplicate
sets of :func:`boda.report.duplicate_sets`, the score names); each value is
keyed on the catalog file's and its ``-wal`` file's size and mtime, so a new
scan is seen by the next request.  While a scan is writing (its ``-wal`` file
holds results), a value the catalog has outdated is still answered at once and
computed again in the background: a pass over 100 000 records takes seconds,
and every request would otherwise wait for one.

The culling marks (:class:`boda.catalog.Marks`, ``catalog.marks.db`` beside the
catalog) are the one thing written, and only by :meth:`CatalogView.write_marks`.
They are read by joining the marks file, ATTACHed read-only, to the catalog's own
read-only connection: one SQL query gives every marked record's id, status and
mark, kept until the marks file (or the catalog) changes; a write of this app
bumps a counter, so its own marks are seen by the very next request.
"""

from __future__ import annotations

import math
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from boda.catalog import (
    Catalog,
    ImageRecord,
    Marks,
    display_path,
    marks_path,
    resolve_catalog_path,
    scan_running,
)
from boda.catalog._catalog import _STALE_MTIME
from boda.core.text import is_utf8, visible
from boda.errors import CatalogError, InvalidParameterError
from boda.io import DEFAULT_MAX_PIXELS

T = TypeVar("T")

#: The most records one page of ``/api/images`` holds.
MAX_LIMIT = 500
#: The most members of a duplicate group listed with one record.
MAX_MEMBERS = 200
#: The selections made of the person's marks (as :func:`boda.report.select_records`).
MARK_SELECTIONS = ("picked", "rejected", "undecided", "rated")


def clean(value: Any) -> Any:
    """``value`` ready for JSON: NaN and infinities as None (a JSON text has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


class NotFound(LookupError):
    """A record, a file or a thumbnail that is not there (HTTP 404)."""


def _marks_json(index: MarkIndex, ids: list[int]) -> list[dict[str, Any]]:
    """``{"id", "decision", "rating"}`` of each id, as ``index`` has them."""
    out = []
    for i in ids:
        decision, rating = index.mark_of(i)
        out.append({"id": i, "decision": decision, "rating": rating})
    return out


class Stale(LookupError):
    """A request made from a page that shows an older catalog: an id it sent now
    names another file (a rescan gave the id to a new file) (HTTP 409)."""


class Unreadable(ValueError):
    """A file that is there but cannot be shown (HTTP 422)."""


#: The cached values the person's marks change: the duplicate plan (the keep rule reads
#: picks and rejects), its index, the redundant copies it lists and each file's role.
_MARKS_READ_BY = frozenset({"duplicates", "set_index", "selection:redundant", "roles"})


def file_identity(size: int | None, mtime_ns: int | None) -> str | None:
    """``"size:mtime_ns"`` of a catalogued file, or None when the catalog does not know
    them (a file waiting to be analysed again: its stored time is cleared)."""
    if size is None or mtime_ns is None or mtime_ns == _STALE_MTIME:
        return None
    return f"{size}:{mtime_ns}"


def _writing(state: tuple) -> bool:
    """Whether a :meth:`CatalogView.state` says that a writer is at work (its
    ``-wal`` file holds results not yet folded into the catalog)."""
    return state[2] > 0


class MarkIndex:
    """The marks of the records of one catalog, by record id (a file the catalog no
    longer holds is left out, as in every selection)."""

    def __init__(self, rows: list[tuple[int, str, str | None, int | None]],
                 error: str | None = None):
        self.error = error  # why the marks file could not be read (then: no marks)
        self.marks = {i: (decision, rating) for i, _, decision, rating in rows}
        self.status = {i: status for i, status, _, _ in rows}
        seen = [(i, d, r) for i, s, d, r in rows if s != "link"]  # links are in no selection
        self.picked = sorted(i for i, d, _ in seen if d == "pick")
        self.rejected = sorted(i for i, d, _ in seen if d == "reject")
        self.rated = sorted(i for i, _, r in seen if r is not None)
        self.decided_ok = {i for i, s, d, _ in rows if s == "ok" and d is not None}

    def mark_of(self, image_id: int) -> tuple[str | None, int | None]:
        return self.marks.get(image_id, (None, None))

    def at_least(self, stars: int) -> set[int]:
        """The ids rated ``stars`` or more (as ``min_rating`` of
        :func:`boda.report.select_records`)."""
        return {i for i, (_, r) in self.marks.items() if r is not None and r >= stars}


class CatalogView:
    """Read-only queries of one catalog for the web app.

    Parameters
    ----------
    folder_or_catalog : str or Path
        A scanned folder, or its catalog file.
    root : str or Path, optional
        The scanned folder, to find the files (default: the folder holding
        the catalog's ``.boda`` folder, as the report).
    """

    def __init__(
        self, folder_or_catalog: str | Path, root: str | Path | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ):
        self.path = resolve_catalog_path(folder_or_catalog)
        self.max_pixels = max_pixels  # the previews' decompression-bomb limit (--max-pixels)
        with self.open():  # fails now (no catalog, not a catalog), not at the first request
            pass
        base = Path(self.path).absolute().parent.parent if root is None else Path(root)
        self.root = Path(os.path.abspath(base))
        self._cache: dict[str, tuple[tuple, Any]] = {}
        self._locks: dict[str, threading.RLock] = {}  # one computation of a value at a time
        self._guard = threading.Lock()  # for the two dicts and the set
        self._refreshing: set[str] = set()
        self._orders: dict[str, tuple[tuple, list[int], int]] = {}  # sort -> (state, ids, n)
        self.marks_file = marks_path(self.path)
        self._marks_written = 0  # bumped by each write of this app: its marks seen at once
        self._marks: tuple[tuple, MarkIndex] | None = None
        self._write_lock = threading.Lock()

    @contextmanager
    def open(self) -> Iterator[Catalog]:
        """A read-only connection for one request, closed after it."""
        catalog = Catalog(self.path, readonly=True)
        try:
            yield catalog
        finally:
            catalog.close()

    def scan_running(self) -> bool:
        """Whether a ``boda scan`` holds the catalog's lock now (see
        :func:`boda.catalog.scan_running`)."""
        return scan_running(self.path)

    # -- the cache -----------------------------------------------------------
    def state(self) -> tuple:
        """What changes when the catalog does: size and mtime of the file and its -wal."""
        out: list[int] = []
        for name in (self.path.name, self.path.name + "-wal"):
            try:
                st = os.stat(self.path.with_name(name))
            except OSError:
                out += [0, 0]
                continue
            # an empty -wal is what every reader's open leaves: no change
            out += [st.st_size, st.st_mtime_ns if st.st_size else 0]
        return tuple(out)

    def _state_of(self, key: str) -> tuple:
        """What ``key``'s cached value depends on: the catalog, and for the duplicate
        plan and the selections built on it the marks too (the keep rule reads picks
        and rejects: a file rejected in the page stopped being the one kept)."""
        if key in _MARKS_READ_BY:
            return (*self.state(), *self.marks_state())
        return self.state()

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``, kept until the catalog (or for some keys the marks) changes.

        While a scan writes (a non-empty ``-wal`` file), an outdated value is
        answered at once and computed again in a background thread; otherwise
        an outdated value is computed again before the answer.
        """
        hit = self._cache.get(key)
        state = self._state_of(key)
        if hit is not None and hit[0] == state:
            return hit[1]
        if hit is not None and _writing(state):
            self._refresh_later(key, compute)
            return hit[1]
        return self._compute(key, compute)

    def peek(self, key: str, compute: Callable[[], T]) -> T | None:
        """The value :meth:`cached` gives if it is at hand, else None, and the value is
        computed in the background (for the summary: a page that opens at once on a
        large catalog, its last counts filled in when ready)."""
        hit = self._cache.get(key)
        state = self._state_of(key)
        if hit is not None and (hit[0] == state or _writing(state)):
            return self.cached(key, compute)
        self._refresh_later(key, compute)
        return None

    def _compute(self, key: str, compute: Callable[[], T]) -> T:
        with self._guard:
            lock = self._locks.setdefault(key, threading.RLock())
        with lock:
            state = self._state_of(key)  # read first: a change during the work is seen next time
            hit = self._cache.get(key)
            if hit is not None and hit[0] == state:
                return hit[1]
            value = compute()
            self._cache[key] = (state, value)
            return value

    def _refresh_later(self, key: str, compute: Callable[[], Any]) -> None:
        with self._guard:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def work() -> None:
            try:
                self._compute(key, compute)
            except Exception:  # noqa: BLE001 (the old value stays; a request says why)
                pass
            finally:
                with self._guard:
                    self._refreshing.discard(key)

        threading.Thread(target=work, daemon=True).start()

    def warm(self) -> None:
        """Compute what needs a pass over every record now (``boda serve`` calls it in
        a thread at start): the first page then opens at once.  Errors are left to the
        requests that need the values."""
        try:
            self.duplicate_plan()
            self.score_names()
            for name in sorted(set(self.selections()) - self.sql_selections()
                               - set(MARK_SELECTIONS)):
                self.selection_ids(name)
        except Exception:  # noqa: BLE001 (said by the request that needs it)
            pass

    # -- marks ------------------------------------------------------------------
    def marks_state(self) -> tuple:
        """What changes when the marks do: this app's writes, and the size and mtime of
        the marks file and its -wal (``boda mark`` run beside the page)."""
        out: list[int] = [self._marks_written]
        for name in (self.marks_file.name, self.marks_file.name + "-wal"):
            try:
                st = os.stat(self.marks_file.with_name(name))
            except OSError:
                out += [0, 0]
                continue
            # an empty -wal is what a reader's open leaves: no change
            out += [st.st_size, st.st_mtime_ns if st.st_size else 0]
        return tuple(out)

    def mark_index(self, catalog: Catalog) -> MarkIndex:
        """The marks of the catalog's records, read again only when the marks or the
        catalog change (a few milliseconds for thousands of marks)."""
        state = self.state() + self.marks_state()
        hit = self._marks
        if hit is not None and hit[0] == state:
            return hit[1]
        try:
            index = MarkIndex(catalog.mark_rows(self.marks_file))
        except CatalogError as exc:  # a damaged marks file: the page still browses
            index = MarkIndex([], str(exc))
        self._marks = (state, index)
        return index

    def ok_ids(self, catalog: Catalog) -> list[int]:
        """The ids of every readable record (for ``undecided``), kept until the catalog
        changes."""

        def compute() -> list[int]:
            return catalog.ids_with_status("ok")

        return self.cached("ok_ids", compute)

    def mark_selection(self, catalog: Catalog, name: str) -> list[int]:
        """The ids of the mark selection ``name`` (:data:`MARK_SELECTIONS`)."""
        index = self.mark_index(catalog)
        if name == "undecided":
            return [i for i in self.ok_ids(catalog) if i not in index.decided_ok]
        return getattr(index, name)

    def mark_counts(self, catalog: Catalog) -> dict[str, int]:
        """How many records each of :data:`MARK_SELECTIONS` holds."""
        index = self.mark_index(catalog)
        return {"picked": len(index.picked), "rejected": len(index.rejected),
                "undecided": len(self.ok_ids(catalog)) - len(index.decided_ok),
                "rated": len(index.rated)}

    def marks_writable(self) -> str | None:
        """None when the marks file can be written (made), else why not."""
        with self.open() as catalog:
            error = self.mark_index(catalog).error
        if error is not None:
            return error
        folder = self.marks_file.parent
        target = self.marks_file if self.marks_file.exists() else folder
        if not os.access(target, os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
            which = "the marks file" if target == self.marks_file else "the folder of the catalog"
            return (f"{which} ({visible(os.fsencode(target))}) is read-only: marks cannot be "
                    "written here (copy the catalog to a writable place and give that with "
                    "--catalog)")
        return None

    def write_marks(self, ids: list[int], changes: dict[str, Any],
                    paths: list[str] | None = None,
                    pixels: list[str | None] | None = None,
                    identities: list[str | None] | None = None) -> dict[str, Any]:
        """Set the ``decision`` and/or ``rating`` (the keys of ``changes``, checked by the
        caller) of the records with these ids in the marks file; nothing is written when
        one of the ids is not in the catalog (:class:`NotFound`) or, with ``paths`` (the
        ``path`` the page was given for each id), when an id now names another file
        or none (:class:`Stale`: ids of deleted records are reused after a rescan), or,
        with ``pixels`` (the ``pixel_hash`` the page was given), when the file at the path
        holds other pixels now (another photo copied over it, then scanned), unless it is
        still the very file the page was given (``identities``: its ``file_identity``,
        size and modification time; a scan at another ``--max-side`` changes the pixel
        hashes of unchanged files, as :meth:`boda.catalog.Mark.applies_to` knows).  Returns the
        new marks of the ids, their marks just before the change (``previous``) and the
        counts of the mark selections."""
        with self.open() as catalog:
            relpaths = catalog.relpaths_of(ids)
            held = catalog.file_identities(relpaths.values()) if pixels is not None else {}
            setting = changes.get("decision") is not None or bool(changes.get("rating"))
            links = set(catalog.ids_with_status("link")) & set(ids) if setting else set()
            link_records = catalog.records_by_id(sorted(links)) if links else {}
        missing = sorted(set(ids) - set(relpaths))
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            if paths is not None:  # the page's file is gone since it loaded: a stale page
                gone = dict(zip(ids, paths, strict=True))[missing[0]]
                raise Stale(f"{gone!r} is no longer in the catalog (id {shown}): the folder "
                            "was scanned again since the page was loaded; reload the page "
                            "(nothing was marked)")
            raise NotFound(f"no record with id {shown} in the catalog: nothing was marked "
                           "(the folder was scanned again since the page was loaded? reload it)")
        if paths is not None:
            for image_id, shown_path in zip(ids, paths, strict=True):
                now = visible(display_path(relpaths[image_id]))
                if now != shown_path:
                    raise Stale(
                        f"id {image_id} is now {now!r}, not {shown_path!r}: the folder was "
                        "scanned again since the page was loaded; reload the page (nothing "
                        "was marked)")
        if pixels is not None:
            shown_files = identities or [None] * len(ids)
            for image_id, shown_pixels, shown_file in zip(ids, pixels, shown_files, strict=True):
                pixel_hash, size, mtime_ns = held.get(relpaths[image_id], (None, None, None))
                same_file = shown_file is not None and shown_file == file_identity(size, mtime_ns)
                if pixel_hash != shown_pixels and not same_file:
                    raise Stale(
                        f"{visible(display_path(relpaths[image_id]))!r} holds another picture "
                        "than the page shows (it was replaced and the folder scanned again "
                        "since the page was loaded); reload the page (nothing was marked)")
        if link_records:
            # a link's mark is in no selection or count (as boda mark refuses it): the
            # card would show "pick" while every export and --only picked leave it out
            record = next(iter(link_records.values()))
            target = visible(display_path(record.link_to)) if record.link_to else "another file"
            raise InvalidParameterError(
                f"{visible(display_path(record.relpath))!r} is a link to {target!r}, and a "
                "link is in no selection: mark the file it links to (nothing was marked)")
        changed = 0
        with self._write_lock:
            # the marks as they are just before this change (``boda mark`` may have set
            # some since the page loaded): what the page's Ctrl+Z puts back
            with self.open() as catalog:
                previous = _marks_json(self.mark_index(catalog), ids)
            try:
                with Marks(self.path) as marks:
                    if "decision" in changes:
                        changed += marks.set_decision(relpaths.values(), changes["decision"])
                    if "rating" in changes:
                        changed += marks.set_rating(relpaths.values(), changes["rating"])
            finally:
                self._marks_written += 1
        with self.open() as catalog:
            index = self.mark_index(catalog)
            counts = self.mark_counts(catalog)
        return {
            "changed": changed,
            "marks": _marks_json(index, ids),
            "previous": previous,
            "counts": counts,
        }

    def rating_order(self, catalog: Catalog, descending: bool) -> list[int]:
        """Every id by rating (most stars first, or fewest with ``descending`` False),
        ties and the unrated records (last) in path order."""
        index = self.mark_index(catalog)
        order = self.sort_order(catalog, "path", False)
        stars = {i: r for i, (_, r) in index.marks.items() if r is not None}
        rated = sorted((i for i in order if i in stars),
                       key=lambda i: -stars[i] if descending else stars[i])  # stable
        return rated + [i for i in order if i not in stars]

    # -- selections, sorts -----------------------------------------------------
    def selections(self) -> dict[str, str]:
        """Every selection name with what it holds (:func:`boda.report.selections`)."""
        from boda.report import selections

        return selections()

    def parse_only(self, only: str | None) -> frozenset[str]:
        """``only`` (comma-separated selection names) checked; empty: every record."""
        if not only or not only.strip():
            return frozenset()
        names = {name.strip() for name in only.split(",") if name.strip()}
        valid = self.selections()
        unknown = sorted(names - set(valid))
        if unknown:
            raise InvalidParameterError(
                f"unknown selection {', '.join(map(repr, unknown))}; choose from "
                f"{', '.join(valid)}"
            )
        return frozenset(names)

    def score_names(self, *, wait: bool = True) -> list[str] | None:
        """Every score name in the catalog (one pass, cached); ``wait=False``: None
        when it is not at hand (:meth:`peek`)."""

        def compute() -> list[str]:
            with self.open() as catalog:
                return catalog.score_names()

        return (self.cached if wait else self.peek)("score_names", compute)

    def sort_spec(self, sort: str, order: str | None) -> tuple[str, bool, str, str]:
        """``(Catalog.select_ids sort, descending, sort, order)`` of the API's ``sort``.

        A flag sorts by its score the way the report does, worst first unless
        ``order`` says otherwise (``blurry``: lowest sharpness first; ``dark``:
        darkest first); ``rating`` by the person's stars, most first (unrated last);
        a duplicate flag sorts by group; a score name by that score
        (largest first); ``size`` largest first; ``path`` A to Z; ``taken`` by capture
        time, oldest first (``Catalog`` sort ``time:taken``: by clock time, a UTC offset
        ignored; files without one last).
        """
        import operator

        from boda.scan._flags import DUPLICATE_FLAGS, _rules

        rules = {rule.name: rule for rule in _rules()}
        if sort == "path":
            spec, worst_first = "path", False
        elif sort == "rating":  # the person's stars, most first (MarkIndex, not SQL)
            spec, worst_first = "rating", True
        elif sort == "size":
            spec, worst_first = "size", True
        elif sort == "taken":
            spec, worst_first = "time:taken", False
        elif sort in rules:
            key = rules[sort].score_key
            # a score derived at flag time (odd_size's size ratio) is stored with the flag only
            spec = "score:" + key if key in self.score_names() else "flag:" + sort
            worst_first = rules[sort].compare is operator.gt
        elif sort in DUPLICATE_FLAGS:
            spec, worst_first = "group:" + sort, False
        elif sort in self.score_names():
            spec, worst_first = "score:" + sort, True
        else:
            choices = ["path", "size", "taken", "rating", *rules, *DUPLICATE_FLAGS,
                       *self.score_names()]
            raise InvalidParameterError(
                f"unknown sort {sort!r}; choose from {', '.join(dict.fromkeys(choices))}"
            )
        if order not in (None, "", "asc", "desc"):
            raise InvalidParameterError(f"unknown order {order!r}; use asc or desc")
        descending = worst_first if not order else order == "desc"
        return spec, descending, sort, "desc" if descending else "asc"

    # -- duplicates --------------------------------------------------------------
    def duplicate_plan(self) -> list[dict[str, Any]]:
        """The duplicate sets (:func:`boda.report.duplicate_sets`) with the ids of their
        members and whether each one is ``mirrored`` (a near-duplicate member whose
        nearest match is a left-right mirror image of it, as in its record;
        ``mirrored_count`` counts them in the set).  One pass over the catalog, cached."""
        from boda.report import duplicate_sets

        def compute() -> list[dict[str, Any]]:
            sets = duplicate_sets(self.path)
            paths = {p for s in sets for p in (s.keep, *s.redundant, *s.linked)}
            with self.open() as catalog:
                ids = catalog.ids_of_paths(paths)
                mirrored = catalog.mirrored_ids()
                if mirrored:  # as ImageRecord.mirrored: only with the near_duplicate flag
                    mirrored &= catalog.flag_groups("near_duplicate").keys()

            def member(path: str) -> dict[str, Any]:
                image_id = ids.get(path)
                return {"id": image_id, "path": visible(path), "mirrored": image_id in mirrored}

            return [
                {
                    "keep": member(s.keep),
                    "redundant": [member(p) for p in s.redundant],
                    "linked": [member(p) for p in s.linked],
                    "exact_groups": list(s.exact_groups),
                    "near_groups": list(s.near_groups),
                    "mirrored_count": sum(
                        ids.get(p) in mirrored for p in (s.keep, *s.redundant, *s.linked)
                    ),
                }
                for s in sets
            ]

        return self.cached("duplicates", compute)

    def selection_ids(self, name: str, *, wait: bool = True) -> list[int] | None:
        """The ids of the records :func:`boda.report.select_records` gives for the
        selection ``name`` (``redundant``, ``label_conflict``...: those that SQL alone
        cannot pick), cached: ``redundant`` from :meth:`duplicate_plan`,
        ``label_conflict`` from the exact duplicate groups, others by a pass over the
        catalog; ``wait=False``: None when it is not at hand (:meth:`peek`)."""
        from boda.report import select_records
        from boda.report._select import label_conflict_ids

        def compute() -> list[int]:
            # These two without a pass over every record (5.6 s each at 100 000 records):
            # the redundant copies are those of the duplicate plan the page holds anyway
            if name == "redundant":
                return sorted({m["id"] for found in self.duplicate_plan()
                               for m in found["redundant"] if m["id"] is not None})
            if name == "label_conflict":
                return sorted(label_conflict_ids(self.path))
            paths = [record["path"] for record in select_records(self.path, name)]
            with self.open() as catalog:
                return sorted(catalog.ids_of_paths(paths).values())

        return (self.cached if wait else self.peek)("selection:" + name, compute)

    def sql_selections(self) -> frozenset[str]:
        """The selection names :meth:`Catalog.select_ids` picks by itself: the flags,
        ``failed`` and ``unflagged``."""
        from boda.scan import flag_descriptions

        return frozenset(flag_descriptions()) | {"failed", "unflagged"}

    def set_of(self, image_id: int) -> dict[str, Any] | None:
        """The duplicate set holding the record ``image_id``, if any."""

        def compute() -> tuple[list[dict[str, Any]], dict[int, int]]:
            sets = self.duplicate_plan()
            return sets, {
                m["id"]: k
                for k, s in enumerate(sets)
                for m in (s["keep"], *s["redundant"], *s["linked"])
                if m["id"] is not None
            }

        # the plan the index was made from, not the plan read again: a mark saved between
        # the two reads (auto-advance) changes the plan, and the index would point into
        # another set, or past the last one
        sets, index = self.cached("set_index", compute)
        where = index.get(image_id)
        return None if where is None else sets[where]

    def roles(self, *, wait: bool = False) -> dict[int, str] | None:
        """``{id: "kept" | "redundant" | "linked"}`` of every member of a duplicate set
        (:meth:`duplicate_plan`); ``wait=False``: None while it is being computed."""

        def compute() -> dict[int, str]:
            out: dict[int, str] = {}
            for found in self.duplicate_plan():
                for role, members in (("redundant", found["redundant"]),
                                      ("linked", found["linked"]), ("kept", [found["keep"]])):
                    out.update((m["id"], role) for m in members if m["id"] is not None)
            return out

        # the plan at hand (read for this state of the catalog and marks): the roles are
        # a pass over it, given at once rather than left out of this answer
        wait = wait or self._fresh("duplicates")
        return (self.cached if wait else self.peek)("roles", compute)

    def _fresh(self, key: str) -> bool:
        """Whether the value cached for ``key`` is that of the current state."""
        hit = self._cache.get(key)
        return hit is not None and hit[0] == self._state_of(key)

    def keep_first(self, catalog: Catalog, flag: str, ids: list[int]) -> list[int]:
        """``ids`` (in the order of ``flag``'s groups) with each group's members in the
        order boda keeps them: the kept file first, then the files a link points to,
        then the redundant ones (path order among those)."""
        roles = self.roles()
        if not roles:
            return ids
        groups = catalog.flag_groups(flag)
        rank = {"kept": 0, "linked": 1, "redundant": 2}
        out: list[int] = []
        run: list[int] = []
        for i in [*ids, None]:  # runs of one group; None ends the last one
            if run and (i is None or groups.get(i) != groups.get(run[0])):
                if groups.get(run[0]) is not None:
                    run.sort(key=lambda j: rank.get(roles.get(j, ""), 2))  # stable
                out += run
                run = []
            if i is not None:
                run.append(i)
        return out

    # -- pages -----------------------------------------------------------------
    def select_ids(
        self,
        catalog: Catalog,
        names: frozenset[str],
        *,
        q: str | None = None,
        sort: str = "path",
        descending: bool = False,
        offset: int = 0,
        limit: int | None = None,
        min_rating: int | None = None,
    ) -> tuple[list[int], int]:
        """The ids of a page of the records in the selections ``names`` (as
        :func:`boda.report.select_records`; none: every record), rated ``min_rating``
        stars or more when it is given."""
        from boda.scan import flag_descriptions

        flags = [n for n in names if n in flag_descriptions()]
        others = sorted(names - self.sql_selections() - set(MARK_SELECTIONS))
        marked = sorted(names & set(MARK_SELECTIONS))
        among: set[int] | None = None
        if others or marked:
            among = {i for n in others for i in self.selection_ids(n)}
            for name in marked:
                among.update(self.mark_selection(catalog, name))
        stars = None if min_rating is None else self.mark_index(catalog).at_least(min_rating)

        def select(sort: str, among: set[int] | None = among, **page: Any) -> tuple[list[int], int]:
            return catalog.select_ids(
                flags=flags, failed="failed" in names, unflagged="unflagged" in names,
                among=among, path_contains=q or None, sort=sort, **page,
            )

        if among is not None and not flags and not names & {"failed", "unflagged"} and not q:
            # only selections of ids (`undecided`: most of a large catalog): a kept order
            # filtered here, not a JSON list of 100 000 ids for SQLite to read
            if sort == "rating":
                order = self.rating_order(catalog, descending)
            else:
                order = self.sort_order(catalog, sort, descending)
            order = [i for i in order if i in among and (stars is None or i in stars)]
            end = None if limit is None else offset + limit
            return order[offset:end], len(order)
        if sort == "path" and (stars is None or not names):
            # the index gives this order: SQL pages it best (stars alone: those ids)
            return select("path", among if stars is None else stars, descending=descending,
                          offset=offset, limit=limit)
        # Another order: sorting every record's JSON scores per request costs ~0.3 s at
        # 100 000 records; the order is kept (until the catalog changes) and filtered.
        if sort == "rating":
            order = self.rating_order(catalog, descending)
        elif sort == "path":
            order = select("path", descending=descending)[0]
        else:
            order = self.sort_order(catalog, sort, descending)
        if (names or q) and sort != "path":
            chosen = set(select("path")[0])
            order = [i for i in order if i in chosen]
        if stars is not None:
            order = [i for i in order if i in stars]
        end = None if limit is None else offset + limit
        return order[offset:end], len(order)

    def sort_order(self, catalog: Catalog, sort: str, descending: bool) -> list[int]:
        """Every id in the order of ``sort`` (:meth:`Catalog.sort_order`), kept while
        the catalog does not change (at most 8 orders; never a stale one)."""
        state = self.state()
        with self._guard:
            hit = self._orders.get(sort)
        if hit is None or hit[0] != state:
            hit = (state, *catalog.sort_order(sort))
            with self._guard:
                self._orders[sort] = hit
                while len(self._orders) > 8:
                    self._orders.pop(next(iter(self._orders)))
        _, ids, n = hit
        ids = ids if not descending else ids[:n][::-1] + ids[n:][::-1]
        if sort.startswith("group:"):
            ids = self.keep_first(catalog, sort.removeprefix("group:"), ids)
        return ids

    def records(self, catalog: Catalog, ids: list[int]) -> list[dict[str, Any]]:
        """The records with these ids as JSON-ready dicts (with ``id``), in that order."""
        found = catalog.records_by_id(ids)
        roles = self.roles() or {}
        index = self.mark_index(catalog)
        return [self.record_dict(found[i], roles, index) for i in ids if i in found]

    def record_dict(self, record: ImageRecord, roles: dict[int, str] | None = None,
                    marks: MarkIndex | None = None) -> dict[str, Any]:
        """:meth:`ImageRecord.to_dict` with its ``id``, its absolute path (and whether
        that text is the name on disk) and its role in its duplicate set (``roles``:
        :meth:`roles`, read when not given) and the person's ``decision`` and ``rating``
        (``marks``: :meth:`mark_index`, read when not given)."""
        out = record.to_dict()
        if marks is None:
            with self.open() as catalog:
                marks = self.mark_index(catalog)
        out["decision"], out["rating"] = marks.mark_of(record.id)
        out["id"] = record.id
        # sent back with a mark: the very file the page showed, when its pixel hash has
        # changed since (a scan at another --max-side) and it has not
        out["file_identity"] = file_identity(record.size, record.mtime_ns)
        out["path"] = visible(out["path"])  # control and bidi characters as escapes
        path = self.file_of(record)
        out["absolute_path"] = visible(path)
        # whether copying the text shown gives the name on disk (UTF-8, no escapes)
        # the page shows, and copies, only UTF-8 names exactly
        out["absolute_path_exact"] = is_utf8(path) and out["absolute_path"] == path.decode()
        roles = (self.roles() or {}) if roles is None else roles
        out["duplicate_role"] = roles.get(record.id)
        return clean(out)

    def file_of(self, record: ImageRecord) -> bytes:
        """The file of ``record``: the scanned folder joined with its stored path."""
        return os.path.join(os.fsencode(self.root), record.relpath)

    def record(self, catalog: Catalog, image_id: int) -> ImageRecord:
        found = catalog.records_by_id([image_id])
        if image_id not in found:
            raise NotFound(f"no record with id {image_id} in the catalog")
        return found[image_id]

    def preview(self, image_id: int, max_side: int) -> bytes:
        """A JPEG of the file of record ``image_id``, its longer side at most ``max_side``,
        decoded by :func:`boda.io.read_image` (EXIF orientation applied; TIFF, HEIC,
        RAW and 16-bit files too).  Only files the catalog holds are read."""
        from boda.errors import ImageReadError
        from boda.io import encode_jpeg, read_image

        with self.open() as catalog:
            record = self.record(catalog, image_id)
        parts = record.relpath.split(b"/")
        if os.path.isabs(record.relpath) or b".." in parts:  # never outside the folder
            raise NotFound(f"{record.path!r} is not inside the scanned folder")
        path = self.file_of(record)
        name = visible(path)
        # A folder of the scan swapped for a link to another place since: the scan never
        # follows a link to a folder, so neither does a preview (a link to a file is
        # scanned as a file, so that one is read).
        real_root = os.path.realpath(os.fsencode(self.root))
        real_folder = os.path.realpath(os.path.dirname(path))
        if os.path.commonpath([real_root, real_folder]) != real_root:
            raise NotFound(f"{name} is now reached through a link to a folder outside the "
                           "scanned folder: not shown (scan the folder again)")
        if record.status == "error":
            raise Unreadable(f"{name} could not be read by the scan: {record.error}")
        try:
            mode = os.stat(path).st_mode
        except OSError:
            raise NotFound(f"{name} is gone: no such file now (scan the folder again)") from None
        if not stat.S_ISREG(mode):  # as the scan: a FIFO or a device blocks or never ends
            raise Unreadable(f"{name} is not a regular file now (a folder, a pipe or a "
                             "device): not read (scan the folder again)")
        try:
            pixels = read_image(os.fsdecode(path), max_side=max_side, max_pixels=self.max_pixels)
        except ImageReadError as exc:
            raise Unreadable(f"{name} cannot be read now: {exc.reason}") from None
        return encode_jpeg(pixels, quality=85)
