"""``boda mark``: pick, reject or rate files of a scanned folder from the shell."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from boda.cli._common import (
    catalog_option,
    console,
    examples,
    handle_errors,
    print_json,
    refuse_other_folders_catalog,
    shown,
)


def register(app: typer.Typer) -> None:
    """Add the ``mark`` command to ``app``."""

    @app.command(
        "mark",
        epilog=examples(
            "boda mark trip trip/IMG_0031.jpg --pick --rating 5",
            "# reject the redundant copies, then review the rest in boda serve",
            "boda report trip --only redundant --paths | boda mark trip --reject -",
            "boda report trip --only redundant --print0 | boda mark trip --reject --null -",
            "# clear every mark of the folder",
            "boda report trip --paths | boda mark trip --undecided --rating 0 -",
            notes="Marks are kept beside the catalog (DIR/.boda/catalog.marks.db), never in "
            "your files. A new scan keeps them, and carries them along when a file is moved "
            "or renamed (edited too: matched by its pixels); a file whose pixels were edited "
            "in place, or another photo put at its path, is undecided again. Select them "
            "with boda report DIR --only picked, rejected, undecided or rated, and "
            "--min-rating N. PATH is a file as boda "
            "report --paths prints it (DIR joined with its path in DIR) or its path in DIR "
            "(--relative); - reads the paths from stdin, one a line (--null: NUL-separated). "
            "A path the catalog does not hold, or a link to another file of DIR (in no "
            "selection; clearing its marks passes), stops the command before any mark changes.",
        ),
    )
    @handle_errors
    def mark_command(
        directory: Path = typer.Argument(..., metavar="DIR", help="A scanned folder."),
        paths: list[str] = typer.Argument(  # noqa: B008
            None, metavar="PATH", help="Files to mark; - reads them from stdin."
        ),
        pick: bool = typer.Option(False, "--pick", help="Pick the files."),
        reject: bool = typer.Option(False, "--reject", help="Reject the files."),
        undecided: bool = typer.Option(
            False, "--undecided", help="Clear the pick or reject (keeps the rating)."
        ),
        rating: int = typer.Option(
            None, "--rating", metavar="0-5", min=0, max=5,
            help="Give the files this many stars (0: clear the rating).",
        ),
        null: bool = typer.Option(
            False, "--null", "-0", help="The paths on stdin are separated by NUL bytes."
        ),
        catalog: Annotated[Path | None, catalog_option()] = None,
        as_json: bool = typer.Option(
            False, "--json", help="Print what was marked as JSON."
        ),
    ) -> None:
        """Pick, reject or rate (1-5 stars) files of a scanned folder, for culling from
        the shell; boda serve does the same in the browser."""
        from boda.catalog import Catalog, Marks, default_catalog_path
        from boda.errors import InvalidParameterError

        if pick + reject + undecided > 1:
            raise InvalidParameterError("give one of --pick, --reject and --undecided")
        decision = "pick" if pick else "reject" if reject else None
        if not (pick or reject or undecided) and rating is None:
            raise InvalidParameterError(
                "say what to mark: --pick, --reject, --undecided and/or --rating 0-5"
            )
        names = list(paths or [])
        if not names:
            raise InvalidParameterError("give the files to mark (PATH...), or - to read stdin")
        if catalog is None and not directory.is_dir():
            raise InvalidParameterError(f"{str(directory)!r} is not a folder; give a scanned one")
        if "-" in names:
            if names != ["-"]:
                raise InvalidParameterError("- reads the paths from stdin: give it alone")
            names = _stdin_paths(null)
        setting = pick or reject or bool(rating)  # not only clearing marks
        if catalog is None:
            from boda.cli._common import refuse_sub_folder

            refuse_sub_folder(directory, "mark")
        with Catalog(catalog or default_catalog_path(directory), readonly=True) as opened:
            catalog_path = opened.path
            refuse_other_folders_catalog(opened, directory, "mark", "Nothing was marked")
            relpaths = [_relpath(name, directory, opened.has_file) for name in names]
            links = _link_targets(opened) if setting else {}
        unknown = [name for name, rel in zip(names, relpaths, strict=True) if rel is None]
        if unknown:
            listed = ", ".join(shown(n) for n in unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise InvalidParameterError(
                f"{len(unknown)} path{'s' * (len(unknown) != 1)} not in the catalog of "
                f"{shown(directory)} (nothing was marked): {listed}; give files as 'boda report "
                f"{shown(directory)} --paths' prints them, and scan new files first"
            )
        # a link's mark is in no selection and no count (links are in none): "picked 1
        # file (1 change)" changed nothing a report shows, so it is refused, naming the
        # file to mark (clearing one passes: it can only take a stale mark away)
        linked = [(name, links[rel]) for name, rel in zip(names, relpaths, strict=True)
                  if rel in links]
        if linked:
            listed = ", ".join(f"{shown(n)} -> {shown(directory / os.fsdecode(t))}"
                               for n, t in linked[:5]) + (" …" if len(linked) > 5 else "")
            many = len(linked) != 1
            raise InvalidParameterError(
                f"{len(linked)} path{'s are links' if many else ' is a link'} to another "
                f"file of {shown(directory)}, and a link is in no selection (nothing was "
                f"marked): {listed}; mark the file{'s' * many} linked to instead")
        chosen = [rel for rel in relpaths if rel is not None]
        changed = 0
        with Marks(catalog_path) as marks:
            if pick or reject or undecided:
                changed += marks.set_decision(chosen, decision)
            if rating is not None:
                changed += marks.set_rating(chosen, rating)
            where = marks.path
        counts = _counts(catalog_path)
        files = len(set(chosen))
        if as_json:
            print_json({
                "marks_file": str(where), "files": files, "changed": changed,
                "decision": decision if (pick or reject or undecided) else "unchanged",
                "rating": rating, "counts": counts,
            })
            return
        what = [w for w in (
            "picked" if pick else "rejected" if reject else "undecided" if undecided else "",
            "" if rating is None else f"rated {rating}" if rating else "unrated",
        ) if w]
        console.print(
            f"{' and '.join(what)} {files} file{'s' * (files != 1)} ({changed} change"
            f"{'s' * (changed != 1)}); now {counts['pick']} picked, {counts['reject']} rejected, "
            f"{counts['rated']} rated", highlight=False,
        )


def _counts(catalog_path: Path) -> dict[str, int]:
    """Picked, rejected and rated files of the catalog (as the selections count them:
    marks of files gone since, or given to another file at the same path, left out)."""
    from boda.catalog import Catalog, marks_path

    with Catalog(catalog_path, readonly=True) as catalog:
        rows = [r for r in catalog.mark_rows(marks_path(catalog_path)) if r[1] != "link"]
    return {
        "pick": sum(r[2] == "pick" for r in rows),
        "reject": sum(r[2] == "reject" for r in rows),
        "rated": sum(r[3] is not None for r in rows),
    }


def _link_targets(catalog) -> dict[bytes, bytes]:
    """The catalog's links (a file symlink to another file of the folder): the link's
    path to its target's, both relative to the folder."""
    records = catalog.records_by_id(catalog.ids_with_status("link"))
    return {r.relpath: r.link_to for r in records.values() if r.link_to is not None}


def _stdin_paths(null: bool) -> list[str]:
    """The paths on stdin, one a line (or NUL-separated), blank entries skipped."""
    data = sys.stdin.buffer.read() if sys.stdin is not None else b""
    parts = data.split(b"\0") if null else data.splitlines()
    return [os.fsdecode(p) for p in parts if p.strip()]


def _relpath(name: str, directory: Path, known) -> bytes | None:
    """The catalog path (bytes, relative to DIR) of ``name``: a path as ``boda report
    --paths`` prints it (DIR joined with the file's path), else a path in DIR
    (``--relative``); None when the catalog holds neither."""
    from boda.catalog._catalog import relpath_bytes

    under = relpath_bytes(name, directory)
    if not under.startswith(b"../") and under != b".." and known(under):
        return under
    inside = relpath_bytes(os.path.join(directory, name), directory)
    if not inside.startswith(b"../") and known(inside):
        return inside
    # DIR or the path through another name of the folder (a link to it, `$PWD` in a folder
    # reached by one, a `realpath`): both resolved, but not the file itself, which may be
    # a link of the folder (a record of its own)
    folder, file = os.path.split(os.path.abspath(name))
    real = relpath_bytes(os.path.join(os.path.realpath(folder), file),
                         os.path.realpath(directory))
    if not real.startswith(b"../") and real != b".." and known(real):
        return real
    return None
