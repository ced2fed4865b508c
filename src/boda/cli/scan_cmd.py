"""``boda scan`` and ``boda report``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

from boda.cli import interrupted_status
from boda.cli._common import (
    catalog_option,
    check_output,
    console,
    err_console,
    examples,
    given_path,
    handle_errors,
    max_pixels_limit,
    max_pixels_option,
    overwrite_option,
    print_json,
    print_json_array,
    progress_bar,
    quiet_option,
    refuse_other_folders_catalog,
    refuse_overwriting_inputs,
    refuse_same_outputs,
    refuse_sub_folder,
    shown,
    warnings_as_notes,
)

#: Exit status of a scan that finished but could not read some files.
EXIT_FILES_FAILED = 3


def _parse_thresholds(items: list[str]) -> dict[str, float]:
    from boda.errors import InvalidParameterError

    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            number = float(value)
        except ValueError:
            raise InvalidParameterError(
                f"--threshold expects NAME=VALUE (e.g. blurry=0.3), got {item!r}"
            ) from None
        name = name.strip()
        # Two values for one flag: the first was dropped without a word.
        if name in out and out[name] != number:
            raise InvalidParameterError(
                f"--threshold {name} is given twice ({name}={out[name]:g} and "
                f"{name}={number:g}); give it once"
            )
        out[name] = number
    return out


def _default_report(directory: Path, catalog: Path | None) -> Path:
    base = catalog.parent if catalog else directory / ".boda"
    return base / "report.html"


def _check_report_output(
    given: Path, report_path: Path, default: Path, option: str, overwrite: bool
) -> None:
    """Before any work: the HTML report named by ``option`` (``given``: a .html file or
    a folder; ``report_path``: the file it stands for) can be written.  The report in
    its default place is boda's own and is rewritten as after every scan, and so is a
    report boda wrote anywhere else (it is made again from the catalog)."""
    from boda.errors import InvalidParameterError
    from boda.report import is_boda_report

    if given.exists() and not given.is_dir() and given != report_path:
        raise InvalidParameterError(
            f"{option} {str(given)!r} is an existing file that is not .html; give a .html "
            "file or a folder"
        )
    own = report_path.resolve() == default.resolve() or is_boda_report(report_path)
    check_output(report_path, overwrite=overwrite or own, option=option)


def _refuse_overwriting_catalog(
    outputs: list[Path], directory: Path, catalog_path: Path
) -> None:
    """Raise if one of ``outputs`` is the catalog or its marks file (or their WAL
    files) or a file it lists: a report or export must not replace what it reports
    on, nor the culling marks, which nothing can make again.  The catalog is
    opened once, and only for outputs inside the scanned folder."""
    from boda.catalog import Catalog, marks_path
    from boda.catalog._catalog import relpath_bytes
    from boda.errors import InvalidParameterError

    databases = (catalog_path, marks_path(catalog_path))
    files = [db.with_name(db.name + end) for db in databases for end in ("", "-wal", "-shm")]
    inside: list[tuple[Path, bytes]] = []
    for output in outputs:
        refuse_overwriting_inputs(output, *files)
        relpath = relpath_bytes(output.resolve(), directory.resolve())
        if relpath != b".." and not relpath.startswith(b"../"):
            inside.append((output, relpath))
    if not inside or not catalog_path.is_file():
        return
    with Catalog(catalog_path, readonly=True) as catalog:
        for output, relpath in inside:
            if catalog.has_file(relpath):
                raise InvalidParameterError(
                    f"refusing to overwrite the scanned file {str(output)!r}; "
                    "choose another output path"
                )


def register(app: typer.Typer) -> None:
    """Add ``scan`` and ``report`` to the app."""

    @app.command(
        "scan",
        epilog=examples(
            "boda scan ~/Pictures/trip",
            "boda scan data/ -w 4 --threshold blurry=0.25 --threshold odd_aspect_ratio=3",
            "boda scan data/ --json --no-report > summary.json",
            "# back to the default thresholds",
            "boda scan data/ --reset-thresholds",
            "# skip the exports and the *.tmp.jpg files (remembered, as thresholds are)",
            "boda scan ~/Pictures/trip --exclude Export/ --exclude '*.tmp.jpg'",
            "# analyse on Ray: a local runtime of 2 CPUs (--address HOST:PORT: a cluster)",
            "boda scan data/ --engine ray -w 2",
            "# left-right flipped copies are near duplicates too (remembered)",
            "boda scan data/ --mirrored",
            "# analyse every file afresh (after an upgrade; a stopped run resumes)",
            "boda scan data/ --reanalyze",
            "# also the report's colour swatches, colourfulness and edge density (remembered)",
            "boda scan ~/Pictures/trip --describe",
            notes="Thresholds given with -t are remembered in the catalog: a later scan (and "
            "'boda report') of the folder uses them until --reset-thresholds, and says so. "
            "What is not the user's photos is skipped by default and counted in the summary: "
            "macOS ._* files, @eaDir, #recycle, #snapshot, @Recycle, $RECYCLE.BIN, System "
            "Volume Information, *.photoslibrary, *.lrdata and other photo-library "
            "packages (docs/scan.md lists them); folders starting with '.' unless "
            "--include-hidden. --exclude patterns are .gitignore-like globs relative to "
            "DIR ('Export/' any folder of that name, '/Export/' or 'Photos/Export/' one "
            "folder, '*.tmp.jpg' a file name at any depth, '!pattern' scans again); "
            "DIR/.bodaignore holds more, one a line, and a .bodaignore in a folder of DIR "
            "holds patterns relative to that folder. A file moved or renamed inside DIR "
            "keeps its scores and marks without being analysed again. "
            "A file symlink to another file of the folder is recorded as a link, not "
            "analysed twice. A scan exits 3 when some files could not be read (they are "
            "listed in the report), 130 when interrupted by Ctrl-C, 143 or 129 when stopped "
            "by SIGTERM or SIGHUP (committed results are kept: rerun to finish).",
        ),
    )
    @handle_errors
    def scan_command(
        directory: Path = typer.Argument(
            ..., metavar="DIR", help="Folder to scan (recursively).", parser=given_path
        ),
        workers: int = typer.Option(
            None, "--workers", "-w", min=1, metavar="N",
            help="Processes (default: all cores); with --engine ray and no --address, the "
            "CPUs of the local Ray runtime.",
        ),
        engine: str = typer.Option(
            "local", "--engine", metavar="local|ray",
            help="Where files are analysed: local (a process pool on this machine) or ray "
            "(Ray tasks: a local Ray runtime, or the cluster of --address; needs "
            "pip install 'boda[ray]'). Same results and catalog.",
        ),
        address: str = typer.Option(
            None, "--address", metavar="ADDR",
            help="The Ray cluster to run on, with --engine ray: auto, HOST:PORT (the head "
            "node, port 6379) or ray://HOST:PORT (Ray's client, port 10001). Every node "
            "must see DIR at the same path (a shared file system).",
        ),
        catalog: Annotated[
            Path | None, catalog_option("Catalog file (default: DIR/.boda/catalog.db).")
        ] = None,
        report: Path = typer.Option(
            None, "--report", metavar="FILE|DIR", parser=given_path,
            help="HTML report: a .html file, or a folder to hold index.html "
            "(default: report.html beside the catalog, DIR/.boda/report.html).",
        ),
        no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report."),
        threshold: list[str] = typer.Option(
            [], "--threshold", "-t", metavar="NAME=VALUE",
            help="Set a flag threshold, NAME=VALUE (repeatable, once per flag; remembered "
            "for later scans of the folder). Names and defaults: "
            "blurry=0.44 (flag below), dark=0.8, light=0.85 (above), low_information=2 "
            "(below, bits), grayscale=3 (below, chroma), odd_aspect_ratio=2.5 (above), "
            "odd_size=16 (above: times fewer or more pixels than most of the folder), "
            "near_duplicate=10 (pHash bits, 0-24); exact_duplicate has none.",
        ),
        reset_thresholds: bool = typer.Option(
            False, "--reset-thresholds",
            help="Forget the thresholds remembered from earlier scans: back to the defaults "
            "(and any -t given now).",
        ),
        mirrored: bool = typer.Option(
            None, "--mirrored/--no-mirrored",
            help="Also count an image and its left-right mirror image (a flipped copy, "
            "resized or recompressed too) as near duplicates (remembered for later scans; "
            "off by default: up to 1.7 times as many chance pairs, docs/duplicates.md).",
            show_default=False,
        ),
        describe: bool = typer.Option(
            None, "--describe/--no-describe",
            help="Also measure what decides no flag: each image's dominant colours (the "
            "report's swatches), colourfulness and edge density (remembered for later "
            "scans; off for a new catalog: about a fifth of the time on small images; "
            "turning it on or off analyses every file again).",
            show_default=False,
        ),
        reanalyze: bool = typer.Option(
            False, "--reanalyze",
            help="Analyse every file afresh, unchanged ones too (after upgrading boda, or "
            "to give files analysed by an older boda the mirrored hash --mirrored needs). "
            "Culling marks are kept; a stopped run is finished by the next scan.",
        ),
        max_side: int = typer.Option(
            None,
            "--max-side",
            min=1,
            metavar="PX",
            help="Analysis resolution: longer side in pixels (default 640; a catalog made "
            "with another value is analysed afresh).",
        ),
        include_hidden: bool = typer.Option(
            False, "--include-hidden", help="Also enter folders whose names start with '.' "
            "(not remembered: a later scan without it forgets their files, counted as "
            "excluded).",
        ),
        exclude: list[str] = typer.Option(
            [], "--exclude", metavar="PATTERN",
            help="Skip the files and folders matching this .gitignore-like pattern, relative "
            "to DIR: 'Export/', 'Photos/2019/', '*.tmp.jpg', '!keep/' (repeatable; "
            "remembered for later scans; files the catalog held under it are forgotten).",
        ),
        no_default_excludes: bool = typer.Option(
            False, "--no-default-excludes",
            help="Also scan what is skipped by default (macOS ._* files, NAS thumbnail "
            "folders and recycle bins, photo-library packages; remembered).",
        ),
        reset_excludes: bool = typer.Option(
            False, "--reset-excludes",
            help="Forget the --exclude patterns and --no-default-excludes remembered from "
            "earlier scans.",
        ),
        max_pixels: str = max_pixels_option(
            annotated=False,
            help="Refuse images of more pixels than this before decoding them (default "
            "178956970, about 179 MP; a JPEG is judged at --max-side): N, NM for millions "
            "(250M), or none for a trusted folder.  A file over it is listed as unreadable "
            "with the reason (exit 3); scans retry such files, so a rerun with a higher "
            "limit reads them.",
        ),
        overwrite: bool = overwrite_option(annotated=False),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Rate every image in DIR: blur, exposure, information, aspect ratio, duplicates.

        Results go to a SQLite catalog (re-scans only analyse new or changed files) and a
        self-contained HTML report. Image files are only ever read.
        """
        from boda.catalog import default_catalog_path
        from boda.errors import InvalidParameterError
        from boda.report import report_file, report_title, write_html_report
        from boda.scan import scan

        if report is not None and no_report:
            raise InvalidParameterError(
                "--report and --no-report contradict each other; give one of them"
            )
        overrides = _parse_thresholds(threshold)
        limit = max_pixels_limit(max_pixels)  # forked workers inherit Pillow's limit too
        report_path = None
        if not no_report:
            default = _default_report(directory, catalog)
            report_path = report_file(report or default)
            if report is not None:  # a bad --report fails now, not after the scan
                catalog_path = catalog or default_catalog_path(directory)
                _refuse_overwriting_catalog([report_path], directory, catalog_path)
                _check_report_output(report, report_path, default, "--report", overwrite)
        display = _ScanDisplay(enabled=not (quiet or as_json))
        try:
            summary = scan(
                directory, catalog_path=catalog, workers=workers, thresholds=overrides,
                max_side=max_side, include_hidden=include_hidden, progress=display.analysis,
                reset_thresholds=reset_thresholds, step=display.step, max_pixels=limit,
                exclude=exclude, default_excludes=False if no_default_excludes else None,
                reset_excludes=reset_excludes, engine=engine, address=address,
                mirrored=mirrored, reanalyze=reanalyze, describe=describe,
            )
        finally:
            display.stop()
        if report_path is not None:
            with progress_bar("writing the report", enabled=not (quiet or as_json)) as update:
                write_html_report(
                    summary.catalog_path, report_path, title=report_title(directory),
                    root=directory, progress=update,
                )
        if as_json:
            data = summary.to_dict()
            data["report"] = str(report_path) if report_path else None
            print_json(data)
        else:
            _print_summary(summary, report_path, defaults_given=no_default_excludes)
        if summary.interrupted:  # said in the summary: no second "interrupted" line
            import boda.cli

            boda.cli.interruption_reported = True
            raise typer.Exit(interrupted_status())
        if summary.failed:
            raise typer.Exit(EXIT_FILES_FAILED)

    @app.command(
        "report",
        epilog=examples(
            "# rewrite DIR/.boda/report.html",
            "boda report ~/Pictures/trip",
            "# every record, failures included",
            "boda report data/ --json > records.json",
            "boda report data/ --csv scores.csv",
            "boda report data/ --parquet scores.parquet",
            "boda report data/ -o /tmp/report.html",
            "# the paths of the blurry and the dark files, one a line",
            "boda report data/ --only blurry,dark",
            "# move the redundant copies into rejects/ (-r: nothing to move, no mv)",
            "mkdir -p rejects",
            "boda report data/ --only redundant --print0"
            " | xargs -0 -r mv --backup=numbered -t rejects/",
            "# keep the training copy of a train/test leak; each record names the file kept",
            "boda report data/ --only redundant --keep-under train/ --json > copies.json",
            "boda report data/ --only failed --json > unreadable.json",
            "boda report data/ --only exact_duplicate,near_duplicate --csv dups.csv",
            "# the test files with an exact or near copy under train/ (a train/test leak)",
            "boda report data/ --under test/ --copy-under train/",
            "# one image in two class folders",
            "boda report data/ --only label_conflict --json > conflicts.json",
            "# files and flags per class folder",
            "boda report data/ --by-folder 2",
            "# after culling in boda serve: the picks rated 4 stars or more",
            "boda report ~/Pictures/trip --only picked --min-rating 4",
            notes="--only takes flag names (blurry, dark, light, low_information, grayscale, "
            "odd_aspect_ratio, odd_size, exact_duplicate, near_duplicate), failed (unreadable "
            "files), "
            "unflagged (readable, no flag), redundant (copies of a kept file: identical, or "
            "within the near-duplicate tolerance of it; the file kept is one you picked, "
            "else one you did not reject, then under --keep-under if one is, then not in a "
            "trash or cache folder (#recycle, $RECYCLE.BIN, Trash, "
            "@eaDir...) nor one of copies (Backup, Old...), then a camera RAW (the halves of a "
            "RAW+JPEG pair are never listed for each other), then not named as an edit "
            "(IMG_1-edited.jpg, listed only as an exact copy), then has the fewest other "
            "flags, then most pixels, then is not flagged blurry, then is best exposed "
            "(mean lightness within half a stop of the set's median file, no more clipping), "
            "then is sharpest (by more than 0.015), then not named as a copy of another "
            "(IMG_1 (1).JPG, IMG_1 copy.JPG...), then first in path order; a near-duplicate "
            "group may keep "
            "several files; a file a link "
            "points to is never listed), label_conflict (files whose exact copy lies in a "
            "folder of another name: one image, two class labels), and your own marks (boda "
            "serve, boda mark): picked, rejected, undecided (readable, neither picked nor "
            "rejected) and rated (1-5 stars); several names select their union. --min-rating "
            "keeps the files rated that many stars or more. --under keeps the files under a "
            "folder of DIR, --copy-under those that have "
            "a copy under one (identical, or within the near-duplicate tolerance of the file "
            "itself); with --only, the files in all of them. They filter --json, --csv, "
            "--parquet and --paths; alone they print the paths (--relative: relative to DIR). "
            "Files deleted since the last scan are left out of the paths and counted on "
            "stderr. The HTML report always shows the whole folder.  --csv - writes the table "
            "to stdout.",
        ),
    )
    @handle_errors
    def report_command(
        directory: Path = typer.Argument(
            ..., metavar="DIR", help="A scanned folder.", parser=given_path
        ),
        catalog: Annotated[Path | None, catalog_option()] = None,
        out: Path = typer.Option(
            None, "--output", "-o", metavar="FILE|DIR", parser=given_path,
            help="HTML report: a .html file, or a folder to hold index.html.",
        ),
        out_alias: Path = typer.Option(None, "--out", hidden=True),  # the old name
        as_json: bool = typer.Option(
            False, "--json", help="Print every catalog record as JSON to stdout."
        ),
        csv_path: Path = typer.Option(
            None, "--csv", metavar="FILE|-", help="Write a CSV table to this file (-: stdout)."
        ),
        parquet_path: Path = typer.Option(
            None, "--parquet", metavar="FILE",
            help="Write the CSV's table as Parquet, typed (needs the parquet extra).",
        ),
        only: list[str] = typer.Option(
            [], "--only", metavar="NAME[,NAME...]",
            help="Keep only the files in these selections, NAME[,NAME...] (repeatable; the "
            "union): a flag name, failed, unflagged, redundant, label_conflict, picked, "
            "rejected, undecided or rated (see below).",
        ),
        paths: bool = typer.Option(
            False, "--paths",
            help="Print the path of each selected file (DIR joined with its path in DIR), "
            "one a line, for xargs -d '\\n'. Names holding a newline need --print0.",
        ),
        print0: bool = typer.Option(
            False, "--print0", help="As --paths, separated by NUL bytes (for xargs -0)."
        ),
        relative: bool = typer.Option(
            False, "--relative",
            help="As --paths, each path relative to DIR (for rsync --files-from, cp --parents).",
        ),
        under: list[str] = typer.Option(
            [], "--under", metavar="PREFIX",
            help="Keep only the files under this folder of DIR, e.g. test/ (repeatable; "
            "with --only: the files in both).",
        ),
        copy_under: list[str] = typer.Option(
            [], "--copy-under", metavar="PREFIX",
            help="Keep only the files that have an exact or near copy under this folder of "
            "DIR (repeatable): --under test/ --copy-under train/ lists the test files that "
            "leak from train/ (with --json, each record's copy_of names its copy).",
        ),
        by_folder: int = typer.Option(
            None, "--by-folder", metavar="DEPTH", min=1,
            help="Print the files and flag counts per folder, by its first DEPTH names "
            "(1: train, test; 2: train/cat...); with --json as JSON.",
        ),
        keep_under: list[str] = typer.Option(
            [], "--keep-under", metavar="PREFIX",
            help="With --only redundant: keep the copy under this folder of DIR (e.g. "
            "train/) rather than one elsewhere (repeatable).",
        ),
        min_rating: int = typer.Option(
            None, "--min-rating", metavar="STARS", min=1, max=5,
            help="Keep only the files you rated this many stars (1-5) or more, in boda serve "
            "or with boda mark (with --only: the files in both).",
        ),
        overwrite: bool = overwrite_option(annotated=False),
        quiet: bool = quiet_option(short=True, annotated=False),
    ) -> None:
        """Write the HTML report of a scanned folder, export its catalog as JSON / CSV /
        Parquet, or list the files to act on (--only ... --paths)."""
        from boda.catalog import Catalog, default_catalog_path
        from boda.errors import InvalidParameterError
        from boda.report import (
            is_boda_csv,
            is_boda_parquet,
            iter_catalog_records,
            report_file,
            report_title,
            select_records,
            write_csv,
            write_html_report,
            write_parquet,
        )
        from boda.report._keep import _keep_prefixes
        from boda.report._parquet import _pyarrow
        from boda.report._select import _folder_prefixes, _selection_names

        if out is not None and out_alias is not None:
            raise InvalidParameterError("--out is the old name of --output; give one of them")
        out = out if out is not None else out_alias
        to_stdout = csv_path is not None and str(csv_path) == "-"
        if to_stdout and as_json:
            raise InvalidParameterError(
                "--csv - and --json both write to stdout; run 'boda report' once for each"
            )
        if catalog is None and not directory.exists():
            raise InvalidParameterError(
                f"{str(directory)!r} does not exist, so it has no catalog; give a scanned folder"
            )
        if catalog is None and not directory.is_dir():  # as boda scan, mark and serve
            raise InvalidParameterError(
                f"{str(directory)!r} is not a folder; give a scanned folder (a catalog file: "
                "--catalog FILE)"
            )
        if catalog is not None and not catalog.exists():
            raise InvalidParameterError(
                f"--catalog {str(catalog)!r}: no such file; give the catalog of a scanned folder"
            )
        if catalog is None:
            refuse_sub_folder(directory, "report")
        selection = _selection_names(only) if only else None  # a bad name: exit 2 at once
        if keep_under and (selection is None or "redundant" not in selection):
            raise InvalidParameterError(
                "--keep-under chooses the file kept in each duplicate set: use it with "
                "--only redundant"
            )
        keep = _keep_prefixes(keep_under, "--keep-under")  # a bad prefix: exit 2 at once
        for given, option in ((under, "--under"), (copy_under, "--copy-under")):
            _folder_prefixes(given, option)  # a folder outside DIR: exit 2 at once
        # the filters besides --only (every export takes them by these names)
        folders = {
            "under": under or None, "copy_under": copy_under or None, "min_rating": min_rating,
        }
        filtered = selection is not None or bool(under or copy_under) or min_rating is not None
        paths = paths or print0 or relative
        tables = csv_path is not None or parquet_path is not None
        if paths and (as_json or tables or out is not None):
            raise InvalidParameterError(
                "--paths, --print0 and --relative print file paths to stdout and cannot be "
                "combined with --json, --csv, --parquet or -o; run 'boda report' once for each"
            )
        if filtered and out is not None:
            given = [name for name, value in (
                ("--only", selection), ("--under", under), ("--copy-under", copy_under),
                ("--min-rating", min_rating)) if value]
            raise InvalidParameterError(
                f"{' and '.join(given)} filter{'s' * (len(given) == 1)} --json, --csv, "
                "--parquet and --paths; the HTML report (-o) always shows the whole folder"
            )
        if parquet_path is not None:
            if str(parquet_path) == "-":
                raise InvalidParameterError(
                    "--parquet writes a file (Parquet is not streamed to stdout); give a file name"
                )
            _pyarrow()  # not installed: say so before anything is written
        if by_folder is not None:
            if paths or tables or out is not None:
                raise InvalidParameterError(
                    "--by-folder prints counts per folder and cannot be combined with --paths, "
                    "--print0, --relative, --csv, --parquet or -o; run 'boda report' once for "
                    "each"
                )
            _print_by_folder(
                catalog or directory, by_folder, selection, {**folders, "keep_under": keep},
                as_json,
            )
            return
        # --only alone lists the selected paths (it never writes an unfiltered report).
        paths = paths or (filtered and not as_json and not tables)
        # No catalog: fail before writing anything.  A folder given as --catalog
        # stands for the catalog in it.
        with Catalog(catalog or default_catalog_path(directory), readonly=True) as opened:
            catalog_path = opened.path
            # Another folder's catalog would list (and --only redundant | xargs rm would
            # remove) the files of DIR that share its paths.
            refuse_other_folders_catalog(opened, directory, "report", "Nothing was written")
        if paths:
            _warn_if_flags_stale(catalog_path)
            with _folder_notes():
                _print_paths(
                    catalog_path, selection, directory, b"\0" if print0 else b"\n", keep,
                    relative=relative, folders=folders,
                )
            return
        html = None
        default = _default_report(directory, catalog)
        if not as_json and not tables or out is not None:
            html = report_file(out or default)
        csv_file = None if to_stdout else csv_path
        refuse_same_outputs(**{"--csv": csv_file, "--parquet": parquet_path, "--output": html})
        outputs = [path for path in (csv_file, parquet_path, html) if path is not None]
        _refuse_overwriting_catalog(outputs, directory, catalog_path)
        # Every output is checked before anything is written.
        if csv_file is not None:
            # a table boda exported is made again from the catalog: replaced like the report
            check_output(csv_file, overwrite=overwrite or is_boda_csv(csv_file), option="--csv")
        if parquet_path is not None:
            check_output(
                parquet_path, overwrite=overwrite or is_boda_parquet(parquet_path),
                option="--parquet",
            )
        if html is not None:
            _check_report_output(out or default, html, default, "--output", overwrite)
        _warn_if_flags_stale(catalog_path)
        # A selection's files that are gone since the scan: said (the export keeps them).
        gone = _Gone(directory, catalog_path) if filtered else None
        if as_json:
            records = (
                iter_catalog_records(catalog_path) if not filtered
                else select_records(catalog_path, selection, keep_under=keep, **folders)
            )
            with progress_bar("exporting JSON", enabled=not quiet) as update, _folder_notes():
                print_json_array(_counted(gone.watch(records) if gone else records,
                                          catalog_path, update))
        if to_stdout:
            _print_csv(catalog_path, selection, keep, folders=folders, gone=gone)
        elif csv_path is not None:
            with progress_bar("writing the CSV", enabled=not quiet) as update, _folder_notes():
                written = write_csv(
                    catalog_path, csv_path, progress=update, only=selection, keep_under=keep,
                    **folders,
                )
            if gone:
                gone.check_csv(written)
            err_console.print(f"CSV written to [bold]{shown(written)}[/]")
        if parquet_path is not None:
            with (
                progress_bar("writing the Parquet table", enabled=not quiet) as update,
                _folder_notes(),
            ):
                written = write_parquet(
                    catalog_path, parquet_path, progress=update, only=selection,
                    keep_under=keep, **folders,
                )
            if gone:
                gone.check_parquet(written)
            err_console.print(f"Parquet table written to [bold]{shown(written)}[/]")
        if gone:
            gone.say(left_out=False)
        if html is not None:
            with progress_bar("writing the report", enabled=not quiet) as update:
                path = write_html_report(
                    catalog_path, html, title=report_title(directory), root=directory,
                    progress=update,
                )
            (err_console if as_json else console).print(f"report: [bold]{shown(path)}[/]")


#: What each long step of a scan is called on the console (``scan(step=...)``).
_STEP_LABELS = {
    "walk": "listing files",
    "compare": "comparing with the catalog",
    "flags": "deriving flags",
    "duplicates": "grouping duplicates",
    "distances": "measuring duplicate groups",
    "save": "saving flags",
}


class _ScanDisplay:
    """The scan's progress on stderr: one line per long step, the analysis bar
    with its rate (images analysed per second since the analysis began).

    The steps before the analysis redraw only when called (no display thread
    may run while the scan forks its workers); from the analysis on, a thread
    keeps the bars moving, through the duplicate grouping too.
    """

    def __init__(self, *, enabled: bool):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        def columns() -> tuple:
            return (
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), TimeRemainingColumn(),
            )

        # Steps show while they run and go when done (transient, removed), so a
        # small folder's scan ends as before: the analysis bar and the summary.
        # The steps only on a terminal (a log gets the analysis bar and the summary,
        # as before the steps were shown).
        self._show_steps = enabled and err_console.is_terminal
        self._before = Progress(
            *columns(), console=err_console, disable=not self._show_steps, auto_refresh=False,
            transient=True,
        )
        self._after = Progress(*columns(), console=err_console, disable=not enabled)
        # Only started displays are stopped: Rich's stop() prints a newline on a
        # console that is not a terminal even for a display never started.
        self._before_started = self._after_started = False
        self._tasks: dict[str, object] = {}
        self._finished: set[str] = set()
        self._started: float | None = None
        self._last_draw = 0.0

    def step(self, name: str, done: int, total: int | None) -> None:
        """``scan(step=...)``: a long step moved on."""
        import time

        before = name in ("walk", "compare")
        display = self._before if before else self._after
        if name in self._finished or not self._show_steps:
            return
        if name not in self._tasks:
            if before and not self._before_started:
                display.start()
                self._before_started = True
            if not before:
                self._start_after()
            self._tasks[name] = display.add_task(_STEP_LABELS.get(name, name), total=total, rate="")
        display.update(self._tasks[name], completed=done, total=total)
        if not before and total is not None and done >= total:
            display.remove_task(self._tasks[name])  # a finished step leaves no line behind
            self._finished.add(name)
        now = time.monotonic()
        if before and (now - self._last_draw > 0.1 or done == total):
            display.refresh()
            self._last_draw = now

    def analysis(self, done: int, total: int, record: object) -> None:
        """``scan(progress=...)``: a file was analysed (``record`` None: the analysis begins)."""
        import time

        if record is None:  # the workers are started: the display thread may run now
            self._stop_before()
            self._started = time.perf_counter()
            if total:
                self._start_after()
                self._tasks["scan"] = self._after.add_task("scanning", total=total, rate="")
            return
        elapsed = max(time.perf_counter() - (self._started or 0.0), 1e-9)
        self._after.update(
            self._tasks["scan"], completed=done, total=total, rate=f"{done / elapsed:.1f} img/s"
        )

    def _start_after(self) -> None:
        """Start the display of the analysis and later steps on its first line: a
        display started empty would leave a blank line behind."""
        if not self._after_started:
            self._stop_before()
            self._after.start()
            self._after_started = True

    def _stop_before(self) -> None:
        if self._before_started:
            self._before.stop()
            self._before_started = False

    def stop(self) -> None:
        self._stop_before()
        if self._after_started:
            self._after.stop()
            self._after_started = False


def _counted(records, catalog_path: Path, update):
    """``records`` as they are, calling ``update(done, total)`` every 5000."""
    from boda.catalog import Catalog

    with Catalog(catalog_path, readonly=True) as catalog:
        total = catalog.count_all()
    done = 0
    for done, record in enumerate(records, 1):
        yield record
        if done % 5000 == 0:
            update(done, total)
    update(done, total)


def _print_paths(
    catalog_path: Path, selection, directory: Path, end: bytes, keep_under=(), *,
    relative: bool = False, folders: dict | None = None,
) -> None:
    """Write the selected files' paths (DIR joined with each stored path, or the stored
    path alone when ``relative``) to stdout as raw bytes, each followed by ``end``.  With
    newlines as separators, a name holding a newline cannot be told apart: it is left
    out, said on stderr, and the exit status is 1.  A file that is gone since the scan is
    left out too, and counted on stderr (a list of files to act on must hold files)."""
    import sys

    from boda.cli import StdoutError
    from boda.cli._common import EXIT_FAILURE
    from boda.report import selected_paths

    if sys.stdout is None:
        raise StdoutError(OSError("standard output is closed"))
    sys.stdout.flush()  # text written before goes first
    out = sys.stdout.buffer
    left_out = []
    gone = _Gone(directory, catalog_path)
    base = os.fsencode(directory)
    try:
        for relpath in selected_paths(
            catalog_path, selection, keep_under=keep_under, **(folders or {})
        ):
            path = os.path.join(base, relpath)
            if not gone.exists(path):
                continue
            path = relpath if relative else path
            if end in path:
                left_out.append(path)
                continue
            out.write(path + end)
        out.flush()
    except OSError as exc:
        raise StdoutError(exc) from None
    gone.say(left_out=True)
    if left_out:
        err_console.print(
            f"[yellow]left out[/] {len(left_out)} path{'s' * (len(left_out) != 1)} holding a "
            f"newline (use --print0): {', '.join(shown(os.fsdecode(p)) for p in left_out[:5])}"
            + (" …" if len(left_out) > 5 else ""), highlight=False,
        )
        raise typer.Exit(EXIT_FAILURE)


def _print_csv(
    catalog_path: Path, selection, keep_under=(), *, folders: dict | None = None,
    gone: _Gone | None = None,
) -> None:
    """``--csv -``: the CSV table on stdout (written to a temporary file first, as
    :func:`boda.report.write_csv` writes files, then copied); ``gone`` counts the
    files it lists that are gone."""
    import shutil
    import tempfile

    from boda.cli._common import _stdout
    from boda.report import write_csv

    with tempfile.TemporaryDirectory(prefix="boda-csv-") as folder, _folder_notes():
        table = write_csv(
            catalog_path, Path(folder) / "table.csv", only=selection, keep_under=keep_under,
            **(folders or {}),
        )
        if gone:
            gone.check_csv(table)
        out = _stdout()
        with open(table, encoding="utf-8", newline="") as fh:
            shutil.copyfileobj(fh, out)
        out.flush()


def _warn_if_flags_stale(catalog_path: Path) -> None:
    """Say on stderr when the catalog's flags predate its records (a stopped scan), or
    its scores an older boda's analysis."""
    from boda.catalog import Catalog, scan_running
    from boda.scan import ANALYSIS_VERSION

    if scan_running(catalog_path):
        err_console.print(
            "[yellow]note[/]: a scan of this folder is running: these are the results saved "
            "so far, with the flags of the scan before it; report again when it ends",
            highlight=False,
        )
        return
    with Catalog(catalog_path, readonly=True) as catalog:
        stale = catalog.flags_stale()
        analysis = catalog.get_setting("analysis")
        last_scan = catalog.get_setting("last_scan")
        stopped = isinstance(last_scan, dict) and last_scan.get("complete") is False
        earlier = catalog.count_from_earlier_analysis() if stopped else 0
    version = analysis.get("version") if isinstance(analysis, dict) else None
    if earlier:
        # A re-analysis (another --max-side, a newer boda) stopped midway: two kinds
        # of scores side by side until the next scan finishes it.
        err_console.print(
            f"[yellow]note[/]: {earlier} file{'s' * (earlier != 1)} still carry the scores of "
            "the earlier analysis (another --max-side or --describe, an older boda, or "
            "--reanalyze): the last scan stopped before it analysed them again, and their "
            "scores and flags may "
            "not compare with the others'; run 'boda scan' on the folder to finish",
            highlight=False,
        )
    if isinstance(version, int) and version < ANALYSIS_VERSION:
        # An older boda's scores and flags: new flags (odd_size...) are missing, not zero.
        err_console.print(
            f"[yellow]note[/]: the catalog was analysed by an older boda (analysis version "
            f"{version}; this one has {ANALYSIS_VERSION}): its scores and flags lack this "
            "version's changes; run 'boda scan' on the folder to analyse it afresh",
            highlight=False,
        )
    elif stale:
        err_console.print(
            "[yellow]note[/]: the flags are out of date (the last scan was stopped before "
            "it derived them); run 'boda scan' on the folder to update them", highlight=False,
        )


def _print_summary(summary, report_path: Path | None, *, defaults_given: bool = False) -> None:
    from rich.table import Table

    from boda.scan import default_thresholds, flag_descriptions

    links = f"{summary.links} link{'s' * (summary.links != 1)} · " if summary.links else ""
    moved = f"{summary.moved} moved · " if summary.moved else ""
    if summary.marks_followed:  # renamed and edited (matched by pixels), or moved meanwhile
        moved += (f"{summary.marks_followed} mark{'s' * (summary.marks_followed != 1)} "
                  "followed their photos · ")
    excluded = f"{summary.excluded} excluded · " if summary.excluded else ""
    console.print(
        f"[bold]{summary.total}[/] file{'s' * (summary.total != 1)} · "
        f"{summary.analysed} analysed in this run · "
        f"{summary.unchanged} unchanged · {moved}{links}{summary.removed} removed · {excluded}"
        f"{len(summary.failed)} unreadable · {summary.seconds:.1f} s"
        + (
            f" (analysis {summary.analysis_seconds:.1f} s, "
            f"{summary.analysed / summary.analysis_seconds:.1f} img/s)"
            if summary.analysed and summary.analysis_seconds > 0 else ""
        )
    )
    _print_skipped(summary, defaults_given)
    if summary.remembered_thresholds:
        defaults = default_thresholds()
        values = ", ".join(
            f"{name}={value:g} (default {defaults[name]:g})"
            for name, value in summary.remembered_thresholds.items()
        )
        console.print(
            f"thresholds remembered from an earlier scan: {values}; "
            "--reset-thresholds goes back to the defaults", highlight=False,
        )
    if summary.remembered_describe:
        console.print(
            "colour swatches, colourfulness and edge density measured (--describe, "
            "remembered from an earlier scan; --no-describe turns it off)", highlight=False,
        )
    if summary.mirrored:
        said = (
            "near duplicates include left-right mirror images"
            + (" (--mirrored, remembered from an earlier scan; --no-mirrored turns it off)"
               if summary.remembered_mirrored else "")
        )
        if summary.without_mirrored_hash:
            n = summary.without_mirrored_hash
            one = n == 1
            said += (
                f"; {n} file{'' if one else 's'} analysed by an older boda "
                f"{'has' if one else 'have'} no mirrored hash and {'takes' if one else 'take'} "
                "no part (see docs/duplicates.md; --reanalyze gives it to them)"
            )
        console.print(said, highlight=False)
    table = Table(title="flags", show_edge=False)
    table.add_column("flag")
    table.add_column("images", justify="right")
    table.add_column("meaning")
    for name, text in flag_descriptions().items():
        table.add_row(name, str(summary.flag_counts.get(name, 0)), text)
    console.print(table)
    _print_unreadable(summary.failed, summary.root)
    if summary.raw_files:
        from boda.scan._walk import describe_raw_files

        console.print(f"[yellow]not scanned[/]: {shown(describe_raw_files(summary.raw_files))}")
    if summary.folder_links:
        n, first = len(summary.folder_links), summary.folder_links[:3]
        named = ", ".join(f"{path} -> {target}" for path, target in first)
        console.print(
            f"[yellow]folder links not followed[/]: {n} ({shown(named)}"
            f"{' …' if n > len(first) else ''}): their files are not scanned through the "
            "link; scan the target folder, or one that holds it", highlight=False,
        )
    if summary.interrupted:
        console.print(
            "[yellow]interrupted[/]: committed results are kept; run again to finish "
            f"({summary.pending} file{'s' * (summary.pending != 1)} still to analyse)"
        )
    if summary.flags_stale:
        console.print(
            "[yellow]flags not derived again[/] (to stop at once): the counts above are "
            "those stored before; the next scan derives them"
        )
    if report_path:
        console.print(f"report: [bold]{shown(report_path)}[/]")


def _print_skipped(summary, defaults_given: bool) -> None:
    """The lines of what the excludes skipped, remembered excludes and iCloud placeholders."""
    from boda.scan._walk import describe_icloud_placeholders
    from boda.scan._walk import describe_skipped as counts

    if summary.default_skipped:
        console.print(
            f"skipped by default: {shown(counts(summary.default_skipped))} (files and folders "
            "that are not your photos: docs/scan.md; --no-default-excludes scans them)",
            highlight=False,
        )
    if summary.skipped:
        console.print(f"skipped by your excludes: {shown(counts(summary.skipped))}",
                      highlight=False)
    defaults_remembered = not (summary.default_excludes or defaults_given)
    if summary.remembered_excludes or defaults_remembered:
        what = [f"--exclude {p}" for p in summary.remembered_excludes]
        what += ["--no-default-excludes"] if defaults_remembered else []
        console.print(
            f"excludes remembered from an earlier scan: {shown('; '.join(what))}; "
            "--reset-excludes forgets them", highlight=False,
        )
    if summary.icloud_placeholders:
        placeholders = summary.icloud_placeholders
        sentence = describe_icloud_placeholders(len(placeholders), placeholders)
        console.print(f"[yellow]not scanned[/]: {shown(sentence)}", highlight=False)


class _Gone:
    """Counts the selected files that are no longer on disk (deleted since the last scan),
    and says so on stderr.  Only the files of a selection are looked at (an unfiltered
    export of a large catalog stats nothing)."""

    def __init__(self, directory: Path, catalog_path: Path):
        self.directory, self.catalog_path = directory, catalog_path
        self.base = os.fsencode(directory)
        self.count = 0

    def exists(self, path: bytes) -> bool:
        """Whether ``path`` (DIR joined with a stored path) is there; counted when not."""
        found = os.path.lexists(path)  # a broken link is there (and listed as unreadable)
        self.count += not found
        return found

    def watch(self, records):
        """``records`` as they are, counting those whose file is gone."""
        from boda.report import record_relpath

        for record in records:
            self.exists(os.path.join(self.base, record_relpath(record)))
            yield record

    def check_csv(self, table: Path) -> None:
        """Count the gone files among the rows of a CSV table boda wrote."""
        import csv

        from boda.report import record_relpath

        with open(table, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                self.exists(os.path.join(self.base, record_relpath(row)))

    def check_parquet(self, table: Path) -> None:
        """Count the gone files among the rows of a Parquet table boda wrote."""
        from boda.report._parquet import _pyarrow

        _, pq = _pyarrow()
        for name in pq.read_table(table, columns=["path_bytes"]).column(0).to_pylist():
            self.exists(os.path.join(self.base, name))

    def say(self, *, left_out: bool) -> None:
        if not self.count:
            return
        n = self.count
        what = "left out" if left_out else "still in the export: it holds the catalog"
        from boda.catalog import default_catalog_path

        command = f"boda scan {self.directory}"
        if Path(self.catalog_path).resolve() != default_catalog_path(self.directory).resolve():
            # the scan must update this catalog, not make DIR/.boda (a class folder to
            # torchvision's ImageFolder, and this catalog left stale)
            command += f" --catalog {self.catalog_path}"
        err_console.print(
            f"[yellow]note[/]: {n} file{'s' * (n != 1)} in the catalog "
            f"{'are' if n != 1 else 'is'} gone since the last scan ({what}); run "
            f"'{shown(command)}' to update it", highlight=False,
        )


@contextlib.contextmanager
def _folder_notes():
    """Say on stderr, as notes, that a folder of --under or --copy-under holds no file
    of the catalog (the library warns, and goes on: nothing is selected through it),
    and that the CSV holds cells a spreadsheet would take for formulas."""
    from boda.report._export import FormulaCellsWarning
    from boda.report._keep import _NoFileUnder

    def reword(message: Warning) -> str:  # the library's parameters as the options
        text = str(message)
        if isinstance(message, _NoFileUnder):
            text = text.replace("copy_under ", "--copy-under ", 1)
            text = text.replace("keep_under ", "--keep-under ", 1)
            text = "--" + text if text.startswith("under ") else text
        return text

    with warnings_as_notes(FormulaCellsWarning, _NoFileUnder, reword=reword):
        yield


def _print_by_folder(catalog_path: Path, depth: int, selection, picks: dict, as_json: bool):
    """``--by-folder DEPTH``: files and flag counts per folder, as a table or JSON."""
    from rich.table import Table

    from boda.catalog import Catalog
    from boda.report import folder_counts

    with Catalog(catalog_path, readonly=True) as opened:  # no catalog: fail at once
        catalog_path = opened.path
    _warn_if_flags_stale(catalog_path)
    with _folder_notes():
        rows = folder_counts(catalog_path, depth, only=selection, **picks)
    if as_json:
        print_json(rows)
        return
    flags = [name for name in (rows[0]["flags"] if rows else {})
             if any(row["flags"][name] for row in rows)]
    table = Table(show_edge=False)
    for name, justify in [("folder", "left"), ("files", "right"), ("unreadable", "right"),
                          *((flag, "right") for flag in flags)]:
        table.add_column(name, justify=justify)
    for row in rows:
        cells = [_count_and_share(row["flags"][flag], row["files"]) for flag in flags]
        table.add_row(shown(row["folder"]), str(row["files"]), str(row["unreadable"]), *cells)
    console.print(table)
    if not rows:
        err_console.print("[yellow]note[/]: no file selected", highlight=False)


def _count_and_share(n: int, files: int) -> str:
    """A table cell: ``12 (7%)``, ``1 (<1%)``, ``0``."""
    if not n:
        return "0"
    share = 100 * n / files
    return f"{n} ({'<1' if share < 1 else f'{share:.0f}'}%)"


def _print_unreadable(failed: list[tuple[str, str]], root: Path) -> None:
    """The files of this scan that could not be read: one line each for up to 20;
    more, when reasons repeat (500 zero-byte files), one line per reason with its count
    and an example, most frequent first."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in failed:
        by_reason.setdefault(reason, []).append(path)
    if len(failed) <= 20 or len(by_reason) == len(failed):
        for path, reason in failed[:20]:
            console.print(f"[red]unreadable[/] {shown(path)}: {shown(reason)}", highlight=False)
        if len(failed) > 20:
            console.print(f"… and {len(failed) - 20} more unreadable files (see the report)")
        return
    ranked = sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    for reason, paths in ranked[:10]:
        files = f"{len(paths)} file{'s' * (len(paths) != 1)}"
        console.print(f"[red]unreadable[/] {files}: {shown(reason)} (e.g. {shown(paths[0])})",
                      highlight=False)
    if len(ranked) > 10:
        rest = sum(len(p) for _, p in ranked[10:])
        console.print(f"… and {rest} more unreadable files for {len(ranked) - 10} other reasons")
    console.print(f"every one: boda report {shown(str(root))} --only failed --paths",
                  highlight=False)
