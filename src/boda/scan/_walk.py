"""Finding the image files under a folder."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from boda._io_raw import RAW_EXTENSIONS, raw_available
from boda.catalog._catalog import relpath_bytes
from boda.io import SUPPORTED_EXTENSIONS
from boda.scan._exclude import IGNORE_FILE, Excludes, icloud_photo_name, read_ignore_file

__all__ = ["FoundFile", "RAW_EXTENSIONS", "describe_raw_files", "walk_images", "walk_as_scanned"]


@dataclasses.dataclass(frozen=True)
class FoundFile:
    """A candidate file: absolute path, path relative to the root (bytes), and stat results.

    ``error`` is set when the file (or folder) could not even be stat'ed or
    listed; the scan records it as failed without trying to decode it.
    ``unlisted_folder`` marks a folder that could not be listed: the files the
    catalog knows under it may all still be there, so the scan keeps them.
    ``link_to`` is set for a file symlink whose target lies under the root: the
    target's path relative to the root (bytes).  The scan records such a link
    as a link when the walk finds its target too, instead of analysing the
    same file twice and calling it its own duplicate.
    """

    path: str
    relpath: bytes
    size: int
    mtime_ns: int
    error: str | None = None
    unlisted_folder: bool = False
    link_to: bytes | None = None


def _inside(target: bytes, real_root: bytes) -> bytes | None:
    """``target`` (a resolved path) relative to ``real_root``, or None when outside it."""
    rel = os.path.relpath(target, real_root)
    if rel == b"." or rel == b".." or rel.startswith(b".." + os.sep.encode()):
        return None
    return rel.replace(os.sep.encode(), b"/")


def _link_target(link: bytes, real_root: bytes) -> bytes | None:
    """The file of the folder that the file symlink ``link`` stands for: the last link
    of its chain that lies under ``real_root`` (relative to it), or None.

    Not simply its resolved path: ``b.png -> a.png -> /elsewhere/x.png`` makes ``a.png``
    a file of the folder (its target is outside), and ``b.png`` a link to it, not a
    second copy of ``x.png`` (deleting ``a.png`` as that copy left ``b.png`` dangling).
    """
    found = None
    for _ in range(40):  # the kernel's own limit (ELOOP); the caller's stat checked loops
        target = os.path.join(os.path.dirname(link), os.readlink(link))
        # The folders resolved, the last name kept: it may be a link again.
        head, name = os.path.split(target)
        link = os.path.join(os.path.realpath(head), name)
        found = _inside(link, real_root) or found
        if not os.path.islink(link):
            break
    return found


def describe_raw_files(counts: dict[str, int]) -> str:
    """The sentence the summary and the report give for the RAW files a scan passed
    over (without the ``boda[raw]`` extra: with it, they are scanned)."""
    kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(counts.items()))
    return (
        f"{sum(counts.values())} camera RAW files ({kinds}): boda reads JPEG, HEIC, PNG, "
        "TIFF, WebP and more, but not RAW; pip install 'boda[raw]' to scan them, or scan "
        "the camera's JPEGs"
    )


def describe_icloud_placeholders(count: int, first: list[str]) -> str:
    """The sentence the summary and the report give for ``count`` iCloud placeholders,
    naming the first three of ``first``."""
    names = ", ".join(map(str, first[:3])) + (" …" if count > 3 else "")
    many = count != 1
    what = "files are iCloud placeholders" if many else "file is an iCloud placeholder"
    return (f"{count} {what}, not downloaded: {names} (download {'them' if many else 'it'}, "
            "e.g. turn off "
            "\"Optimise Mac Storage\", and scan again)")


def describe_skipped(skipped: dict[str, int]) -> str:
    """``pattern ×count`` of each exclude that skipped files, the most first."""
    ranked = sorted(skipped.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{pattern} ×{n}" for pattern, n in ranked)


#: How the record of a folder that could not be listed begins its reason (an
#: unreadable entry of the catalog that is no file: left out of path lists).
UNLISTED_FOLDER = "cannot list folder"


def walk_images(
    root: str | Path,
    *,
    include_hidden: bool = False,
    raw_files: dict[str, int] | None = None,
    folder_links: list[tuple[str, str]] | None = None,
    excludes: Excludes | None = None,
    skipped: dict[str, int] | None = None,
    icloud: list[str] | None = None,
) -> Iterator[FoundFile]:
    """Yield every file with a supported image extension under ``root``, recursively.

    Folder symlinks are not followed (so symlink loops cannot trap the walk);
    file symlinks are read, and those whose target lies under ``root`` carry
    its relative path in ``link_to``.  Folders whose names start with ``.`` (``.boda``,
    ``.git``, ``.thumbnails``...) are skipped unless ``include_hidden``.  A
    folder that cannot be listed, or a file that cannot be stat'ed (dangling
    link, link loop, permission), is yielded with ``error`` set.  Camera RAW
    files (:data:`RAW_EXTENSIONS`) are yielded when the ``boda[raw]`` extra
    (``rawpy``) is installed; otherwise they are not, and given a dict,
    ``raw_files`` counts them by extension.  Given a list, ``folder_links``
    gets ``(path, target)`` for each folder symlink the walk passes over (the
    path relative to ``root``, as the records show paths; the link's text): a
    split linked from another disk is not scanned, and a scan should say so.

    ``excludes`` (:class:`boda.scan.Excludes`) names the folders not entered and
    the files not yielded, and takes the patterns of each ``.bodaignore`` the walk
    finds below the top (:meth:`Excludes.add_ignore_file`; an unreadable one raises
    :class:`~boda.errors.InvalidParameterError`); given a dict, ``skipped`` counts
    them by the pattern
    that skipped them (a folder counts once, whatever it holds; a file only
    when its extension would have had it scanned).  Given a list, ``icloud``
    gets the relative path of the photo each iCloud placeholder
    (``.IMG_1.HEIC.icloud``: a photo "Optimise Mac Storage" left in the cloud)
    stands for: it is not on this disk, so it is not scanned.
    """
    from boda.catalog import display_path

    root = os.fspath(root)
    real_root = os.fsencode(os.path.realpath(root))
    raw_readable = raw_available()
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        yield from _unlisted(errors, root)
        dirnames[:] = sorted(d for d in dirnames if include_hidden or not d.startswith("."))
        # The folder's path relative to the root, as the patterns see it ("" at the top).
        here = "" if dirpath == root else os.fsdecode(relpath_bytes(dirpath, root)) + "/"
        if excludes is not None and here and IGNORE_FILE in filenames:
            # A folder's own .bodaignore, as git reads a .gitignore there (the top one
            # is in ``excludes`` already): before its files and subfolders are looked at.
            excludes.add_ignore_file(here[:-1], read_ignore_file(dirpath))
        if excludes:
            dirnames[:] = [d for d in dirnames if not _skip(excludes, here + d, True, skipped)]
        if folder_links is not None:
            folder_links.extend(_folder_links(dirpath, dirnames, root))
        for name in sorted(filenames):
            extension = os.path.splitext(name)[1].lower()
            if extension == ".icloud" and icloud is not None:
                photo = icloud_photo_name(name)
                if photo is not None and _is_image_name(photo):
                    # Shown, never opened: undecodable bytes as \xNN, as record paths.
                    icloud.append(display_path(here + photo))
                continue
            if excludes and _is_image_name(name) and _skip(excludes, here + name, False, skipped):
                continue
            if extension in RAW_EXTENSIONS and not raw_readable:
                if raw_files is not None:
                    raw_files[extension] = raw_files.get(extension, 0) + 1
                continue
            if extension not in SUPPORTED_EXTENSIONS and extension not in RAW_EXTENSIONS:
                continue
            path = os.path.join(dirpath, name)
            # The folder's relative path joined with the name: os.path.relpath per file
            # (two abspath calls, two getcwd) was most of the walk's time (1.1 of 1.5 s
            # for 100 000 files).
            relpath = os.fsencode(here + name)
            link_to = None
            try:
                # lstat first: one system call for a plain file, as a stat would be.
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    st = os.stat(path)
                    link_to = _link_target(os.fsencode(path), real_root)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError) and not os.path.lexists(path):
                    continue  # deleted since its folder was listed: gone, not unreadable
                reason = exc.strerror or str(exc)
                if exc.errno == 40:  # ELOOP
                    reason = "symbolic link loop"
                elif os.path.islink(path):
                    reason = f"broken symbolic link ({reason})"
                yield FoundFile(path, relpath, 0, 0, reason)
                continue
            if not stat.S_ISREG(st.st_mode):
                # FIFOs and devices would block or stream forever when opened.
                yield FoundFile(path, relpath, 0, 0, "not a regular file")
                continue
            yield FoundFile(
                path, relpath, st.st_size, _stored_mtime(st.st_mtime_ns),
                link_to=link_to,
            )
    # The last folder's error (or the root's, when nothing could be listed) is
    # still pending: os.walk reports it only as it moves on.
    yield from _unlisted(errors, root)


#: The catalog's integers are SQLite's, signed 64-bit: nanoseconds up to the year 2262.
_MTIME_LIMIT_NS = 2**63 - 1


def _stored_mtime(mtime_ns: int) -> int:
    """``mtime_ns`` within what the catalog can store.  A time past 2262 (a camera's
    clock gone wrong, a damaged file system: ext4 keeps times to 2446) would stop the
    scan; clamped, such a file is still compared by its size and that time."""
    return max(-_MTIME_LIMIT_NS, min(mtime_ns, _MTIME_LIMIT_NS))


def walk_as_scanned(root: str | Path, **options) -> Iterator[FoundFile]:
    """:func:`walk_images` of ``root`` skipping what ``boda scan root`` skips by
    default: the default excludes (``@eaDir/``, ``._*``...) and the patterns of
    ``root/.bodaignore`` and of the ``.bodaignore`` files in its folders (a scan
    also skips the ``--exclude`` patterns it was given or remembers; those belong
    to one catalog).  ``options`` go to :func:`walk_images`.

    Raises
    ------
    InvalidParameterError
        When ``root/.bodaignore`` cannot be read or holds a pattern boda refuses.
    """
    excludes = Excludes(ignore_file=read_ignore_file(root))
    return walk_images(root, excludes=excludes, **options)


def _is_image_name(name: str) -> bool:
    extension = os.path.splitext(name)[1].lower()
    return extension in SUPPORTED_EXTENSIONS or extension in RAW_EXTENSIONS


def _skip(excludes: Excludes, relpath: str, folder: bool, skipped: dict[str, int] | None) -> bool:
    """Whether ``excludes`` skip ``relpath``; counted in ``skipped`` by pattern."""
    pattern = excludes.match(relpath, folder=folder)
    if pattern is None:
        return False
    if skipped is not None:
        skipped[pattern] = skipped.get(pattern, 0) + 1
    return True


def _folder_links(dirpath: str, dirnames: list[str], root: str) -> Iterator[tuple[str, str]]:
    """``(path, target)`` of the folder symlinks among ``dirnames`` (os.walk lists them
    with the folders and, not following links, does not enter them)."""
    from boda.catalog import display_path

    for name in dirnames:
        path = os.path.join(dirpath, name)
        try:
            target = os.readlink(path)
        except OSError:  # not a link (EINVAL), or gone since the listing
            continue
        yield display_path(relpath_bytes(path, root)), display_path(target)


def _unlisted(errors: list[OSError], root: str) -> Iterator[FoundFile]:
    """A failed record for each folder os.walk reported it could not list (then cleared)."""
    for exc in errors:
        where = os.fspath(exc.filename) if exc.filename is not None else root
        if where != root and isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            # Deleted (or replaced by a file) since its parent was listed: its files
            # are gone, not kept as if it could not be read.  The root's own error
            # stays: an unmounted card keeps the catalog (scan refuses to empty it).
            continue
        relpath = relpath_bytes(where, root)
        yield FoundFile(
            where, relpath, 0, 0, f"{UNLISTED_FOLDER}: {exc.strerror or exc}",
            unlisted_folder=True,
        )
    errors.clear()
