"""One exception hierarchy for boda.

Every error boda raises on purpose derives from :class:`BodaError`, and its
message says what was wrong and what to do about it.  Classes that describe bad
arguments also derive from :class:`ValueError` so generic ``except ValueError``
code keeps working.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BodaError",
    "ImageReadError",
    "InvalidImageError",
    "InvalidParameterError",
    "CatalogError",
    "ModelError",
    "MissingDependencyError",
    "OutputError",
]


class BodaError(Exception):
    """Base class of every error raised by boda."""


class ImageReadError(BodaError, OSError):
    """A file could not be decoded as an image.

    Attributes
    ----------
    path : pathlib.Path
        The file that failed.
    reason : str
        Why it failed, in words a user can act on.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {str(self.path)!r}: {reason}")

    #: The reasons given for the file-system errors every reader meets the same way.
    FILE_ERRORS = (FileNotFoundError, IsADirectoryError, PermissionError)

    #: The reasons every reader gives alike.  A reason is a sentence a photographer can
    #: act on (what is wrong, and the way out where there is one), the same for every
    #: file that fails alike: the report, ``boda serve`` and the scan's console group
    #: files by it.  No decoder's raw words ("broken data stream when reading image
    #: file") unless nothing better is known, never a memory address.
    EMPTY = (
        "empty file (0 bytes): it holds no image (an interrupted copy or download, or a "
        "cloud file not downloaded yet?)"
    )
    TRUNCATED = (
        "truncated: the file ends before the image does (a partial copy or an interrupted "
        "download?); copy it again from the original"
    )
    OUT_OF_MEMORY = "out of memory while decoding; lower --max-side or the worker count"

    @classmethod
    def from_file_error(cls, path: str | Path, exc: OSError) -> ImageReadError:
        """The error for one of :attr:`FILE_ERRORS` met while opening ``path``."""
        if isinstance(exc, FileNotFoundError):
            return cls(path, "no such file")
        if isinstance(exc, IsADirectoryError):
            return cls(path, "is a directory, not a file")
        return cls(path, "permission denied; check the file's read permission")


class InvalidImageError(BodaError, ValueError):
    """An in-memory array is not an image boda can work on (shape, dtype, values)."""


class InvalidParameterError(BodaError, ValueError):
    """An argument is outside its allowed range or of the wrong kind."""


class OutputError(BodaError, OSError):
    """An output file or its folder could not be written (permissions, a full disk)."""


class CatalogError(BodaError):
    """The scan catalog is missing, locked, corrupt or of an unknown schema version."""


class ModelError(BodaError):
    """A model or its weights could not be found, loaded or used."""


class MissingDependencyError(BodaError, ImportError):
    """An optional dependency (an extra such as ``boda[torch]``) is not installed."""

    def __init__(self, package: str, extra: str, feature: str):
        self.package, self.extra = package, extra
        super().__init__(
            f"{feature} needs {package}, which is not installed; "
            f"install it with: pip install 'boda[{extra}]'"
        )
