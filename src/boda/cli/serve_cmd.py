"""``boda serve``: browse the catalog of a scanned folder in a local web app."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer

from boda.cli._common import (
    catalog_option,
    console,
    err_console,
    examples,
    handle_errors,
    max_pixels_limit,
    max_pixels_option,
    shown,
)

#: Host names that only this machine can reach.
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``port`` 0: a free one), or a usage error
    that names the port."""
    from boda.errors import InvalidParameterError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as exc:
        raise InvalidParameterError(
            f"--host {host!r} is not an address of this machine ({exc.strerror}); "
            "use 127.0.0.1 (the default)"
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart right after
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InvalidParameterError(
                f"port {port} on {host} is in use (another 'boda serve'?); choose another "
                "with --port, or --port 0 for any free one"
            ) from None
        raise InvalidParameterError(
            f"cannot listen on {host} port {port} ({exc.strerror or exc}); use another "
            "--host or --port (--port 0: any free one)"
        ) from None
    sock.setblocking(False)
    return sock


_WILDCARDS = ("0.0.0.0", "::", "[::]", "")


def _own_addresses(ipv6: bool) -> list[str]:
    """The addresses of this machine other machines reach it by, found portably: those
    its host name resolves to, and the one the default route leaves from (a UDP
    ``connect`` picks it and sends nothing).  Loopback and link-local ones left out."""
    found: list[str] = []
    families = (socket.AF_INET, socket.AF_INET6) if ipv6 else (socket.AF_INET,)
    for name in dict.fromkeys((socket.gethostname(), socket.getfqdn())):
        try:
            found += [a[4][0] for a in socket.getaddrinfo(name, None) if a[0] in families]
        except OSError:
            pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        if family not in families:
            continue
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                found.append(udp.getsockname()[0])
        except OSError:  # no route of that family
            pass
    out = []
    for address in dict.fromkeys(a.split("%")[0] for a in found):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
            out.append(address)
    return out


def _names_of(host: str) -> list[str]:
    """The Host headers that reach this app on ``host``: the address itself and, for a
    wildcard (``0.0.0.0``, ``::``), the machine's own addresses and names (a phone on
    the network sends the address it typed).  Any other name stays refused: the
    DNS-rebinding guard."""
    if host not in _WILDCARDS:
        return [host.strip("[]")]
    # not the wildcard itself: a browser sends `Host: 0.0.0.0` only for a page that
    # asked for http://0.0.0.0/, which no one types to reach another machine
    names = [socket.gethostname(), socket.getfqdn(), *_own_addresses(ipv6=":" in host)]
    return [n for n in names if n]


def _urls(host: str, port: int) -> list[str]:
    """The addresses to open the page at: ``host`` itself, or for a wildcard bind the
    loopback one (this machine) and then those of the machine's addresses and name."""
    if host not in _WILDCARDS:
        shown_host = f"[{host.strip('[]')}]" if ":" in host else host
        return [f"http://{shown_host}:{port}/"]
    loopback = "[::1]" if ":" in host and not _dual_stack() else "127.0.0.1"
    others = [f"[{a}]" if ":" in a else a for a in _own_addresses(ipv6=":" in host)]
    return [f"http://{h}:{port}/" for h in dict.fromkeys([loopback, *others,
                                                         socket.gethostname()])]


def _dual_stack() -> bool:
    """Whether a socket bound to ``::`` takes IPv4 too (Linux, macOS by default)."""
    return socket.has_dualstack_ipv6()


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""

    @app.command(
        "serve",
        epilog=examples(
            "# http://127.0.0.1:8765/ until Ctrl-C",
            "boda serve ~/Pictures/trip",
            "# any free port; open it in the browser",
            "boda serve data/ --port 0 --open",
            "# look only: no pick, reject or stars",
            "boda serve ~/Pictures/trip --read-only",
            notes="The page pages through every file of the catalog, filters by flag or "
            "selection (as --only of 'boda report'), sorts, searches names, shows a file "
            "closer (arrows, j/k, Esc) and copies the paths of a selection (as 'boda report "
            "DIR --only NAME --paths'). Cull with the keys P (pick), X (reject), U "
            "(undecided) and 0-5 (stars): the marks go to DIR/.boda/catalog.marks.db "
            "(as 'boda mark'; 'boda report DIR --only picked --paths' lists them), never "
            "to your files or the catalog, which are only read. It keeps showing the "
            "latest results while 'boda scan' runs on the folder. "
            "Needs the web extra: pip install 'boda[web]'.",
        ),
    )
    @handle_errors
    def serve(
        directory: Path = typer.Argument(..., metavar="DIR", help="A scanned folder."),
        catalog: Annotated[Path | None, catalog_option()] = None,
        host: str = typer.Option(
            "127.0.0.1", "--host", metavar="ADDRESS",
            help="Address to listen on. Any but 127.0.0.1 or localhost lets other machines "
            "see the images; 0.0.0.0 (or ::) listens on every address of this machine "
            "and prints the addresses to open from the others.",
        ),
        port: int = typer.Option(
            8765, "--port", min=0, max=65535, metavar="PORT",
            help="Port to listen on; 0: any free port.",
        ),
        open_browser: bool = typer.Option(
            False, "--open/--no-open", help="Open the page in the web browser."
        ),
        max_pixels: str | None = max_pixels_option(annotated=False),
        read_only: bool = typer.Option(
            False, "--read-only",
            help="Show the marks but refuse to change them (nothing at all is written).",
        ),
    ) -> None:
        """Browse the catalog of a scanned folder in a local web app (until Ctrl-C)."""
        import threading

        from boda.catalog import default_catalog_path
        from boda.errors import BodaError, InvalidParameterError

        try:
            import uvicorn

            from boda.web import create_app
        except ImportError as exc:
            raise BodaError(
                f"boda serve needs the web extra ({exc.name or exc} is not installed): "
                "pip install 'boda[web]'"
            ) from None
        if not directory.exists():
            raise InvalidParameterError(f"{str(directory)!r}: no such folder")
        if not directory.is_dir():
            raise InvalidParameterError(
                f"{str(directory)!r} is not a folder; give the folder that was scanned"
            )
        if catalog is not None and not catalog.exists():
            raise InvalidParameterError(
                f"--catalog {str(catalog)!r}: no such file; give the catalog of a scanned folder"
            )
        if catalog is None:
            from boda.cli._common import refuse_sub_folder

            refuse_sub_folder(directory, "serve")
        if catalog is None and not default_catalog_path(directory).is_file():
            raise InvalidParameterError(
                f"no catalog in {str(directory)}: run `boda scan {str(directory)}` first"
            )
        limit = max_pixels_limit(max_pixels)  # checked before the port is taken
        view_app = create_app(
            catalog or directory, root=directory, hosts=_names_of(host), max_pixels=limit,
            read_only=read_only,
        )
        sock = _bind(host, port)
        bound = sock.getsockname()[1]
        urls = _urls(host, bound)
        url = urls[0]
        if not _is_loopback(host):
            err_console.print(
                f"[yellow]warning:[/] listening on {shown(host)}: anyone who can reach this "
                "machine on that address sees the images of the folder and their names",
                highlight=False,
            )
        where = f"[bold]{url}[/]" + (
            f" (this machine), {', '.join(urls[1:])} (other machines)" if urls[1:] else ""
        )
        console.print(f"serving {shown(directory)} at {where} (Ctrl-C to stop)", highlight=False)
        unwritable = view_app.state.view.marks_writable()
        if not read_only and unwritable is not None:
            err_console.print(f"[yellow]note:[/] {unwritable}; the page is read-only",
                              highlight=False)
        # The duplicate sets and score names take a pass over every record: read them
        # now, while the browser opens, not at the first request.
        threading.Thread(target=view_app.state.view.warm, daemon=True).start()
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        config = uvicorn.Config(view_app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            import boda.cli

            console.print("stopped", highlight=False)
            boda.cli.interruption_reported = True
            raise typer.Exit(boda.cli.interrupted_status()) from None
        finally:
            sock.close()
        console.print("stopped", highlight=False)
