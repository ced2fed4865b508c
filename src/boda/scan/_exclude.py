"""What a scan skips: the default excludes, ``--exclude`` patterns and ``DIR/.bodaignore``.

Pattern syntax (a subset of ``.gitignore``'s), matched against a path relative
to the scanned folder, with ``/`` between names:

- ``*`` matches any run of characters but ``/``, ``?`` one character but ``/``,
  ``[abc]`` / ``[a-z]`` / ``[!abc]`` one character of (not of) a set (git's sets:
  ``[[:digit:]]``, ``[\\]]``), ``\\x`` the character ``x`` itself.  ``**`` as a
  whole name matches any number of folders: ``**/Export`` (at any depth),
  ``Photos/**/raw``, ``Export/**``.
- A pattern ending in ``/`` matches folders only: ``Export/``.
- A pattern with no other ``/`` matches a name at any depth (``*.tmp.jpg``,
  ``Export/``); one with a ``/`` at its start or in its middle is anchored to
  the scanned folder (``/Export/`` and ``Photos/Export/`` name one folder each).
- A folder that matches is not entered: nothing under it is scanned.
- ``!pattern`` scans again what an earlier pattern skipped (the last pattern
  that matches a path decides); it cannot bring back a file whose folder is
  skipped, as in git.  The default excludes come first, so ``!#recycle/``
  scans a Synology recycle bin again.
- Patterns are case-sensitive (``*.JPG`` is not ``*.jpg``), as in git; the
  default excludes are not (``$Recycle.Bin`` is ``$RECYCLE.BIN``).
- In ``.bodaignore``: one pattern a line; blank lines and lines starting with
  ``#`` are ignored; spaces at the end of a line are dropped.  A ``.bodaignore``
  in a folder under the scanned one holds patterns relative to that folder, as a
  ``.gitignore`` there does: they come after those of the folders above it (the
  deepest file decides) and before ``--exclude``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence

from boda.errors import InvalidParameterError

__all__ = [
    "DEFAULT_EXCLUDES",
    "IGNORE_FILE",
    "Excludes",
    "describe_default_excludes",
    "icloud_photo_name",
    "read_ignore_file",
]

#: The ignore file read from the top of the scanned folder.
IGNORE_FILE = ".bodaignore"

#: What real disks hold that is not the user's photos: ``(pattern, why)``.  Folders
#: whose names start with a dot (``.thumbnails``, ``.Trashes``, ``.@__thumb``...) are
#: skipped anyway, unless ``include_hidden``.
DEFAULT_EXCLUDES: tuple[tuple[str, str], ...] = (
    ("._*", "macOS AppleDouble files (resource forks written beside every file copied "
     "from a Mac to a FAT, exFAT or SMB disk; named like the photo, not images)"),
    ("__MACOSX/", "the AppleDouble files of a zip made on a Mac, unpacked elsewhere"),
    ("@eaDir/", "Synology thumbnails and metadata (several small JPEGs per photo)"),
    ("#recycle/", "Synology recycle bin"),
    ("#snapshot/", "Synology snapshots (a read-only copy of the whole share)"),
    ("@Recycle/", "QNAP recycle bin"),
    ("@Recently-Snapshot/", "QNAP snapshots"),
    ("$RECYCLE.BIN/", "Windows recycle bin"),
    ("RECYCLER/", "Windows XP recycle bin"),
    ("System Volume Information/", "Windows system folder (restore points, indexes)"),
    ("lost+found/", "fragments a file-system check recovered"),
    ("*.photoslibrary/", "Apple Photos library: its originals belong to Photos (moving "
     "one out breaks the library), the rest are its previews"),
    ("*.photolibrary/", "iPhoto library (as above)"),
    ("*.migratedphotolibrary/", "an iPhoto library Photos has migrated"),
    ("*.aplibrary/", "Aperture library (as above)"),
    ("*.lrdata/", "Lightroom Classic previews and smart previews (small copies of every "
     "photo)"),
    ("*.lrlibrary/", "Lightroom (cloud) local library"),
    ("*.cocatalog/", "Capture One catalog (its previews, and originals it manages)"),
    ("CaptureOne/", "Capture One's per-folder cache and settings"),
)


def describe_default_excludes() -> list[str]:
    """One line per default exclude: the pattern and why it is skipped."""
    return [f"{pattern}  {why}" for pattern, why in DEFAULT_EXCLUDES]


def icloud_photo_name(name: str) -> str | None:
    """The photo an iCloud placeholder stands for (``.IMG_1.HEIC.icloud`` ->
    ``IMG_1.HEIC``), or None when ``name`` is not one."""
    if name.startswith(".") and name.endswith(".icloud") and len(name) > len(". .icloud"):
        return name[1:-len(".icloud")]
    return None


@dataclasses.dataclass(frozen=True)
class _Rule:
    pattern: str  # as given (for the summary)
    regex: re.Pattern[str]
    negated: bool
    folders_only: bool


def _glob_to_regex(glob: str) -> str:
    """The regular expression of one pattern (without ``!`` and a trailing ``/``)."""
    anchored = "/" in glob
    glob = glob.lstrip("/") if glob.startswith("/") else glob
    parts = glob.split("/")
    out: list[str] = [] if anchored else ["(?:.*/)?"]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:.*/)?")
            continue
        out.append(_name_regex(part))
        if not last:
            out.append("/")
    return "".join(out)


def _name_regex(part: str) -> str:
    """One name of a pattern: ``*``, ``?``, ``[...]`` and ``\\`` escapes."""
    out: list[str] = []
    i = 0
    while i < len(part):
        c = part[i]
        if c == "\\" and i + 1 < len(part):
            out.append(re.escape(part[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (found := _set_regex(part, i)) is not None:
            regex, i = found
            out.append(regex)
            continue
        else:  # a '[' that no ']' closes is itself
            out.append(re.escape(c))
        i += 1
    return "".join(out)


#: The POSIX classes a set may hold (``[[:digit:]]``), as git's wildmatch reads them.
_CLASSES = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "blank": " \\t", "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
    "punct": "!-/:-@\\[-`{-~", "space": " \\t\\n\\r\\f\\v", "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}


def _set_regex(part: str, start: int) -> tuple[str, int] | None:
    """The regex of the set ``[...]`` opening at ``part[start]`` and the index after it,
    or None when no ``]`` closes it.  As git's wildmatch (``dowild``): ``!`` or ``^``
    first negates, a ``]`` first is one of the characters, ``\\`` takes the next
    character as it is (``[\\]]``), ``[:alpha:]`` and the other POSIX classes."""
    i = start + 1
    negate = part[i:i + 1] in ("!", "^")
    i += negate
    items: list[str] = []
    single = False  # the last item is one character: a '-' after it makes a range
    while i < len(part):
        c = part[i]
        if c == "]" and items:
            body = "".join(items)
            return (f"[^/{body}]" if negate else f"[{body}]"), i + 1
        name_end = part.find(":]", i + 2) if part.startswith("[:", i) else -1
        if c == "\\" and i + 1 < len(part):
            items.append(re.escape(part[i + 1]))
            i, single = i + 2, True
        elif name_end != -1 and part[i + 2:name_end] in _CLASSES:
            items.append(_CLASSES[part[i + 2:name_end]])
            i, single = name_end + 2, False
        elif c == "-" and single and part[i + 1:i + 2] not in ("", "]"):
            items.append("-")  # a range: the next character is its end
            i, single = i + 1, False
        else:
            items.append(re.escape(c))
            i, single = i + 1, True
    return None


def _rule(pattern: str, *, ignore_case: bool, where: str) -> _Rule:
    text = pattern.rstrip(" ") if not pattern.endswith("\\ ") else pattern
    negated = text.startswith("!")
    body = text[1:] if negated else text
    folders_only = body.endswith("/")
    body = body.rstrip("/")
    if not body or body == "**":
        raise InvalidParameterError(
            f"{where}: {pattern!r} is not a pattern to exclude; give a name or path glob "
            "such as '*.tmp.jpg', 'Export/' or 'Photos/2019/' (see docs/scan.md)"
        )
    flags = re.IGNORECASE if ignore_case else 0
    try:
        regex = re.compile(_glob_to_regex(body), flags | re.DOTALL)
    except re.error as exc:  # a set the regex refuses: a range running backwards, [z-a]
        raise InvalidParameterError(
            f"{where}: {pattern!r} is not a glob boda can read ({exc.msg} in a [...] set); "
            "write ranges low to high, such as '[a-z]'; '[[]' matches a bracket itself"
        ) from None
    return _Rule(pattern, regex, negated, folders_only)


def _below(folder: str, pattern: str) -> str:
    """``pattern`` of ``FOLDER/.bodaignore`` as a pattern relative to the scanned folder:
    an anchored one (a ``/`` at its start or in its middle) under ``folder``, a name at
    any depth below it (``**/``); ``folder``'s own glob characters escaped."""
    text = pattern.rstrip(" ") if not pattern.endswith("\\ ") else pattern
    negated = text.startswith("!")
    body = text[1:] if negated else text
    anchored = "/" in body.rstrip("/")
    body = body.lstrip("/") if anchored else "**/" + body
    prefix = re.sub(r"([\\*?\[!])", r"\\\1", folder)
    return ("!" if negated else "") + prefix + "/" + body


def read_ignore_file(root: str | os.PathLike[str]) -> list[str]:
    """The patterns of ``ROOT/.bodaignore`` (none when there is no such file)."""
    path = os.path.join(os.fspath(root), IGNORE_FILE)
    try:
        # utf-8-sig: a byte-order mark (Windows Notepad) is not part of the first pattern.
        with open(path, encoding="utf-8-sig", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InvalidParameterError(
            f"cannot read {path!r} ({exc.strerror or exc}); make it readable or remove it"
        ) from None
    out = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        out.append(line.rstrip(" \t") if not line.endswith("\\ ") else line)
    return out


class Excludes:
    """The patterns in force for one scan, in order: the defaults (unless
    ``default_excludes`` is False), then ``.bodaignore``'s, then ``patterns``
    (``--exclude``).  The last one that matches a path decides.

    Examples
    --------
    >>> ex = Excludes(["Export/", "!Export/keep/"])
    >>> ex.match("a/@eaDir", folder=True), ex.match("Export", folder=True)
    ('@eaDir/', 'Export/')
    >>> ex.match("Export/keep", folder=True) is None
    True
    >>> ex.match("Photos/._IMG_1.JPG", folder=False)
    '._*'
    """

    def __init__(
        self,
        patterns: Sequence[str] = (),
        *,
        ignore_file: Sequence[str] = (),
        default_excludes: bool = True,
    ):
        rules = []
        if default_excludes:
            rules += [_rule(p, ignore_case=True, where="default") for p, _ in DEFAULT_EXCLUDES]
        self.default_patterns = frozenset(p for p, _ in DEFAULT_EXCLUDES) if default_excludes \
            else frozenset()
        rules += [_rule(p, ignore_case=False, where=IGNORE_FILE) for p in ignore_file]
        self._before = rules
        self._nested: list[_Rule] = []
        self._after = [_rule(p, ignore_case=False, where="--exclude") for p in patterns]
        #: The patterns of the ``.bodaignore`` files below the top (:meth:`add_ignore_file`),
        #: as patterns relative to the scanned folder (``Photos/**/*.tmp.jpg``).
        self.nested_patterns: list[str] = []
        self._nested_folders: set[str] = set()
        self._combine()

    def _combine(self) -> None:
        self._rules = rules = [*self._before, *self._nested, *self._after]
        # One combined test first: most paths match nothing, and then no negation matters.
        self._any_folder = _combined(r for r in rules if not r.negated)
        self._any_file = _combined(r for r in rules if not r.negated and not r.folders_only)

    def add_ignore_file(self, folder: str, patterns: Sequence[str]) -> None:
        """Add the ``patterns`` of ``FOLDER/.bodaignore`` (``folder`` relative to the
        scanned folder, ``/`` between names, no trailing ``/``): they match below
        ``folder`` only, as a ``.gitignore`` there does, after the patterns added
        before (the walk adds a folder's file before its subfolders') and before
        ``--exclude``.  A folder added again is left as it is."""
        if folder in self._nested_folders:
            return
        self._nested_folders.add(folder)
        where = f"{folder}/{IGNORE_FILE}"
        for pattern in patterns:  # refused as written, not as translated
            _rule(pattern, ignore_case=False, where=where)
        translated = [_below(folder, pattern) for pattern in patterns]
        self._nested += [_rule(t, ignore_case=False, where=where) for t in translated]
        self.nested_patterns += translated
        self._combine()

    def __bool__(self) -> bool:
        return bool(self._rules)

    def match(self, relpath: str, *, folder: bool) -> str | None:
        """The pattern that skips ``relpath`` (a folder when ``folder``), or None."""
        quick = self._any_folder if folder else self._any_file
        if quick is None or not quick.fullmatch(relpath):
            return None
        decided = None
        for rule in self._rules:
            if rule.folders_only and not folder:
                continue
            if rule.regex.fullmatch(relpath):
                decided = None if rule.negated else rule.pattern
        return decided

    def skips(self, relpath: str) -> bool:
        """Whether a file at ``relpath`` is skipped, itself or through one of its folders."""
        parts = relpath.split("/")
        for depth in range(1, len(parts)):
            if self.match("/".join(parts[:depth]), folder=True):
                return True
        return self.match(relpath, folder=False) is not None


def _combined(rules: Iterable[_Rule]) -> re.Pattern[str] | None:
    parts = [
        f"(?{'i' if r.regex.flags & re.IGNORECASE else ''}s:{r.regex.pattern})" for r in rules
    ]
    return re.compile("|".join(parts)) if parts else None
