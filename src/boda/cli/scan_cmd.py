"""``boda scan`` and ``boda report``."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from boda.cli import interrupted_status
from boda.cli._common import (
    check_output,
    console,
    err_console,
    examples,
    handle_errors,
    overwrite_option,
    print_json,
    print_json_array,
    progress_bar,
    refuse_overwriting_inputs,
    refuse_same_outputs,
    shown,
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
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidParameterError(
                f"--threshold expects NAME=VALUE (e.g. blurry=0.3), got {item!r}"
            ) from None
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
    """Raise if one of ``outputs`` is the catalog (or its WAL files) or a file it
    lists: a report or export must not replace what it reports on.  The catalog
    is opened once, and only for outputs inside the scanned folder."""
    from boda.catalog import Catalog
    from boda.catalog._catalog import relpath_bytes
    from boda.errors import InvalidParameterError

    wal, shm = (catalog_path.with_name(catalog_path.name + end) for end in ("-wal", "-shm"))
    inside: list[tuple[Path, bytes]] = []
    for output in outputs:
        refuse_overwriting_inputs(output, catalog_path, wal, shm)
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
            notes="Thresholds given with -t are remembered in the catalog: a later scan (and "
            "'boda report') of the folder uses them until --reset-thresholds, and says so. "
            "A file symlink to another file of the folder is recorded as a link, not "
            "analysed twice. A scan exits 3 when some files could not be read (they are "
            "listed in the report), 130 when interrupted by Ctrl-C, 143 or 129 when stopped "
            "by SIGTERM or SIGHUP (committed results are kept: rerun to finish).",
        ),
    )
    @handle_errors
    def scan_command(
        directory: Path = typer.Argument(..., metavar="DIR", help="Folder to scan (recursively)."),
        workers: int = typer.Option(
            None, "--workers", "-w", min=1, metavar="N", help="Processes (default: all cores)."
        ),
        catalog: Path = typer.Option(
            None, "--catalog", metavar="FILE", help="Catalog file (default: DIR/.boda/catalog.db)."
        ),
        report: Path = typer.Option(
            None, "--report", metavar="FILE|DIR",
            help="HTML report: a .html file, or a folder to hold index.html "
            "(default: DIR/.boda/report.html).",
        ),
        no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report."),
        threshold: list[str] = typer.Option(
            [], "--threshold", "-t", metavar="NAME=VALUE",
            help="Set a flag threshold, NAME=VALUE (repeatable; remembered for later "
            "scans of the folder). Names and defaults: "
            "blurry=0.44 (flag below), dark=0.8, light=0.85 (above), low_information=2 "
            "(below, bits), grayscale=3 (below, chroma), odd_aspect_ratio=2.5 (above), "
            "near_duplicate=10 (pHash bits, 0-64).",
        ),
        reset_thresholds: bool = typer.Option(
            False, "--reset-thresholds",
            help="Forget the thresholds remembered from earlier scans: back to the defaults "
            "(and any -t given now).",
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
            False, "--include-hidden", help="Also enter folders whose names start with '.'."
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
                reset_thresholds=reset_thresholds, step=display.step,
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
            _print_summary(summary, report_path)
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
            "boda report data/ --only redundant --print0"
            " | xargs -0 mv --backup=numbered -t rejects/",
            "boda report data/ --only failed --json > unreadable.json",
            "boda report data/ --only exact_duplicate,near_duplicate --csv dups.csv",
            notes="--only takes flag names (blurry, dark, light, low_information, grayscale, "
            "odd_aspect_ratio, exact_duplicate, near_duplicate), failed (unreadable files), "
            "unflagged (readable, no flag) and redundant (duplicate copies other than the one "
            "kept: fewest other flags, then most pixels, then sharpest, then first path; a "
            "file a link points to is never listed); several names select their union. It "
            "filters --json, --csv, --parquet and --paths; alone it prints the paths. The HTML "
            "report always shows the whole folder.  --csv - writes the table to stdout.",
        ),
    )
    @handle_errors
    def report_command(
        directory: Path = typer.Argument(..., metavar="DIR", help="A scanned folder."),
        catalog: Path = typer.Option(
            None, "--catalog", metavar="FILE", help="Catalog file if not DIR/.boda."
        ),
        out: Path = typer.Option(
            None, "--output", "-o", metavar="FILE|DIR",
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
            "union): a flag name, failed, unflagged or redundant (see below).",
        ),
        paths: bool = typer.Option(
            False, "--paths",
            help="Print the path of each selected file (DIR joined with its path in DIR), "
            "one a line, for xargs -d '\\n'. Names holding a newline need --print0.",
        ),
        print0: bool = typer.Option(
            False, "--print0", help="As --paths, separated by NUL bytes (for xargs -0)."
        ),
        overwrite: bool = overwrite_option(annotated=False),
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
        from boda.report._export import _selection_names
        from boda.report._parquet import _pyarrow

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
        if catalog is not None and not catalog.exists():
            raise InvalidParameterError(
                f"--catalog {str(catalog)!r}: no such file; give the catalog of a scanned folder"
            )
        selection = _selection_names(only) if only else None  # a bad name: exit 2 at once
        paths = paths or print0
        tables = csv_path is not None or parquet_path is not None
        if paths and (as_json or tables or out is not None):
            raise InvalidParameterError(
                "--paths and --print0 print file paths to stdout and cannot be combined with "
                "--json, --csv, --parquet or -o; run 'boda report' once for each"
            )
        if selection is not None and out is not None:
            raise InvalidParameterError(
                "--only filters --json, --csv, --parquet and --paths; the HTML report (-o) "
                "always shows the whole folder"
            )
        if parquet_path is not None:
            if str(parquet_path) == "-":
                raise InvalidParameterError(
                    "--parquet writes a file (Parquet is not streamed to stdout); give a file name"
                )
            _pyarrow()  # not installed: say so before anything is written
        # --only alone lists the selected paths (it never writes an unfiltered report).
        paths = paths or (selection is not None and not as_json and not tables)
        # No catalog: fail before writing anything.  A folder given as --catalog
        # stands for the catalog in it.
        with Catalog(catalog or default_catalog_path(directory), readonly=True) as opened:
            catalog_path = opened.path
        if paths:
            _warn_if_flags_stale(catalog_path)
            _print_paths(catalog_path, selection, directory, b"\0" if print0 else b"\n")
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
        if as_json:
            records = (
                iter_catalog_records(catalog_path) if selection is None
                else select_records(catalog_path, selection)
            )
            with progress_bar("exporting JSON") as update:
                print_json_array(_counted(records, catalog_path, update))
        if to_stdout:
            _print_csv(catalog_path, selection)
        elif csv_path is not None:
            with progress_bar("writing the CSV") as update:
                written = write_csv(catalog_path, csv_path, progress=update, only=selection)
            err_console.print(f"CSV written to [bold]{shown(written)}[/]")
        if parquet_path is not None:
            with progress_bar("writing the Parquet table") as update:
                written = write_parquet(
                    catalog_path, parquet_path, progress=update, only=selection
                )
            err_console.print(f"Parquet table written to [bold]{shown(written)}[/]")
        if html is not None:
            with progress_bar("writing the report") as update:
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


def _print_paths(catalog_path: Path, selection, directory: Path, end: bytes) -> None:
    """Write the selected files' paths (DIR joined with each stored path) to stdout as
    raw bytes, each followed by ``end``.  With newlines as separators, a name holding a
    newline cannot be told apart: it is left out, said on stderr, and the exit status is 1."""
    import sys

    from boda.cli import StdoutError
    from boda.cli._common import EXIT_FAILURE
    from boda.report import selected_paths

    if sys.stdout is None:
        raise StdoutError(OSError("standard output is closed"))
    sys.stdout.flush()  # text written before goes first
    out = sys.stdout.buffer
    left_out = []
    try:
        for path in selected_paths(catalog_path, selection, root=directory):
            if end in path:
                left_out.append(path)
                continue
            out.write(path + end)
        out.flush()
    except OSError as exc:
        raise StdoutError(exc) from None
    if left_out:
        err_console.print(
            f"[yellow]left out[/] {len(left_out)} path{'s' * (len(left_out) != 1)} holding a "
            f"newline (use --print0): {', '.join(shown(os.fsdecode(p)) for p in left_out[:5])}"
            + (" …" if len(left_out) > 5 else ""), highlight=False,
        )
        raise typer.Exit(EXIT_FAILURE)


def _print_csv(catalog_path: Path, selection) -> None:
    """``--csv -``: the CSV table on stdout (written to a temporary file first, as
    :func:`boda.report.write_csv` writes files, then copied)."""
    import shutil
    import tempfile

    from boda.cli._common import _stdout
    from boda.report import write_csv

    with tempfile.TemporaryDirectory(prefix="boda-csv-") as folder:
        table = write_csv(catalog_path, Path(folder) / "table.csv", only=selection)
        out = _stdout()
        with open(table, encoding="utf-8", newline="") as fh:
            shutil.copyfileobj(fh, out)
        out.flush()


def _warn_if_flags_stale(catalog_path: Path) -> None:
    """Say on stderr when the catalog's flags predate its records (a stopped scan)."""
    from boda.catalog import Catalog

    with Catalog(catalog_path, readonly=True) as catalog:
        stale = catalog.flags_stale()
    if stale:
        err_console.print(
            "[yellow]note[/]: the flags are out of date (the last scan was stopped before "
            "it derived them); run 'boda scan' on the folder to update them", highlight=False,
        )


def _print_summary(summary, report_path: Path | None) -> None:
    from rich.table import Table

    from boda.scan import default_thresholds, flag_descriptions

    links = f"{summary.links} link{'s' * (summary.links != 1)} · " if summary.links else ""
    console.print(
        f"[bold]{summary.total}[/] files · {summary.analysed} analysed in this run · "
        f"{summary.unchanged} unchanged · {links}{summary.removed} removed · "
        f"{len(summary.failed)} unreadable · {summary.seconds:.1f} s"
        + (
            f" (analysis {summary.analysis_seconds:.1f} s, "
            f"{summary.analysed / summary.analysis_seconds:.1f} img/s)"
            if summary.analysed and summary.analysis_seconds > 0 else ""
        )
    )
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
    table = Table(title="flags", show_edge=False)
    table.add_column("flag")
    table.add_column("images", justify="right")
    table.add_column("meaning")
    for name, text in flag_descriptions().items():
        table.add_row(name, str(summary.flag_counts.get(name, 0)), text)
    console.print(table)
    for path, reason in summary.failed[:20]:
        console.print(f"[red]unreadable[/] {shown(path)}: {shown(reason)}", highlight=False)
    if len(summary.failed) > 20:
        console.print(f"… and {len(summary.failed) - 20} more unreadable files (see the report)")
    if summary.raw_files:
        from boda.scan._walk import describe_raw_files

        console.print(f"[yellow]not scanned[/]: {shown(describe_raw_files(summary.raw_files))}")
    if summary.interrupted:
        console.print(
            "[yellow]interrupted[/]: committed results are kept; run again to finish "
            f"({summary.pending} files still to analyse)"
        )
    if summary.flags_stale:
        console.print(
            "[yellow]flags not derived again[/] (to stop at once): the counts above are "
            "those stored before; the next scan derives them"
        )
    if report_path:
        console.print(f"report: [bold]{shown(report_path)}[/]")
