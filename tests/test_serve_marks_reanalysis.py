"""A page open across a scan at another ``--max-side`` can still mark its files: the
scan gives every unchanged file a new pixel hash, and the page's marks were refused as
"holds another picture" (409) until it was reloaded."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient
from scan_helpers import noise_photo

from boda.catalog import Marks
from boda.scan import scan
from boda.web import create_app


@pytest.fixture
def shoot(tmp_path):
    root = tmp_path / "shoot"
    for i in range(3):
        noise_photo(root / f"IMG_{i}.png", i)
    scan(root, workers=1)
    return root


def _post(client, record, **change):
    return client.post(
        "/api/marks",
        json={
            "ids": [record["id"]],
            "paths": [record["path"]],
            "pixels": [record["pixel_hash"]],
            "identities": [record["file_identity"]],
            **change,
        },
    )


def test_a_page_open_across_a_reanalysis_marks_its_unchanged_files(shoot):
    client = TestClient(create_app(shoot), base_url="http://127.0.0.1")
    shown = {r["path"]: r for r in client.get("/api/images").json()["images"]}
    scan(shoot, workers=1, max_side=24)  # every pixel hash changes, no file does
    now = client.get(f"/api/images/{shown['IMG_1.png']['id']}").json()
    assert now["pixel_hash"] != shown["IMG_1.png"]["pixel_hash"]  # the premise
    assert now["file_identity"] == shown["IMG_1.png"]["file_identity"]
    answer = _post(client, shown["IMG_1.png"], decision="pick")
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] == 1
    with Marks(shoot, readonly=True) as marks:
        assert marks.get(b"IMG_1.png").decision == "pick"


def test_another_photo_at_the_path_is_still_refused(shoot):
    client = TestClient(create_app(shoot), base_url="http://127.0.0.1")
    shown = {r["path"]: r for r in client.get("/api/images").json()["images"]}
    shutil.copy(shoot / "IMG_2.png", shoot / "IMG_1.png")  # other pixels, other file
    scan(shoot, workers=1)
    stale = _post(client, shown["IMG_1.png"], decision="reject")
    assert stale.status_code == 409 and "holds another picture" in stale.json()["detail"]
    # an identity the catalog does not know (null) proves nothing either
    shown["IMG_1.png"]["file_identity"] = None
    assert _post(client, shown["IMG_1.png"], decision="reject").status_code == 409
