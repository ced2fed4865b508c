"""What the web app shows, read from the catalog: no HTTP here, no algorithm either.

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
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from boda.catalog import Catalog, ImageRecord, resolve_catalog_path
from boda.core.text import is_utf8, visible
from boda.errors import InvalidParameterError
from boda.io import DEFAULT_MAX_PIXELS

T = TypeVar("T")

#: The most records one page of ``/api/images`` holds.
MAX_LIMIT = 500
#: The most members of a duplicate group listed with one record.
MAX_MEMBERS = 200


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


class Unreadable(ValueError):
    """A file that is there but cannot be shown (HTTP 422)."""


def _writing(state: tuple) -> bool:
    """Whether a :meth:`CatalogView.state` says that a writer is at work (its
    ``-wal`` file holds results not yet folded into the catalog)."""
    return state[2] > 0


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

    @contextmanager
    def open(self) -> Iterator[Catalog]:
        """A read-only connection for one request, closed after it."""
        catalog = Catalog(self.path, readonly=True)
        try:
            yield catalog
        finally:
            catalog.close()

    def scan_running(self) -> bool:
        """Whether a ``boda scan`` holds the catalog's lock now (``CATALOG.lock``, a POSIX
        record lock the scan holds while it runs: a non-blocking attempt to take a shared
        lock on it fails).  The file is opened for reading only, never made."""
        try:
            import fcntl
        except ImportError:  # not POSIX: the scan takes no lock either
            return False
        try:
            lock = open(self.path.with_name(self.path.name + ".lock"), "rb")  # noqa: SIM115
        except OSError:  # no lock file: no scan has run since it exists
            return False
        with lock:
            try:
                fcntl.lockf(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:  # held by the scan
                return True
            fcntl.lockf(lock, fcntl.LOCK_UN)
            return False

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

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``, kept until the catalog changes.

        While a scan writes (a non-empty ``-wal`` file), an outdated value is
        answered at once and computed again in a background thread; otherwise
        an outdated value is computed again before the answer.
        """
        hit = self._cache.get(key)
        state = self.state()
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
        state = self.state()
        if hit is not None and (hit[0] == state or _writing(state)):
            return self.cached(key, compute)
        self._refresh_later(key, compute)
        return None

    def _compute(self, key: str, compute: Callable[[], T]) -> T:
        with self._guard:
            lock = self._locks.setdefault(key, threading.RLock())
        with lock:
            state = self.state()  # read first: a change during the work is seen next time
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
            for name in sorted(set(self.selections()) - self.sql_selections()):
                self.selection_ids(name)
        except Exception:  # noqa: BLE001 (said by the request that needs it)
            pass

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
        darkest first); a duplicate flag sorts by group; a score name by that score
        (largest first); ``size`` largest first; ``path`` A to Z; ``taken`` by capture
        time, oldest first (``Catalog`` sort ``time:taken``: by clock time, a UTC offset
        ignored; files without one last).
        """
        import operator

        from boda.scan._flags import DUPLICATE_FLAGS, _rules

        rules = {rule.name: rule for rule in _rules()}
        if sort == "path":
            spec, worst_first = "path", False
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
            choices = ["path", "size", "taken", *rules, *DUPLICATE_FLAGS, *self.score_names()]
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
        members.  One pass over the catalog, cached."""
        from boda.report import duplicate_sets

        def compute() -> list[dict[str, Any]]:
            sets = duplicate_sets(self.path)
            paths = {p for s in sets for p in (s.keep, *s.redundant, *s.linked)}
            with self.open() as catalog:
                ids = catalog.ids_of_paths(paths)

            def member(path: str) -> dict[str, Any]:
                return {"id": ids.get(path), "path": visible(path)}

            return [
                {
                    "keep": member(s.keep),
                    "redundant": [member(p) for p in s.redundant],
                    "linked": [member(p) for p in s.linked],
                    "exact_groups": list(s.exact_groups),
                    "near_groups": list(s.near_groups),
                }
                for s in sets
            ]

        return self.cached("duplicates", compute)

    def selection_ids(self, name: str, *, wait: bool = True) -> list[int] | None:
        """The ids of the records :func:`boda.report.select_records` gives for the
        selection ``name`` (``redundant``, ``label_conflict``...: those that SQL alone
        cannot pick).  One pass over the catalog, cached; ``wait=False``: None when
        it is not at hand (:meth:`peek`)."""
        from boda.report import select_records

        def compute() -> list[int]:
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

        def compute() -> dict[int, int]:
            sets = self.duplicate_plan()
            return {
                m["id"]: k
                for k, s in enumerate(sets)
                for m in (s["keep"], *s["redundant"], *s["linked"])
                if m["id"] is not None
            }

        where = self.cached("set_index", compute).get(image_id)
        return None if where is None else self.duplicate_plan()[where]

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

        return (self.cached if wait else self.peek)("roles", compute)

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
    ) -> tuple[list[int], int]:
        """The ids of a page of the records in the selections ``names`` (as
        :func:`boda.report.select_records`; none: every record)."""
        from boda.scan import flag_descriptions

        flags = [n for n in names if n in flag_descriptions()]
        others = sorted(names - self.sql_selections())
        among = sorted({i for n in others for i in self.selection_ids(n)}) if others else None

        def select(sort: str, **page: Any) -> tuple[list[int], int]:
            return catalog.select_ids(
                flags=flags, failed="failed" in names, unflagged="unflagged" in names,
                among=among, path_contains=q or None, sort=sort, **page,
            )

        if sort == "path":  # the index gives this order: SQL pages it best
            return select("path", descending=descending, offset=offset, limit=limit)
        # Another order: sorting every record's JSON scores per request costs ~0.3 s at
        # 100 000 records; the order is kept (until the catalog changes) and filtered.
        order = self.sort_order(catalog, sort, descending)
        if names or q:
            chosen = set(select("path")[0])
            order = [i for i in order if i in chosen]
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
        return [self.record_dict(found[i], roles) for i in ids if i in found]

    def record_dict(self, record: ImageRecord,
                    roles: dict[int, str] | None = None) -> dict[str, Any]:
        """:meth:`ImageRecord.to_dict` with its ``id``, its absolute path (and whether
        that text is the name on disk) and its role in its duplicate set (``roles``:
        :meth:`roles`, read when not given)."""
        out = record.to_dict()
        out["id"] = record.id
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
        if record.status == "error":
            raise Unreadable(f"{name} could not be read by the scan: {record.error}")
        if not os.path.exists(path):
            raise NotFound(f"{name} is gone: no such file now (scan the folder again)")
        try:
            pixels = read_image(os.fsdecode(path), max_side=max_side, max_pixels=self.max_pixels)
        except ImageReadError as exc:
            raise Unreadable(f"{name} cannot be read now: {exc.reason}") from None
        return encode_jpeg(pixels, quality=85)
