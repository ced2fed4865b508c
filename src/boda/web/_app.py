"""The FastAPI app of ``boda serve``: a JSON API over a catalog and the page that uses it.

The catalog, the scanned files and everything else in the folder are only read: GET
routes, the catalog opened read-only for each request, files addressed by catalog id
only (never by a path in the request).  The one thing written is the person's culling
marks (pick, reject, stars), by ``POST /api/marks`` alone, into the marks file beside
the catalog (``DIR/.boda/catalog.marks.db``, :class:`boda.catalog.Marks`); none with
``read_only=True`` (``boda serve --read-only``) or when that file cannot be written.
Requests are refused unless their Host header names this machine (a web page
elsewhere cannot reach the app through DNS rebinding) or their browser says they come
from another site (``Sec-Fetch-Site``: a page elsewhere cannot even load an image); a
write also needs ``Content-Type: application/json`` (which a form of another site
cannot send without a CORS preflight, never granted), ``Sec-Fetch-Site: same-origin``
when the browser sends one and an ``Origin``, when there is one, of this app.  At most
:data:`PREVIEW_SLOTS` previews are decoded at once.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from boda import __version__
from boda.catalog import display_path
from boda.core.text import is_utf8, visible
from boda.errors import BodaError, CatalogError, InvalidParameterError
from boda.io import DEFAULT_MAX_PIXELS
from boda.web._data import (
    MARK_SELECTIONS,
    MAX_LIMIT,
    MAX_MEMBERS,
    CatalogView,
    MarkIndex,
    NotFound,
    Stale,
    Unreadable,
    clean,
)

STATIC = Path(__file__).resolve().parent / "static"

#: Host names every app answers to (ports are not part of the check).
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

#: ``Sec-Fetch-Site`` values let through: the page itself, a typed address or bookmark
#: (``none``); a request without the header (curl, scripts) is let through too.
FETCH_SITES = ("same-origin", "none")

#: The longest side of a preview (``max_side`` above it is capped): 24 MP at 1:1.
MAX_PREVIEW_SIDE = 6000
#: How many previews are decoded at once (the others wait): a 24 MP decode holds
#: about 0.4 GB while it runs.
PREVIEW_SLOTS = 2
#: The longest search text (``q``) taken, in characters.
MAX_QUERY = 1000
#: The largest offset and id taken (SQLite integers are 64-bit).
MAX_INT = 2**63 - 1
#: The most ids one ``POST /api/marks`` takes (a selection of a whole shoot is
#: marked with ``boda mark``).
MAX_MARK_IDS = 10_000
#: The largest body of a ``POST /api/marks``, in bytes.
MAX_MARK_BODY = 1_000_000

#: Selections that make sense for a dataset of class folders, not for a photo folder:
#: the page lists them apart.
DATASET_SELECTIONS = frozenset({"label_conflict"})

#: Sent with every response: no script, style or image from anywhere else, no
#: framing, no guessing of content types.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(
    folder_or_catalog: str | Path,
    *,
    root: str | Path | None = None,
    hosts: Iterable[str] = (),
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    read_only: bool = False,
) -> FastAPI:
    """The web app that browses the catalog of a scanned folder (``boda serve``).

    Parameters
    ----------
    folder_or_catalog : str or Path
        A scanned folder, or its catalog file.
    root : str or Path, optional
        The scanned folder, where the files are (default: the folder holding
        the catalog's ``.boda`` folder).
    hosts : iterable of str
        Host names the app answers to besides ``127.0.0.1``, ``localhost`` and
        ``::1`` (the address it is bound to, when that is another one).  Any
        other ``Host`` header gets HTTP 400.
    max_pixels : int or None
        The decompression-bomb limit of the previews, as
        :func:`boda.io.read_image`'s (default: its default; None: no limit, for
        files you trust, as ``boda scan --max-pixels none`` reads them).
    read_only : bool
        Refuse to change marks (``POST /api/marks`` answers 403; the page hides
        its marking controls).  The marks are still shown.

    Returns
    -------
    fastapi.FastAPI
        Serve it with uvicorn (``boda serve`` does).  The routes are listed in
        ``docs/serve.md``.  Nothing in the folder or the catalog is written; the
        marks a person sets go to the marks file beside the catalog
        (:func:`boda.catalog.marks_path`), which is made at the first mark.

    Raises
    ------
    CatalogError
        No catalog there, or not a usable one.

    Examples
    --------
    >>> from fastapi.testclient import TestClient                     # doctest: +SKIP
    >>> client = TestClient(create_app("photos"), base_url="http://127.0.0.1")  # doctest: +SKIP
    >>> client.get("/api/summary").json()["counts"]                   # doctest: +SKIP
    {'ok': 12, 'error': 1, 'link': 0}
    """
    view = CatalogView(folder_or_catalog, root, max_pixels)
    app = FastAPI(title="boda serve", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)
    allowed = {h.strip("[]").lower() for h in (*LOCAL_HOSTS, *hosts) if h}
    app.add_middleware(_HostGuard, allowed=allowed)

    @app.exception_handler(RequestValidationError)
    async def _bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        # 400 with one sentence, as every other bad parameter (not FastAPI's 422 list)
        parts = []
        for error in exc.errors():
            where = ".".join(str(x) for x in error.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse({"detail": "bad parameter " + "; ".join(parts)}, status_code=400)

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # noqa: ANN202
        response = await call_next(request)
        for key, value in _HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.view = view
    app.state.read_only = read_only
    _routes(app, view, read_only)
    return app


def host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port: ``[::1]:8765`` -> ``::1``.

    >>> host_name("127.0.0.1:8765"), host_name("[::1]:80"), host_name("LocalHost")
    ('127.0.0.1', '::1', 'localhost')
    """
    header = header.strip().lower()
    if header.startswith("["):  # an IPv6 address, maybe with a port
        end = header.find("]")
        return header[1:end] if end > 0 else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _HostGuard:
    """Refuse (400) a request whose ``Host`` header names another host: a page of
    another site cannot reach the app by pointing a name of its own at 127.0.0.1
    (DNS rebinding).  Starlette's ``TrustedHostMiddleware`` does the same but cuts
    an IPv6 ``Host`` (``[::1]:8765``) at its first colon.  Refuse (403) a request the
    browser marks as made by another site (``Sec-Fetch-Site: cross-site`` or
    ``same-site``: an ``<img>`` of a page elsewhere, another port of localhost), but for
    a link to the page itself (:func:`_opens_the_page`)."""

    def __init__(self, app: Any, allowed: set[str]):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or ())
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            if host not in self.allowed:
                response = JSONResponse(
                    {"detail": f"invalid Host header {host!r}: this app answers to "
                     f"{', '.join(sorted(self.allowed))}"}, status_code=400,
                )
                await response(scope, receive, send)
                return
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
            if site and site not in FETCH_SITES and not _opens_the_page(scope, headers):
                response = JSONResponse(
                    {"detail": f"refused: a request from another site (Sec-Fetch-Site: {site}); "
                     "open the page of this app itself"}, status_code=403,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _opens_the_page(scope: Any, headers: dict[bytes, bytes]) -> bool:
    """Whether a request is a person following a link of another page to ``/`` (a
    top-level navigation: ``Sec-Fetch-Mode: navigate``, ``Sec-Fetch-Dest: document``).
    Its answer is the page's static HTML, which holds no data (the page asks for that
    with its own same-origin requests) and may not be framed, so it is served: a link
    on a dashboard at another port of localhost opens the app instead of a JSON 403.
    Everything else another site asks for stays refused."""
    def header(name: bytes) -> str:
        return headers.get(name, b"").decode("latin-1").strip().lower()

    return (scope["type"] == "http" and scope.get("method") in ("GET", "HEAD")
            and scope.get("path") == "/" and header(b"sec-fetch-mode") == "navigate"
            and header(b"sec-fetch-dest") == "document")


def _json(data: Any, status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(clean(data), status_code=status, headers=headers or None)


def _fail(exc: Exception) -> HTTPException:
    """The HTTP error of a library error: the message, as JSON ``{"detail": ...}``."""
    if isinstance(exc, NotFound):
        return HTTPException(404, str(exc))
    if isinstance(exc, (InvalidParameterError, Unreadable)):
        return HTTPException(400 if isinstance(exc, InvalidParameterError) else 422, str(exc))
    return HTTPException(500, str(exc))


def _routes(app: FastAPI, view: CatalogView, read_only: bool) -> None:  # noqa: C901
    def get(path: str, **kwargs: Any) -> Any:  # HEAD answered as GET (curl -I, link checkers)
        return app.api_route(path, methods=["GET", "HEAD"], **kwargs)

    previews = threading.BoundedSemaphore(PREVIEW_SLOTS)

    @get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @get("/api/summary")
    def summary() -> JSONResponse:
        try:
            return _json(_summary(view, read_only))
        except BodaError as exc:
            raise _fail(exc) from None

    @app.post("/api/marks")
    async def marks(request: Request) -> JSONResponse:
        try:
            refused = _write_refused(request, view, read_only)
        except BodaError as exc:  # the catalog gone (moved, a disk unmounted): as for a GET
            raise _fail(exc) from None
        if refused is not None:
            return refused
        body = await request.body()
        if len(body) > MAX_MARK_BODY:
            raise HTTPException(413, f"the request is larger than {MAX_MARK_BODY} bytes; "
                                f"mark at most {MAX_MARK_IDS} files at once")
        try:
            ids, changes, paths, pixels, identities = _mark_request(body)
        except InvalidParameterError as exc:
            raise HTTPException(400, str(exc)) from None
        import anyio.to_thread

        try:  # SQLite's work off the event loop: previews and pages go on meanwhile
            out = await anyio.to_thread.run_sync(
                view.write_marks, ids, changes, paths, pixels, identities)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except Stale as exc:
            raise HTTPException(409, str(exc)) from None
        except CatalogError as exc:  # the marks file cannot be written (read-only)
            raise HTTPException(403, str(exc)) from None
        except BodaError as exc:
            raise _fail(exc) from None
        return _json(out, **{"Cache-Control": "no-store"})

    @get("/api/images")
    def images(
        only: str | None = None,
        q: str | None = Query(None, max_length=MAX_QUERY),
        sort: str = "path",
        order: str | None = None,
        offset: int = Query(0, ge=0, le=MAX_INT),
        limit: int = Query(100, ge=1),
        min_rating: int | None = Query(None, ge=1, le=5),
    ) -> JSONResponse:
        try:
            names = view.parse_only(only)
            _check_query(q)
            spec, descending, sort, order = view.sort_spec(sort, order)
            limit = min(limit, MAX_LIMIT)
            with view.open() as catalog:
                ids, total = view.select_ids(
                    catalog, names, q=q, sort=spec, descending=descending, offset=offset,
                    limit=limit, min_rating=min_rating,
                )
                records = view.records(catalog, ids)
        except (BodaError, NotFound) as exc:
            raise _fail(exc) from None
        return _json({
            "only": sorted(names), "q": q or "", "sort": sort, "order": order,
            "min_rating": min_rating, "offset": offset, "limit": limit, "total": total,
            "images": records,
        }, **{"Cache-Control": "no-store"})

    @get("/api/images/{image_id}")
    def image(image_id: int = PathParam(le=MAX_INT)) -> JSONResponse:
        try:
            with view.open() as catalog:
                record = view.record(catalog, image_id)
                out = view.record_dict(record, marks=view.mark_index(catalog))
                members: dict[str, Any] = {}
                for flag, (_, group) in sorted(record.flags.items()):
                    if isinstance(group, int):
                        ids = catalog.group_members(flag, group)
                        shown = view.records(catalog, ids[:MAX_MEMBERS])
                        members[flag] = {
                            "group": group, "size": len(ids), "members": list(map(_brief, shown)),
                        }
            out["group_members"] = members
            found = view.set_of(image_id) if members else None
            out["duplicate_set"] = None if found is None else _capped(found)
        except (BodaError, NotFound) as exc:
            raise _fail(exc) from None
        return _json(out, **{"Cache-Control": "no-store"})

    @get("/api/thumbnails/{image_id}")
    def thumbnail(request: Request, image_id: int = PathParam(le=MAX_INT)) -> Response:
        try:
            with view.open() as catalog:
                jpeg = catalog.thumbnails([image_id]).get(image_id)
                if jpeg is None:
                    view.record(catalog, image_id)  # 404 for an id the catalog lacks
        except (BodaError, NotFound) as exc:
            raise _fail(exc) from None
        if jpeg is None:
            raise HTTPException(404, f"the record with id {image_id} has no thumbnail")
        # Revalidated each time (a new scan may replace it), answered by a 304.
        tag = '"' + hashlib.blake2b(jpeg, digest_size=12).hexdigest() + '"'
        headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        return Response(jpeg, media_type="image/jpeg", headers=headers)

    @get("/api/preview/{image_id}")
    def preview(image_id: int = PathParam(le=MAX_INT), max_side: int = Query(1024, ge=16)
                ) -> Response:
        try:
            with previews:  # the others wait: each decode of a large file holds memory
                jpeg = view.preview(image_id, min(max_side, MAX_PREVIEW_SIDE))
        except (BodaError, NotFound, Unreadable) as exc:
            raise _fail(exc) from None
        return Response(jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=60"})

    @get("/api/duplicates")
    def duplicates(
        kind: str | None = None,
        offset: int = Query(0, ge=0, le=MAX_INT),
        limit: int = Query(50, ge=1),
    ) -> JSONResponse:
        if kind not in (None, "", "exact", "near"):
            raise HTTPException(400, f"unknown kind {kind!r}; use exact or near")
        try:
            sets = view.duplicate_plan()
            if kind:
                sets = [s for s in sets if s[f"{kind}_groups"]]
            limit = min(limit, MAX_LIMIT)
            with view.open() as catalog:
                index = view.mark_index(catalog)
        except BodaError as exc:
            raise _fail(exc) from None
        shown = [_with_marks(_capped(s), index) for s in sets[offset : offset + limit]]
        return _json({"kind": kind or "", "total": len(sets), "offset": offset,
                      "limit": limit, "sets": shown}, **{"Cache-Control": "no-store"})

    @get("/api/failures")
    def failures(offset: int = Query(0, ge=0, le=MAX_INT),
                 limit: int = Query(500, ge=1)) -> JSONResponse:
        from boda.report._html import not_scanned_lines

        limit = min(limit, MAX_LIMIT)
        try:
            with view.open() as catalog:
                ids, total = catalog.select_ids(failed=True, offset=offset, limit=limit)
                rows = [
                    {"id": r["id"], "path": r["path"], "absolute_path": r["absolute_path"],
                     "error": r["error"]}
                    for r in view.records(catalog, ids)
                ]
                reasons = [
                    {"reason": reason, "count": n, "example": visible(display_path(first))}
                    for reason, n, first in catalog.failure_reasons()
                ]
                not_scanned = not_scanned_lines(catalog)
        except BodaError as exc:
            raise _fail(exc) from None
        return _json({"total": total, "offset": offset, "limit": limit, "failures": rows,
                      "reasons": reasons, "not_scanned": not_scanned})

    @get("/api/paths")
    def paths(only: str | None = None, q: str | None = Query(None, max_length=MAX_QUERY),
              print0: int = Query(0, ge=0, le=1),
              download: int = Query(0, ge=0, le=1),
              min_rating: int | None = Query(None, ge=1, le=5)) -> Response:
        try:
            names = view.parse_only(only)
            _check_query(q)
            end = b"\0" if print0 else b"\n"
            # boda.report.selected_paths(..., root=folder), the paths of `boda report
            # --paths`, picked by SQL as the pages are (tests/test_serve.py checks they agree)
            with view.open() as catalog:
                ids = view.select_ids(catalog, names, q=q, min_rating=min_rating)[0]
                relpaths = catalog.relpaths_of(ids)
            base = os.fsencode(view.root)
            chosen = (os.path.join(base, relpaths[i]) for i in ids if i in relpaths)
            kept, left_out, gone = [], 0, 0
            for path in chosen:
                if end in path:  # as `boda report --paths`: a name with a newline needs print0
                    left_out += 1
                elif not os.path.lexists(path):  # deleted since the scan: left out, as there
                    gone += 1
                else:
                    kept.append(path + end)
        except BodaError as exc:
            raise _fail(exc) from None
        headers = {"X-Boda-Left-Out": str(left_out), "X-Boda-Gone": str(gone),
                   "Cache-Control": "no-store",
                   "X-Boda-Not-UTF8": str(sum(not is_utf8(p) for p in kept))}
        if download:
            name = "paths-" + ("-".join(sorted(names)) or "all") + ("-search" if q else "") + (
                f"-{min_rating}stars" if min_rating else "") + (
                ".txt0" if print0 else ".txt")
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        # The raw bytes of the names (not UTF-8 ones included), as the CLI prints them.
        return Response(b"".join(kept), media_type="text/plain; charset=utf-8", headers=headers)


def _refuse(message: str, status: int = 403) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status,
                        headers={**_HEADERS, "Cache-Control": "no-store"})


def _write_refused(request: Request, view: CatalogView, read_only: bool) -> JSONResponse | None:
    """The 403 of a write this app does not take, or None.  The Host header was checked
    before (:class:`_HostGuard`), and so was a ``Sec-Fetch-Site`` of another site."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        return _refuse(f"refused: a write needs Content-Type: application/json, not "
                       f"{kind or 'none'!r} (a form of another page cannot change marks)")
    site = request.headers.get("sec-fetch-site", "").strip().lower()
    if site and site != "same-origin":
        return _refuse(f"refused: marks are changed from the page of this app only "
                       f"(Sec-Fetch-Site: {site})")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    if origin is not None and origin.strip().lower().rstrip("/") != own:
        return _refuse(f"refused: a write from another origin ({origin!r}); marks are changed "
                       f"from the page of this app only ({own})")
    if read_only:
        return _refuse("this boda serve is read-only (--read-only): marks cannot be changed; "
                       "start it without --read-only, or use boda mark")
    reason = view.marks_writable()
    if reason is not None:
        return _refuse(reason)
    return None


def _mark_request(
    body: bytes,
) -> tuple[list[int], dict[str, Any], list[str] | None, list[str | None] | None,
           list[str | None] | None]:
    """The ids, the changes (``decision``, ``rating``), the paths and the pixel hashes of
    a ``POST /api/marks`` body, checked: ``{"ids": [1, 2], "decision": "pick" | "reject"
    | null, "rating": 0-5, "paths": ["a.jpg", "b.jpg"], "pixels": ["9f…", null]}`` (a
    decision, a rating or both; 0 or null clears the rating).  ``paths`` and ``pixels``,
    optional, are the ``path`` and ``pixel_hash`` the page was given for each id: the
    marks are refused (409) when an id names another file, or other pixels, now;
    ``identities``, optional beside ``pixels``, the ``file_identity`` it was given: other
    pixels of that very file (a scan at another ``--max-side``) are no reason to refuse."""
    import json

    example = 'e.g. {"ids": [12], "decision": "pick"} or {"ids": [12], "rating": 3}'

    def once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # {"ids": [1], "ids": [2]}: JSON parsers disagree on which one counts (Python's
        # the last, others the first), so a mark could go to a file the sender did not mean
        seen: set[str] = set()
        twice: set[str] = set()
        for key, _ in pairs:
            (twice if key in seen else seen).add(key)
        if twice:
            raise InvalidParameterError(
                f"field {', '.join(map(repr, sorted(twice)))} given twice; give each field once")
        return dict(pairs)

    try:
        data = json.loads(body, object_pairs_hook=once)
    except InvalidParameterError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested too deep: not a mark
        raise InvalidParameterError(f"the request is not JSON; send {example}") from None
    if not isinstance(data, dict):
        raise InvalidParameterError(f"the request must be a JSON object; send {example}")
    unknown = sorted(set(data) - {"ids", "decision", "rating", "paths", "pixels", "identities"})
    if unknown:
        raise InvalidParameterError(
            f"unknown field {', '.join(map(repr, unknown))}; use ids, decision, rating, paths, "
            "pixels, identities")
    ids = data.get("ids")
    if (not isinstance(ids, list) or not ids or len(ids) > MAX_MARK_IDS
            or not all(type(i) is int and 0 <= i <= MAX_INT for i in ids)):
        raise InvalidParameterError(
            f"ids must be a list of 1 to {MAX_MARK_IDS} record ids (whole numbers); {example}")
    changes: dict[str, Any] = {}
    if "decision" in data:
        if data["decision"] not in (None, "pick", "reject"):
            raise InvalidParameterError(
                f"decision must be \"pick\", \"reject\" or null (undecided); got "
                f"{data['decision']!r}")
        changes["decision"] = data["decision"]
    if "rating" in data:
        rating = data["rating"]
        if rating is not None and (type(rating) is not int or not 0 <= rating <= 5):
            raise InvalidParameterError(
                f"rating must be a whole number of stars from 0 (none) to 5; got {rating!r}")
        changes["rating"] = rating or None
    if not changes:
        raise InvalidParameterError(f"give a decision, a rating or both; {example}")
    unique = list(dict.fromkeys(ids))
    paths = _per_id(data, "paths", ids, unique, lambda v: isinstance(v, str),
                    "the path shown for each id")
    pixels = _per_id(data, "pixels", ids, unique, lambda v: v is None or isinstance(v, str),
                     "the pixel_hash shown for each id (null for none)")
    identities = _per_id(data, "identities", ids, unique,
                         lambda v: v is None or isinstance(v, str),
                         "the file_identity shown for each id (null for none)")
    return unique, changes, paths, pixels, identities


def _per_id(data: dict[str, Any], name: str, ids: list[int], unique: list[int],
            valid: Callable[[Any], bool], what: str) -> list[Any] | None:
    """The optional list ``data[name]`` (one value per id, each ``valid``), in the order
    of ``unique`` (ids given twice must come with one value)."""
    values = data.get(name)
    if values is None:
        return None
    if not isinstance(values, list) or len(values) != len(ids) or not all(map(valid, values)):
        raise InvalidParameterError(f"{name} must be a list of {what}, as many as ids")
    shown = dict(zip(ids, values, strict=True))
    if any(shown[i] != v for i, v in zip(ids, values, strict=True)):
        raise InvalidParameterError(f"{name} give one id two different values")
    return [shown[i] for i in unique]


def _check_query(q: str | None) -> None:
    if q and "\0" in q:
        raise InvalidParameterError("q holds a NUL character, which no file name holds")




def _brief(record: dict[str, Any]) -> dict[str, Any]:
    """What a card of a group member shows."""
    keys = ("id", "path", "status", "width", "height", "size", "flags", "flag_scores", "mirrored",
            "decision", "rating")
    return {key: record[key] for key in keys}


def _capped(found: dict[str, Any]) -> dict[str, Any]:
    """A duplicate set with at most :data:`MAX_MEMBERS` copies listed (a folder of
    50 000 copies of one file has one set of 50 000); the counts say how many."""
    return {
        **found,
        "redundant": found["redundant"][:MAX_MEMBERS],
        "linked": found["linked"][:MAX_MEMBERS],
        "redundant_count": len(found["redundant"]),
        "linked_count": len(found["linked"]),
    }


def _with_marks(found: dict[str, Any], index: MarkIndex) -> dict[str, Any]:
    """A duplicate set whose members hold their ``decision`` and ``rating`` (the page's
    cards show them; a picked copy is kept too), as new dicts: the plan is cached."""

    def marked(member: dict[str, Any]) -> dict[str, Any]:
        decision, rating = index.mark_of(member["id"])
        return {**member, "decision": decision, "rating": rating}

    return {**found, "keep": marked(found["keep"]),
            "redundant": list(map(marked, found["redundant"])),
            "linked": list(map(marked, found["linked"]))}


def _count_unflagged(view: CatalogView) -> int:
    with view.open() as catalog:
        return catalog.select_ids(unflagged=True, limit=0)[1]


def _summary(view: CatalogView, read_only: bool = False) -> dict[str, Any]:
    """The numbers and words of the report's header and summary, as JSON."""
    from boda.core.text import visible
    from boda.report._html import _rule_text, _thresholds, last_scan_state
    from boda.scan import ANALYSIS_VERSION, flag_descriptions

    descriptions = view.selections()
    flag_names = flag_descriptions()
    with view.open() as catalog:
        counts = catalog.count()
        flag_counts = catalog.flag_counts()
        thresholds = _thresholds(catalog.get_setting("thresholds"))
        stale = catalog.flags_stale()
        complete, pending = last_scan_state(catalog)  # as the report says it
        last_scan = catalog.get_setting("last_scan")
        analysis = catalog.get_setting("analysis")
        mark_counts = view.mark_counts(catalog)
        content_version = catalog.content_version()
    last_scan = last_scan if isinstance(last_scan, dict) else {}
    selection_counts = {name: flag_counts.get(name, 0) for name in flag_names}
    unflagged = view.cached("unflagged", lambda: _count_unflagged(view))  # ~0.1 s at 100 000
    selection_counts.update(failed=counts["error"], unflagged=unflagged, **mark_counts)
    waiting = []  # counts that need a pass over every record: filled in when ready
    for name in set(descriptions) - view.sql_selections() - set(MARK_SELECTIONS):
        ids = view.selection_ids(name, wait=False)
        selection_counts[name] = None if ids is None else len(ids)
        if ids is None:
            waiting.append(name)
    scores = view.score_names(wait=False)
    if scores is None:
        waiting.append("scores")
    rules = _rule_text(thresholds)
    warnings = []
    running = view.scan_running()
    unfinished = complete is False and not running
    scan: dict[str, Any] = {"running": running, "analysed": None, "to_analyse": None}
    if running:
        # While the scan analyses, its `last_scan` says how many files it has to (and
        # when it started); before that (finding files), it is the previous scan's.
        to_analyse = last_scan.get("to_analyse") if "started" in last_scan else None
        if complete is False and isinstance(to_analyse, int) and isinstance(pending, int):
            scan.update(analysed=max(0, to_analyse - pending), to_analyse=to_analyse)
            warnings.append(
                f"A scan is running: {scan['analysed']} of {to_analyse} "
                f"file{'s' * (to_analyse != 1)} analysed. "
                "This page shows the results saved so far and updates itself; the flags and "
                "duplicate sets are those of the scan before until it ends."
            )
        else:
            warnings.append("A scan is running: it is looking for new and changed files. "
                            "This page updates itself when it has results.")
    if unfinished:
        warnings.append(
            "The last scan did not finish (it was interrupted)"
            + (f": {pending} file{'s were' if pending != 1 else ' was'} still to analyse"
               if isinstance(pending, int) else "")
            + ". New files among them are missing, changed ones show their previous scores; "
            "files that were deleted are gone. Run `boda scan` on the folder again to finish."
        )
    version = analysis.get("version") if isinstance(analysis, dict) else None
    if isinstance(version, int) and version < ANALYSIS_VERSION and not running:
        warnings.append(  # an older boda's scores and flags: new flags are missing, not zero
            f"The catalog was analysed by an older boda (analysis version {version}; this "
            f"one has {ANALYSIS_VERSION}), so its scores and flags lack this version's "
            "changes. Run `boda scan` on the folder to analyse it afresh."
        )
    elif stale and not running:
        warnings.append(
            "The flags are out of date: the last scan was stopped before it derived them "
            "from its results, so they are those of the scan before (files that are gone "
            "have lost theirs). Run `boda scan` on the folder again to update them: no image "
            "is decoded again for that."
        )
    from boda.scan._flags import DUPLICATE_FLAGS, _rules

    sorts = ["path", "size", "taken", "rating", *(r.name for r in _rules()), *DUPLICATE_FLAGS]
    unwritable = None if read_only else view.marks_writable()
    return {
        "folder": visible(os.fsencode(view.root)),
        "catalog": visible(os.fsencode(view.path.absolute())),
        "version": __version__,
        "counts": counts,
        "total": sum(counts.values()),
        "flag_counts": flag_counts,
        "selections": [
            {"name": name, "description": text, "count": selection_counts.get(name),
             "flag": name in flag_names, "rule": rules.get(name),
             "dataset": name in DATASET_SELECTIONS, "mark": name in MARK_SELECTIONS}
            for name, text in descriptions.items()
        ],
        "thresholds": thresholds,
        "rules": rules,
        "flags_stale": stale,
        "last_scan": {"complete": complete, "pending": pending},
        # changes whenever a scan changes the records or flags: the page then says that
        # what it shows is older than the catalog (not after a scan that found no change)
        "catalog_version": content_version,
        "unfinished": unfinished,
        "scan": scan,
        "warnings": warnings,
        "sorts": sorts,
        "score_keys": {r.name: r.score_key for r in _rules()},
        "scores": scores or [],
        "pending": sorted(waiting),
        "max_limit": MAX_LIMIT,
        "max_preview_side": MAX_PREVIEW_SIDE,
        "marks": {
            "file": visible(os.fsencode(view.marks_file.absolute())),
            "writable": not read_only and unwritable is None,
            "read_only": read_only,
            "reason": "boda serve was started with --read-only" if read_only else unwritable,
            "counts": mark_counts,
            # changes whenever the marks file does (this app's writes, boda mark, another
            # tab): the page then reads the marks of its cards again
            "version": "-".join(map(str, view.marks_state())),
        },
    }
