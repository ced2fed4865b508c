"""``boda serve``: browse the catalog of a scanned folder in a local web app."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path

import typer

from boda.cli._common import console, err_console, examples, handle_errors, shown

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


def _names_of(host: str) -> list[str]:
    """The Host headers that reach this app on ``host`` (all addresses: the machine's
    names and addresses, which the DNS-rebinding guard must let through)."""
    names = [host.strip("[]")]
    if host in ("0.0.0.0", "::", "[::]"):
        name = socket.gethostname()
        names += [name, socket.getfqdn()]
        try:
            names += socket.gethostbyname_ex(name)[2]
        except OSError:
            pass
    return names


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""

    @app.command(
        "serve",
        epilog=examples(
            "# http://127.0.0.1:8765/ until Ctrl-C",
            "boda serve ~/Pictures/trip",
            "# any free port; open it in the browser",
            "boda serve data/ --port 0 --open",
            notes="The page pages through every file of the catalog, filters by flag or "
            "selection (as --only of 'boda report'), sorts, searches names, shows a file "
            "closer (arrows, j/k, Esc) and copies the paths of a selection (as 'boda report "
            "DIR --only NAME --paths'). It reads the catalog and the files only, never writes; "
            "it keeps showing the latest results while 'boda scan' runs on the folder. "
            "Needs the web extra: pip install 'boda[web]'.",
        ),
    )
    @handle_errors
    def serve(
        directory: Path = typer.Argument(..., metavar="DIR", help="A scanned folder."),
        catalog: Path = typer.Option(
            None, "--catalog", metavar="FILE", help="Catalog file if not DIR/.boda."
        ),
        host: str = typer.Option(
            "127.0.0.1", "--host", metavar="ADDRESS",
            help="Address to listen on. Any but 127.0.0.1 or localhost lets other machines "
            "see the images.",
        ),
        port: int = typer.Option(
            8765, "--port", min=0, max=65535, metavar="PORT",
            help="Port to listen on; 0: any free port.",
        ),
        open_browser: bool = typer.Option(
            False, "--open/--no-open", help="Open the page in the web browser."
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
        if catalog is not None and not catalog.exists():
            raise InvalidParameterError(
                f"--catalog {str(catalog)!r}: no such file; give the catalog of a scanned folder"
            )
        if catalog is None and not default_catalog_path(directory).is_file():
            raise InvalidParameterError(
                f"no catalog in {str(directory)}: run `boda scan {str(directory)}` first"
            )
        view_app = create_app(catalog or directory, root=directory, hosts=_names_of(host))
        sock = _bind(host, port)
        bound = sock.getsockname()[1]
        shown_host = f"[{host.strip('[]')}]" if ":" in host else host
        url = f"http://{shown_host}:{bound}/"
        if not _is_loopback(host):
            err_console.print(
                f"[yellow]warning:[/] listening on {shown(host)}: anyone who can reach this "
                "machine on that address sees the images of the folder and their names",
                highlight=False,
            )
        console.print(
            f"serving {shown(directory)} at [bold]{url}[/] (Ctrl-C to stop)", highlight=False
        )
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
