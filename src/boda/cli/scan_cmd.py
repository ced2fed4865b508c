"""``boda scan`` and ``boda report``."""

from __future__ import annotations

from pathlib import Path

import typer

from boda.cli import interrupted_status
from boda.cli._common import (
    check_output,
    console,
    err_console,
    handle_errors,
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
        epilog=(
            "Examples:\n\n"
            "  boda scan ~/Pictures/trip\n\n"
            "  boda scan data/ -w 4 --threshold blurry=0.25 --threshold odd_aspect_ratio=3\n\n"
            "  boda scan data/ --json --no-report > summary.json\n\n"
            "  boda scan data/ --reset-thresholds           # back to the default thresholds\n\n"
            "Thresholds given with -t are remembered in the catalog: a later scan (and "
            "'boda report') of the folder uses them until --reset-thresholds, and says so. "
            "A file symlink to another file of the folder is recorded as a link, not "
            "analysed twice. A scan exits 3 when some files could not be read (they are "
            "listed in the report), 130 when interrupted by Ctrl-C, 143 or 129 when stopped "
            "by SIGTERM or SIGHUP (committed results are kept: rerun to finish)."
        ),
    )
    @handle_errors
    def scan_command(
        directory: Path = typer.Argument(..., help="Folder to scan (recursively)."),
        workers: int = typer.Option(
            None, "--workers", "-w", help="Processes (default: all cores)."
        ),
        catalog: Path = typer.Option(
            None, "--catalog", help="Catalog file (default: DIR/.boda/catalog.db)."
        ),
        report: Path = typer.Option(
            None, "--report",
            help="HTML report: a .html file, or a folder to hold index.html "
            "(default: DIR/.boda/report.html).",
        ),
        no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report."),
        threshold: list[str] = typer.Option(
            [], "--threshold", "-t",
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
            help="Analysis resolution: longer side in pixels (default 640; a catalog made "
            "with another value is analysed afresh).",
        ),
        include_hidden: bool = typer.Option(
            False, "--include-hidden", help="Also enter folders whose names start with '.'."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Rate every image in DIR: blur, exposure, information, aspect ratio, duplicates.

        Results go to a SQLite catalog (re-scans only analyse new or changed files) and a
        self-contained HTML report. Image files are only ever read.
        """
        from boda.catalog import default_catalog_path
        from boda.report import report_file, report_title, write_html_report
        from boda.scan import scan

        overrides = _parse_thresholds(threshold)
        report_path = None
        if not no_report:
            report_path = report_file(report or _default_report(directory, catalog))
            if report is not None:  # a bad --report fails now, not after the scan
                catalog_path = catalog or default_catalog_path(directory)
                _refuse_overwriting_catalog([report_path], directory, catalog_path)
                check_output(report_path)
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
        if summary.interrupted:
            raise typer.Exit(interrupted_status())
        if summary.failed:
            raise typer.Exit(EXIT_FILES_FAILED)

    @app.command(
        "report",
        epilog=(
            "Examples:\n\n"
            "  boda report ~/Pictures/trip                 # rewrite DIR/.boda/report.html\n\n"
            "  boda report data/ --json > records.json     # every record, failures included\n\n"
            "  boda report data/ --csv scores.csv\n\n"
            "  boda report data/ -o /tmp/report.html"
        ),
    )
    @handle_errors
    def report_command(
        directory: Path = typer.Argument(..., help="A scanned folder."),
        catalog: Path = typer.Option(None, "--catalog", help="Catalog file if not DIR/.boda."),
        out: Path = typer.Option(
            None, "--out", "-o", help="HTML report: a .html file, or a folder to hold index.html."
        ),
        as_json: bool = typer.Option(
            False, "--json", help="Print every catalog record as JSON to stdout."
        ),
        csv_path: Path = typer.Option(None, "--csv", help="Write a CSV table to this file."),
    ) -> None:
        """Write the HTML report of a scanned folder, or export its catalog as JSON / CSV."""
        from boda.catalog import Catalog, default_catalog_path
        from boda.report import (
            iter_catalog_records,
            report_file,
            report_title,
            write_csv,
            write_html_report,
        )

        # No catalog: fail before writing anything.  A folder given as --catalog
        # stands for the catalog in it.
        with Catalog(catalog or default_catalog_path(directory), readonly=True) as opened:
            catalog_path = opened.path
        html = None
        if not as_json and csv_path is None or out is not None:
            html = report_file(out or _default_report(directory, catalog))
        refuse_same_outputs(**{"--csv": csv_path, "--out": html})
        outputs = [path for path in (csv_path, html) if path is not None]
        _refuse_overwriting_catalog(outputs, directory, catalog_path)
        for path in outputs:  # every output is checked before anything is written
            check_output(path)
        _warn_if_flags_stale(catalog_path)
        if as_json:
            with progress_bar("exporting JSON") as update:
                print_json_array(_counted(iter_catalog_records(catalog_path), catalog_path, update))
        if csv_path is not None:
            with progress_bar("writing the CSV") as update:
                written = write_csv(catalog_path, csv_path, progress=update)
            err_console.print(f"CSV written to [bold]{shown(written)}[/]")
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
