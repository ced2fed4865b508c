"""``boda serve``: a local web app that browses the catalog of a scanned folder.

The app is read-only: a JSON API (``/api/summary``, ``/api/images``,
``/api/images/{id}``, ``/api/thumbnails/{id}``, ``/api/preview/{id}``,
``/api/duplicates``, ``/api/failures``, ``/api/paths``) over the catalog, and one
page (plain HTML, JavaScript and CSS shipped in the package: no network needed)
that pages through every record, filters by flag or selection, sorts, searches,
shows a file closer and copies the list of paths to act on.  See ``docs/serve.md``.

Needs the ``web`` extra (``pip install 'boda[web]'``: FastAPI and uvicorn).

>>> from boda.web import create_app            # doctest: +SKIP
>>> app = create_app("photos/")                # doctest: +SKIP
"""

from boda.web._app import create_app

__all__ = ["create_app"]
