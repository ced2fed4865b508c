"""The duplicate sets of a catalog and the file boda keeps in each (the keep rule
behind the ``redundant`` selection and ``--keep-under``)."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

from boda._io_raw import RAW_EXTENSIONS
from boda.catalog import Catalog, ImageRecord
from boda.catalog._catalog import _hex_hash
from boda.core.numbers import finite_float

__all__ = ["DuplicateSet", "duplicate_sets"]


@dataclasses.dataclass(frozen=True)
class DuplicateSet:
    """Files that are copies of one file, and that file, which boda keeps.

    Every other member is an exact copy of the file kept (identical pixels)
    or within the near-duplicate tolerance of it (pHash Hamming distance): a
    set never holds two files that are alike only through a chain of others.
    A near-duplicate group may therefore be cut into several sets, each with
    its own kept file (see :func:`duplicate_sets`).  Paths are display paths
    (as ``path`` in the records).

    Attributes
    ----------
    keep : str
        The file boda keeps (the keep rule: :func:`duplicate_sets`): one the
        person picked, else one they did not reject; outside trash and cache
        folders, a camera RAW before other files, of the fewest other flags,
        most pixels, not blurry, the best exposed relative to the others, then the
        sharpest, then not named as a copy of another.
    redundant : tuple of str
        The other members: copies of ``keep`` that may be removed, in path order.
    linked : tuple of str
        Other members kept too: a link of the folder points to them (removing
        them would leave the link dangling), or the person picked them
        (:class:`boda.catalog.Marks`).
    exact_groups, near_groups : tuple of int
        The ids of the groups the members belong to (``groups`` in the
        records); several sets may share a near-duplicate group.
    """

    keep: str
    redundant: tuple[str, ...]
    linked: tuple[str, ...]
    exact_groups: tuple[int, ...]
    near_groups: tuple[int, ...]


#: How copies of ``NAME.ext`` are named (the stem, case-insensitive), each giving back
#: ``NAME``: ``NAME (1)`` and ``NAME(1)`` (Windows, browsers, Google Takeout),
#: ``NAME copy`` and ``NAME copy 2`` (macOS Finder), ``NAME - Copy`` and
#: ``NAME - Copy (2)`` (Windows Explorer), ``Copy of NAME`` and ``Copy (2) of NAME``,
#: ``NAME-2`` and ``NAME_1`` (exports, Lightroom's and Takeout's renaming; one or two
#: digits, so the camera's ``IMG_0001`` is no copy of ``IMG``).
_COPY_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"^(?P<name>.+?) - copy(?: \(\d{1,3}\))?$",
    r"^(?P<name>.+?) ?\(\d{1,3}\)$",
    r"^(?P<name>.+?) copy(?: \d{1,3})?$",
    r"^copy (?:\(\d{1,3}\) )?of (?P<name>.+)$",
    r"^(?P<name>.+?)[-_]\d{1,2}$",
))
#: How an edit of ``NAME.ext`` is named: ``NAME-edited`` (Google Photos, Takeout, Apple's
#: iCloud), ``NAME-Edit`` (Lightroom's "Edit in Photoshop"), ``NAME_edit``, ``NAME edited``,
#: ``NAME (edited)``.
_EDIT_PATTERN = re.compile(r"^(?P<name>.+?)(?:[-_ ]edit(?:ed)?| \(edited\))$", re.IGNORECASE)


def _name_parts(path: str) -> tuple[str, str]:
    """The folder (display path, '' at the top) and the stem of a display path."""
    folder, _, name = path.rpartition("/")
    stem, dot, _ = name.rpartition(".")
    return folder, stem if dot and stem else name


@functools.lru_cache(maxsize=1 << 14)  # read for the keep order and for the split
def _stripped(stem: str) -> tuple[tuple[str, ...], bool]:
    """The names ``stem`` is a copy or an edit of, nearest first (``IMG_1 copy (2)``:
    ``IMG_1 copy``, ``IMG_1``), and whether one of them is an edit's name."""
    out: list[str] = []
    edit = False
    while True:
        for pattern in (*_COPY_PATTERNS, _EDIT_PATTERN):
            found = pattern.match(stem)
            if found:
                edit = edit or pattern is _EDIT_PATTERN
                stem = found["name"]
                out.append(stem)
                break
        else:
            return tuple(out), edit


def _is_edit(path: str) -> bool:
    """Whether a file's name says it is an edit of another (``IMG_1-edited.jpg``,
    ``IMG_1-edited (1).jpg``): see :data:`_EDIT_PATTERN`."""
    return _stripped(_name_parts(path)[1])[1]


def _copy_names(paths: list[str]) -> list[int]:
    """How many copy or edit steps (:data:`_COPY_PATTERNS`, :data:`_EDIT_PATTERN`) each
    path's name is from the first of its names among ``paths`` (any folder, any
    extension): 0 for ``IMG_1.JPG``, 1 for ``IMG_1 (1).JPG`` or ``IMG_1-edited.JPG``
    beside it (or beside ``IMG_1.HEIC``), 2 for ``IMG_1-edited (1).JPG``; 0 for a copy's
    name whose original is not there."""
    stems = {_name_parts(p)[1].casefold() for p in paths}
    out = []
    for path in paths:
        names = _stripped(_name_parts(path)[1])[0]
        out.append(max((i for i, name in enumerate(names, 1) if name.casefold() in stems),
                       default=0))
    return out


#: Folders whose files are never kept over a copy outside one (case-insensitive): the
#: scan's default excludes (trash and recycle bins of Windows, Synology, QNAP; NAS
#: snapshots; thumbnail and preview caches such as Synology ``@eaDir``; macOS metadata
#: of zip files), for catalogs made before them and scans with
#: ``--no-default-excludes``, and the trash and cache folders a scan enters.
#: Photo library bundles (Apple Photos, iPhoto, Aperture): everything in one but its
#: originals is a derivative or a cache; its originals are never listed, since moving a
#: file out of the bundle breaks the library (:func:`_in_library`).
_LIBRARY_SUFFIXES = (
    ".photoslibrary", ".photolibrary", ".migratedphotolibrary", ".aplibrary", "iphoto library",
)


def _excluded_folders() -> tuple[frozenset[str], tuple[str, ...]]:
    """The folder names and name endings the scan skips by default
    (:data:`boda.scan.DEFAULT_EXCLUDES`: one list for both), the library bundles left
    to :func:`_folder_kind`."""
    from boda.scan._exclude import DEFAULT_EXCLUDES

    names, endings = set(), []
    for pattern, _ in DEFAULT_EXCLUDES:
        if pattern.endswith("/"):
            name = pattern[:-1].casefold()
            if not name.startswith("*"):
                names.add(name)
            elif not name[1:].endswith(_LIBRARY_SUFFIXES):
                endings.append(name[1:])
    return frozenset(names), tuple(endings)


_DEFAULT_EXCLUDED, _EXCLUDED_ENDINGS = _excluded_folders()
_JUNK_FOLDERS = _DEFAULT_EXCLUDED | frozenset({
    # trash folders a scan enters (not hidden, or with --include-hidden)
    "recycled", ".recycle", "recycle bin", "trash", ".trash", ".trashes", "recently deleted",
    ".snapshot", ".@__thumb", ".thumbnails", ".appledouble", ".dropbox.cache",
})  # fmt: skip
#: Folders of these endings are preview caches (Lightroom's ``Previews.lrdata`` and
#: ``Smart Previews.lrdata``...); the Linux desktop trash is ``.Trash-1000``.
_JUNK_SUFFIXES, _JUNK_PREFIXES = _EXCLUDED_ENDINGS, (".trash-",)
_LIBRARY_ORIGINALS = frozenset({"originals", "masters"})
#: Folders of copies, whose files are kept only where no copy outside one is: backups
#: (``Backup``, ``Backups 2021``, Time Machine's ``Backups.backupdb``), ``Old``,
#: ``Copies``, ``Duplicates``.
_COPY_FOLDERS = frozenset({"old", "copies", "duplicates"})


def _junk_rank(path: str) -> int:
    """2 for a file in a trash or cache folder (:data:`_JUNK_FOLDERS`, a photo library's
    derivatives), 1 for one in a folder of copies (:data:`_COPY_FOLDERS`) or a photo
    library's original (:func:`_in_library`: never listed, and not kept over your own
    files either), else 0."""
    return _folder_kind(path.rpartition("/")[0])[0]


def _in_library(path: str) -> bool:
    """Whether a file is one of a photo library bundle's originals (``Photos
    Library.photoslibrary/originals/...``, ``.../Masters/...``)."""
    return _folder_kind(path.rpartition("/")[0])[1]


@functools.lru_cache(maxsize=1 << 12)  # the files of a set share few folders
def _folder_kind(folder: str) -> tuple[int, bool]:
    """:func:`_junk_rank` and :func:`_in_library` of the files of a folder (display path)."""
    folders = folder.casefold().split("/") if folder else []
    rank, library = 0, False
    for i, name in enumerate(folders):
        if name in _JUNK_FOLDERS or name.endswith(_JUNK_SUFFIXES) or name.startswith(
            _JUNK_PREFIXES
        ):
            return 2, library
        if name.endswith(_LIBRARY_SUFFIXES):
            if i + 1 == len(folders) or folders[i + 1] not in _LIBRARY_ORIGINALS:
                return 2, library
            rank, library = 1, True  # the app's copy: a file of your own folders keeps over it
        elif name in _COPY_FOLDERS or name.startswith("backup"):
            rank = 1
    return rank, library


#: The developed companions a camera writes beside a RAW file (RAW+JPEG, RAW+HEIF).
_PAIR_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".heic", ".heif", ".hif", ".tif", ".tiff"})
_RAW_SUFFIXES = frozenset(e.encode() for e in RAW_EXTENSIONS)


class _Pairs:
    """The RAW+JPEG pairs of a catalog: a RAW file and a JPEG, HEIF or TIFF of the same
    stem in the same folder (case-insensitive), which the camera wrote together."""

    def __init__(self) -> None:
        self._raws: set[tuple[str, str]] = set()  # (folder, stem) of every RAW file

    @staticmethod
    def _kind(path: str) -> tuple[tuple[str, str] | None, int]:
        head, dot, extension = path.rpartition(".")
        extension = f".{extension.casefold()}"
        kind = 1 if extension in RAW_EXTENSIONS else 2 if extension in _PAIR_EXTENSIONS else 0
        if not (kind and dot and head and "/" not in extension):
            return None, 0
        folder, _, stem = head.rpartition("/")
        return (folder.casefold(), stem.casefold()), kind

    def add(self, path: str) -> None:
        """Count a file of the catalog (only RAW files matter)."""
        key, kind = self._kind(path)
        if kind == 1:
            self._raws.add(key)

    def role(self, path: str) -> tuple[tuple[str, str] | None, int]:
        """The pair a file may belong to (None: none) and its part: 1 a RAW, 2 the JPEG,
        HEIF or TIFF beside a RAW (0: neither).  A RAW and a file of part 2 with the same
        pair are the two halves of one."""
        key, kind = self._kind(path)
        if kind == 1 or (kind == 2 and key in self._raws):
            return key, kind
        return None, 0


def _origin_rank(path: str, pairs: _Pairs | None) -> int:
    """0 for a camera RAW file (the original), 1 for the JPEG/HEIF/TIFF the camera wrote
    beside one (:class:`_Pairs`), 3 for a file named as an edit (:func:`_is_edit`), else 2."""
    _, dot, extension = path.rpartition(".")
    if dot and "/" not in extension and f".{extension.casefold()}" in RAW_EXTENSIONS:
        return 0
    if pairs is not None and pairs.role(path)[1] == 2:
        return 1
    return 3 if _is_edit(path) else 2


def _keep_keys(
    members: list[ImageRecord], keep_under: tuple[str, ...] = (), pairs: _Pairs | None = None,
    picked: frozenset[bytes] = frozenset(), rejected: frozenset[bytes] = frozenset(),
) -> list[tuple]:
    """Sort keys of the keep rule (:func:`duplicate_sets`) of the members of linked
    duplicate groups: the file to keep sorts first.

    Per file: the person's decision (their decision comes first: 0 picked, 1 none, 2
    ``rejected``, so that a rejected file keeps only where every copy is rejected:
    ``--only redundant`` and ``--only rejected`` together never hold every copy),
    outside ``keep_under``, in a trash or cache folder (:func:`_junk_rank`),
    not a camera original (:func:`_origin_rank`), its other flags but ``blurry``,
    pixels and then the ``blurry`` flag (one key: the sharpness score is measured at
    each file's own size, and shrinking hides blur, so a thumbnail of a soft photo is
    not flagged where the photo is; the flag only decides between files of one size),
    exposure error within the members (:func:`_exposure_errors`); then the sharpness class among
    the files tied so far (:func:`_sharpness_classes`), a copy's name
    (:func:`_copy_names`), and the path.
    """
    from boda.scan._flags import DUPLICATE_FLAGS

    errors = _exposure_errors(members)
    paths = [r.path for r in members]
    copies = _copy_names(paths)
    heads = []
    for record, path, error in zip(members, paths, errors, strict=True):
        elsewhere = bool(keep_under) and not _is_under(path, keep_under)
        flags = record.flags
        problems = sum(name not in DUPLICATE_FLAGS and name != "blurry" for name in flags)
        size = (-(record.width or 0) * (record.height or 0), "blurry" in flags)
        decision = (record.relpath not in picked) + (record.relpath in rejected)
        heads.append((decision, elsewhere, _junk_rank(path),
                      _origin_rank(path, pairs), problems, size, error))
    sharp = _sharpness_classes(heads, [finite_float(r.scores.get("blurry")) for r in members])
    return [(*head, cls, copy, path, record.relpath) for head, cls, copy, path, record
            in zip(heads, sharp, copies, paths, members, strict=True)]


#: Sharpness (``blurry`` score) differences up to this are noise, not a sharper file:
#: re-encoding a JPEG at the same quality, or cropping a pixel off its right and bottom
#: edges, moves the score of the 24 Kodak photos (JPEG q92, 768 and 480 px) by 0.002
#: (median), 0.006 (90th percentile), 0.021 at most; a Gaussian blur of sigma 0.5 lowers
#: it by 0.10 or more (0.21 median).  Within this the copy's name and the path decide.
_SHARPNESS_TOLERANCE = 0.015


def _sharpness_classes(heads: list[tuple], sharpness: list[float | None]) -> list[float]:
    """The sharpness class of each file among those of equal ``heads`` (the keys of the
    keep order before sharpness): 0 for the sharpest and every file within
    :data:`_SHARPNESS_TOLERANCE` of it, 1 for the sharpest of the rest and those within
    the tolerance of it, and so on; a file without a score comes last (inf)."""
    tiers: dict[tuple, list[int]] = {}
    for i, head in enumerate(heads):
        tiers.setdefault(head, []).append(i)
    out = [math.inf] * len(heads)
    for indices in tiers.values():
        scored = sorted((i for i in indices if sharpness[i] is not None),
                        key=lambda i: -sharpness[i])
        cls, top = -1, math.inf
        for i in scored:
            if top - sharpness[i] > _SHARPNESS_TOLERANCE:
                cls, top = cls + 1, sharpness[i]
            out[i] = cls
    return out


#: Exposure differences are counted in steps of this many EV (stops): frames whose
#: mean lightness is within half a stop of the group's reference frame are equally
#: exposed, and the sharpest of them keeps.  A burst's frames vary by well under this
#: (0.16 EV at most over the 37 bursts of a test shoot); an exposure mistake is 1 EV
#: or more, and auto-exposure steps by 1/3 EV.
_EXPOSURE_STEP_EV = 0.5
#: Lightness percentiles at or beyond these (luma, 0-1) are clipped (8-bit 254-255, 0-1).
_CLIP_HIGH, _CLIP_LOW = 0.995, 0.005
#: Mid-grey, the centre of the well-exposedness weight of Mertens et al. (2007), in EV.
_MID_GREY_EV = 2.2 * math.log2(0.5)
#: The luma used for a mean lightness of 0 (log2 needs a positive number).
_DARKEST = 0.5 / 255
_PERCENTILES = ("p05_lightness", "p50_lightness", "p95_lightness")


def _tone(record: ImageRecord) -> tuple[float, int, int] | None:
    """A record's mean lightness in EV (``2.2 * log2``: stops of linear light for sRGB
    luma), and how many of its 5th, 50th and 95th lightness percentiles are clipped
    white and black; None without a stored ``mean_lightness``."""
    scores = record.scores
    mean = finite_float(scores.get("mean_lightness"))
    if mean is None:
        return None
    white = black = 0
    for name in _PERCENTILES:  # read per file of every duplicate set: kept cheap
        value = scores.get(name)
        if isinstance(value, float | int):  # NaN compares False: not clipped
            white += value >= _CLIP_HIGH
            black += value <= _CLIP_LOW
    return 2.2 * math.log2(max(mean, _DARKEST)), white, black


def _exposure_errors(members: list[ImageRecord]) -> list[int]:
    """The exposure error of each member, relative to the group's reference frame.

    Exposure is relative to the scene, so members are compared with each other: the
    reference is the member of median mean lightness (of an even count's two middle
    members, the one nearer mid-grey; of a pair, the one nearer mid-grey).  A member's
    error is its distance from the reference in whole steps of :data:`_EXPOSURE_STEP_EV`,
    plus one for each lightness percentile it clips (white or black) that the reference
    does not.  Members without stored lightness scores count as well exposed (0).
    """
    tones = [_tone(r) for r in members]
    known = sorted((t for t in tones if t is not None), key=lambda t: t[0])
    if len(known) < 2:
        return [0] * len(members)
    middle = (len(known) - 1) // 2
    reference = known[middle]
    if len(known) % 2 == 0:
        upper = known[middle + 1]
        if abs(upper[0] - _MID_GREY_EV) < abs(reference[0] - _MID_GREY_EV):
            reference = upper
    ev, white, black = reference
    return [
        0 if t is None
        else int(abs(t[0] - ev) / _EXPOSURE_STEP_EV) + max(0, t[1] - white) + max(0, t[2] - black)
        for t in tones
    ]


class _NoFileUnder(UserWarning):
    """A folder given to ``under``, ``copy_under`` or ``keep_under`` holds no file of the
    catalog."""


def _warn_unmatched(
    prefixes: Iterable[str | bytes], matched: set, option: str, what: str = "file",
    stacklevel: int = 3,
) -> None:
    """A warning for each folder prefix that holds no ``what`` of the catalog (a typo, or
    a path given from the current folder instead of from the scanned one)."""
    import warnings

    for prefix in prefixes:
        if prefix not in matched:
            warnings.warn(
                f"{option} {os.fsdecode(prefix)!r}: no {what} of the catalog is under it "
                "(folders are relative to the scanned folder)",
                _NoFileUnder, stacklevel=stacklevel,
            )


def _keep_prefixes(
    keep_under: str | Iterable[str] | None, name: str = "keep_under"
) -> tuple[str, ...]:
    """``keep_under`` as folder prefixes without a leading ``./`` or a trailing ``/``,
    checked as ``under`` is: a folder inside the scanned one, by its path relative to it."""
    from boda.errors import InvalidParameterError

    if keep_under is None:
        return ()
    items = [keep_under] if isinstance(keep_under, str | os.PathLike) else list(keep_under)
    out = []
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise InvalidParameterError(
                f"{name} must name folders as strings, e.g. ('train/',); got {keep_under!r}"
            )
        text = os.fspath(item).replace(os.sep, "/")
        while text.startswith("./"):
            text = text[2:]
        outside = text.startswith("/") or ".." in text.split("/")
        text = text.strip("/")
        if not text or text == "." or outside:
            raise InvalidParameterError(
                f"{name} {os.fspath(item)!r}: give a folder inside the scanned one, as its "
                "path relative to it (e.g. 'train/')"
            )
        out.append(text)
    return tuple(out)


def _is_under(path: str, prefixes: tuple[str, ...]) -> bool:
    """Whether the display ``path`` is one of ``prefixes`` or inside one (whole names:
    ``train`` holds ``train/a.png``, not ``training/a.png``)."""
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _split_set(
    members: list[ImageRecord], max_distance: int, keep_under: tuple[str, ...],
    pairs: _Pairs | None = None, picked: frozenset[bytes] = frozenset(),
    flipped: dict[bytes, int] | None = None, rejected: frozenset[bytes] = frozenset(),
) -> list[list[ImageRecord]]:
    """Cut the members of linked duplicate groups into sets whose every other member is a
    copy of the set's first (kept) file.

    Near-duplicate groups are single-linkage: they chain A~B~C with A and C far apart.
    In keep order (:func:`_keep_keys`), the first member not yet in a set keeps; every
    member not yet in a set with its pixel hash (an exact copy), or a comparable pHash
    within ``max_distance`` bits of its pHash, joins its set; repeat.  A file named as an
    edit (:func:`_is_edit`) joins only as an exact copy, and takes only exact copies when
    it keeps (an edit is no near copy of its original, nor the original of the edit), a
    photo library's original (:func:`_in_library`) never joins, and the two halves of a
    RAW+JPEG pair (:class:`_Pairs`) never join each other's set.  ``flipped`` (a scan with
    ``mirrored``) maps members' paths to the pHash of their mirror image: a member
    whose pHash is within ``max_distance`` of the keeper's mirrored pHash and whose
    mirrored pHash is within it of the keeper's pHash (a mirror image of it) joins
    as a near copy too.
    """
    import numpy as np

    from boda.duplicates._clusters import _popcount, mirror_distance

    keys = _keep_keys(members, keep_under, pairs, picked, rejected)
    order = sorted(range(len(members)), key=keys.__getitem__)
    ranked = [members[i] for i in order]
    paths = [keys[i][-2] for i in order]
    pair = [(None, 0) if pairs is None else pairs.role(p) for p in paths]
    # How a member may join a set: 2 as an exact or a near copy, 1 as an exact copy, 0 not.
    joining = [0 if _in_library(p) else 1 if _is_edit(p) else 2 for p in paths]
    # Only pHashes that took part in the near-duplicate grouping compare (a flat or
    # too-small image's hash says nothing).
    flipped = flipped or {}
    if len(ranked) <= _SMALL_SET:  # most sets: a pair or a few files, cheaper in Python
        return _split_small(ranked, max_distance, pair, joining, flipped)
    hashed = np.array([r.phash is not None and "near_duplicate" in r.flags for r in ranked],
                      dtype=bool)
    mode = np.array(joining, dtype=np.int8)
    comparable = hashed & (mode == 2)
    phash = np.array([r.phash or 0 for r in ranked], dtype=np.uint64)
    mirrored = np.array([flipped.get(r.relpath, 0) for r in ranked], dtype=np.uint64)
    has_mirrored = hashed & np.array([r.relpath in flipped for r in ranked], dtype=bool)
    pixels: dict[str | None, int] = {None: -1}
    pixel = np.array(
        [-1 if r.pixel_hash is None else pixels.setdefault(r.pixel_hash, len(pixels))
         for r in ranked], dtype=np.int64,
    )
    pair_ids: dict[tuple[str, str] | None, int] = {None: -1}
    paired = np.array([pair_ids.setdefault(k, len(pair_ids)) for k, _ in pair], dtype=np.int64)
    part = np.array([kind for _, kind in pair], dtype=np.int8)
    left = np.ones(len(ranked), dtype=bool)
    out = []
    for keeper in range(len(ranked)):
        if not left[keeper]:
            continue
        joins = left & (pixel == pixel[keeper]) & (pixel >= 0) & (mode > 0)
        if hashed[keeper] and mode[keeper] != 1:  # an edit keeps its exact copies only
            near = _popcount(phash ^ phash[keeper]) <= max_distance  # numpy < 2 too
            if has_mirrored[keeper]:  # a mirror image of it, both ways
                near |= has_mirrored & (
                    mirror_distance(phash, mirrored, phash[keeper], mirrored[keeper])
                    <= max_distance
                )
            joins |= left & comparable & near
        if paired[keeper] >= 0:  # not the other half of its pair
            joins &= (paired != paired[keeper]) | (part == part[keeper])
        joins[keeper] = True
        left &= ~joins
        out.append([ranked[i] for i in np.flatnonzero(joins)])  # the keeper first
    return out


#: Sets up to this size are cut by :func:`_split_small` (numpy's overhead dominates).
_SMALL_SET = 32


def _split_small(
    ranked: list[ImageRecord], max_distance: int, pair: list, joining: list[int],
    flipped: dict[bytes, int] | None = None,
) -> list[list[ImageRecord]]:
    """:func:`_split_set` of members already in keep order, one pair at a time."""
    flipped = flipped or {}
    out = []
    items = list(zip(ranked, pair, joining, strict=True))
    while items:
        keeper, kept_pair, kept_mode = items[0]
        copies, left = [keeper], []
        # an edit that keeps takes its exact copies only (it is no near copy of its original)
        near = keeper.phash is not None and "near_duplicate" in keeper.flags and kept_mode != 1
        mirror = flipped.get(keeper.relpath) if near else None
        for item in items[1:]:
            record, record_pair, mode = item
            other = flipped.get(record.relpath) if mirror is not None else None
            if (
                ((mode and keeper.pixel_hash is not None
                  and record.pixel_hash == keeper.pixel_hash)
                 or (near and mode == 2 and record.phash is not None
                     and "near_duplicate" in record.flags
                     and ((keeper.phash ^ record.phash).bit_count() <= max_distance
                          or (other is not None  # a mirror image of it, both ways
                              and (mirror ^ record.phash).bit_count() <= max_distance
                              and (other ^ keeper.phash).bit_count() <= max_distance))))
                and (record_pair[0] is None or record_pair[0] != kept_pair[0]
                     or record_pair[1] == kept_pair[1])
            ):
                copies.append(record)
            else:
                left.append(item)
        out.append(copies)
        items = left
    return out


def _near_tolerance(catalog: Catalog) -> int:
    """The Hamming tolerance the catalog's near-duplicate flags were derived with."""
    from boda.duplicates import DEFAULT_MAX_DISTANCE

    stored = catalog.get_setting("thresholds")
    value = stored.get("near_duplicate") if isinstance(stored, dict) else None
    number = finite_float(value)
    return int(number) if number is not None else DEFAULT_MAX_DISTANCE


#: The scores the keep rule reads (sharpness, then exposure).
_KEEP_SCORES = ("blurry", "mean_lightness", "p05_lightness", "p50_lightness", "p95_lightness")


def _decisions(catalog: Catalog) -> tuple[list[bytes], list[bytes]]:
    """The paths of the files the person picked, and of those they rejected (marks that
    still apply to them)."""
    import warnings

    from boda.catalog import marks_path
    from boda.errors import CatalogError

    try:
        rows = catalog.mark_rows(marks_path(catalog.path))
    except CatalogError as exc:  # a damaged marks file: the duplicates are still shown
        warnings.warn(f"{exc}; the keep rule goes without your picks and rejects", stacklevel=3)
        return [], []
    picked = [i for i, _, decision, _ in rows if decision == "pick"]
    rejected = [i for i, _, decision, _ in rows if decision == "reject"]
    return (list(catalog.relpaths_of(picked).values()),
            list(catalog.relpaths_of(rejected).values()))


def _duplicate_plan(
    catalog_path: str | Path, keep_under: tuple[str, ...] = ()
) -> tuple[list[DuplicateSet], dict[bytes, str]]:
    """:func:`duplicate_sets`, and the exact paths of their redundant members, each
    with the display path of the file kept in its set."""
    groups: dict[tuple[str, int], list[ImageRecord]] = {}
    link_targets: set[bytes] = set()
    pairs = _Pairs()
    flipped: dict[bytes, int] = {}  # a mirrored scan: the mirror images' pHashes
    with Catalog(catalog_path, readonly=True) as catalog:
        max_distance = _near_tolerance(catalog)
        mirrored = catalog.mirrored_scan()
        # the files the person picked: kept first, and never listed as copies; those
        # they rejected: kept last (a rejected keeper and its listed copies were every copy)
        picked, rejected = map(frozenset, _decisions(catalog))
        for record in catalog.records():
            if record.status == "link":
                if record.link_to is not None:
                    link_targets.add(record.link_to)
                continue
            if record.relpath[record.relpath.rfind(b"."):].lower() in _RAW_SUFFIXES:
                pairs.add(record.path)  # the RAW files only: few, or none
            if mirrored and "near_duplicate" in record.flags:
                value = _hex_hash(record.extra.get("phash_mirrored"))
                if value is not None:
                    flipped[record.relpath] = value
            for flag, (_, group_id) in record.flags.items():
                if group_id is not None:
                    # Only what the keep rule reads is held (a large catalog has many groups).
                    record.scores = {k: record.scores.get(k) for k in _KEEP_SCORES}
                    record.extra = {}
                    groups.setdefault((flag, group_id), []).append(record)
    # Groups that share a file are one set (union-find over the group keys).
    parent = {key: key for key in groups}

    def root(key: tuple[str, int]) -> tuple[str, int]:
        while parent[key] != key:
            parent[key] = key = parent[parent[key]]
        return key

    owner: dict[bytes, tuple[str, int]] = {}
    for key, members in groups.items():
        for record in members:
            other = owner.setdefault(record.relpath, key)
            parent[root(other)] = root(key)
    sets: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for key in groups:
        sets.setdefault(root(key), []).append(key)
    plans, redundant = [], {}
    for keys in sets.values():
        members = {r.relpath: r for key in keys for r in groups[key]}
        for copies in _split_set(
            list(members.values()), max_distance, keep_under, pairs, picked, flipped,
            rejected,
        ):
            if len(copies) < 2:
                continue  # a member that is a copy of no kept file: kept, in no set
            others = sorted(copies[1:], key=lambda r: (r.path, r.relpath))
            kept_too = link_targets | picked
            removable = [r for r in others if r.relpath not in kept_too]
            redundant.update((r.relpath, copies[0].path) for r in removable)
            ids = {(f, g) for r in copies for f, (_, g) in r.flags.items() if g is not None}
            plans.append(DuplicateSet(
                keep=copies[0].path,
                redundant=tuple(r.path for r in removable),
                linked=tuple(r.path for r in others if r.relpath in kept_too),
                exact_groups=tuple(sorted(g for f, g in ids if f == "exact_duplicate")),
                near_groups=tuple(sorted(g for f, g in ids if f == "near_duplicate")),
            ))
    plans.sort(key=lambda plan: plan.keep)
    if keep_under:  # a typo, or a path from the current folder: the default rule decided
        held = {p for members in groups.values() for r in members for p in keep_under
                if _is_under(r.path, (p,))}
        _warn_unmatched(keep_under, held, "keep_under", "duplicate", stacklevel=4)
    return plans, redundant


def duplicate_sets(
    catalog_path: str | Path, *, keep_under: str | Iterable[str] | None = None
) -> list[DuplicateSet]:
    """Every set of duplicate files in the catalog, with the one boda keeps.

    The files of duplicate groups that share a file (an exact copy inside a
    near-duplicate group) are taken in keep order.  The first keeps; every
    file not yet in a set that is an exact copy of it (identical pixels) or
    whose pHash is within the near-duplicate tolerance of its pHash (the
    ``near_duplicate`` threshold of the catalog's last scan; after a scan with
    ``mirrored``, also a left-right mirror image of it, within the tolerance
    both ways) joins its set;
    the first file left keeps the next set, and so on.  Near-duplicate groups
    are single-linkage (A looks like B, B like C, so A, B and C are one
    group even when A and C look nothing alike), so one group may give
    several sets, and several kept files; a member that is a copy of no kept
    file, and has no copy of its own left, is kept and in no set.

    The keep order: first a file the person picked (:class:`boda.catalog.Marks`),
    last one they rejected (so that the ``redundant`` and ``rejected`` selections
    together never hold every copy of a picture); between these,
    first a file under one of ``keep_under`` (when given),
    then a file outside trash, recycle-bin, snapshot and cache folders
    (``#recycle``, ``$RECYCLE.BIN``, ``Trash``, ``@eaDir``, ``*.lrdata``, a
    photo library's derivatives...), then outside folders of copies
    (``Backup*``, ``Old``, ``Copies``, ``Duplicates``) and photo libraries'
    originals, then a camera RAW file, then the JPEG/HEIF/TIFF of a RAW+JPEG
    pair (a RAW and one of these of the same name in the same folder), then a
    file not named as an edit (``IMG_1-edited.jpg``), then the fewest other
    flags (a dark or cropped copy is not kept over a good one), then the most
    pixels (``width * height`` of the original), then not flagged ``blurry``
    (a blurred copy is not kept over a sharp one of its size; the score is
    measured at each file's own size and shrinking hides blur, so between
    sizes the larger keeps), then the best exposed, then the sharpest
    (highest ``blurry`` score; scores within 0.015 of the sharpest of the
    files tied so far tie: re-encoding a JPEG moves the score that much),
    then a file whose name is not a copy's name of another member's
    (``IMG_1.JPG`` over ``IMG_1 (1).JPG``, ``IMG_1 copy.JPG``, ``IMG_1-2.JPG``,
    ``Copy of IMG_1.JPG``...), then the first in path order.

    Some files join a set only in part: a file named as an edit joins only as
    an exact copy, and when it keeps, only its exact copies join its set (a
    deliberate edit is no near copy of its original, nor its original a copy
    of the edit, whichever keeps first); the
    two halves of a RAW+JPEG pair never join each other's set (one photo the
    camera wrote twice); a photo library's original
    (``*.photoslibrary/originals/...``) never joins (moving it out breaks the
    library).

    Exposure is judged against the other files taken together, from the
    stored lightness scores: the reference is the file of median
    ``mean_lightness`` (of two middle files, the one nearer mid-grey, 0.5, the
    centre of the well-exposedness weight of Mertens et al.), and a file's
    error is the number of whole half-stops (EV, ``2.2 * log2`` of the luma)
    between its mean lightness and the reference's, plus one for each of its
    5th, 50th and 95th lightness percentiles clipped (>= 0.995 or <= 0.005)
    where the reference's is not.  Files within half a stop of the reference
    that clip no more than it are equally exposed: the sharpest of them keeps.
    A blown-out or dark frame of a burst therefore does not keep, though its
    ``blurry`` score is often higher and its ``light``/``dark`` score under the
    flag threshold; of a pair more than half a stop apart, the one nearer
    mid-grey keeps.  Files without stored lightness count as well exposed.

    Every other member of a set is ``redundant`` (listed by
    ``boda report DIR --only redundant``), except a file that a link of the
    folder points to, which is kept as well (``linked``): removing it would
    leave the link dangling.  Links themselves (status ``"link"``) are in no
    group, so they are never kept over a real file nor listed as copies.

    Parameters
    ----------
    catalog_path : str or Path
        The catalog file, or the scanned folder holding it.
    keep_under : str or iterable of str, optional
        Folders (relative to the scanned folder, e.g. ``"train/"``) whose
        files are kept in preference to copies elsewhere (e.g. keep the
        training copy of a train/test leak and list the test copy).

    Returns
    -------
    list of DuplicateSet
        Ordered by the path of the file kept.

    Raises
    ------
    CatalogError
        No catalog there, or not a usable one.
    InvalidParameterError
        A ``keep_under`` entry that is empty or not a string.

    References
    ----------
    .. [1] T. Mertens, J. Kautz, F. Van Reeth, "Exposure Fusion", Pacific
       Graphics 2007, Sec. 3.1 (well-exposedness: a Gaussian around 0.5).

    Examples
    --------
    >>> for s in duplicate_sets("photos/"):          # doctest: +SKIP
    ...     print(s.keep, "<-", s.redundant)
    a.png <- ('copies/a copy.png',)
    """
    return _duplicate_plan(catalog_path, _keep_prefixes(keep_under))[0]
