"""boda.io readers and writers with options a user gets wrong: boda errors naming the option.

Each case once gave a raw TypeError/ValueError, or did something else than asked
without a word: ``max_side=True`` read a 1x1 image, ``max_pixels=-1`` reported a
"limit of -1", JPEG ``quality=101`` was clamped by libjpeg, and a NaN pixel was
written as an arbitrary level (with only a numpy RuntimeWarning).
"""

from __future__ import annotations

import numpy as np
import pytest

from boda.errors import ImageReadError, InvalidImageError, InvalidParameterError
from boda.io import encode_jpeg, image_size, open_image, read_image, write_image


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "a.png"
    write_image(path, np.full((12, 20, 3), 0.5, np.float32))
    return path


@pytest.mark.parametrize("max_side", [0, -3, True, 10.5, "10", float("nan")])
def test_max_side_must_be_a_positive_whole_number(png, max_side):
    with pytest.raises(InvalidParameterError, match="max_side"):
        read_image(png, max_side=max_side)


def test_max_side_takes_numpy_integers(png):
    assert read_image(png, max_side=np.int64(10)).shape == read_image(png, max_side=10).shape


@pytest.mark.parametrize("max_pixels", [0, -1, "1e6", True, float("nan"), float("inf")])
def test_max_pixels_must_be_a_positive_number(png, max_pixels):
    with pytest.raises(InvalidParameterError, match="max_pixels.*None for no limit"):
        read_image(png, max_pixels=max_pixels)


def test_max_pixels_takes_floats_and_numpy_integers(png):
    assert read_image(png, max_pixels=1e9).shape == (12, 20, 3)
    assert open_image(png, max_pixels=np.int64(240)).pixels.shape == (12, 20, 3)


@pytest.mark.parametrize("path", [5, None, np.zeros((4, 4))])
def test_image_size_needs_a_path(path):
    with pytest.raises(InvalidParameterError, match="image_size needs a file path"):
        image_size(path)


@pytest.mark.parametrize("quality", [101, -5, 50.5, "90", None, True, float("nan")])
def test_jpeg_quality_must_be_a_whole_number_from_0_to_100(tmp_path, quality):
    img = np.full((8, 8, 3), 0.5, np.float32)
    with pytest.raises(InvalidParameterError, match="quality"):
        write_image(tmp_path / "q.jpg", img, quality=quality)
    with pytest.raises(InvalidParameterError, match="quality"):
        encode_jpeg(img, quality=quality)
    assert not (tmp_path / "q.jpg").exists()


def test_jpeg_quality_takes_numpy_integers(tmp_path):
    img = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    assert encode_jpeg(img, quality=np.int64(70)) == encode_jpeg(img, quality=70)
    write_image(tmp_path / "q.jpg", img, quality=np.uint8(0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(("name", "options"), [
    ("a.png", {}), ("a.png", {"bit_depth": 16}), ("a.tif", {"bit_depth": 16}), ("a.jpg", {}),
])
def test_writers_refuse_non_finite_pixels(tmp_path, bad, name, options):
    img = np.full((8, 8, 3), 0.5, np.float32)
    img[2, 3, 1] = bad
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        write_image(tmp_path / name, img, **options)
    assert not (tmp_path / name).exists()
    with pytest.raises(InvalidImageError, match="NaN or infinite"):
        encode_jpeg(img)


def test_resample_must_be_a_filter_name(png):
    # A list raised "TypeError: unhashable type" from the look-up.
    with pytest.raises(InvalidParameterError, match="resample"):
        read_image(png, max_side=5, resample=["box"])


def test_path_errors_are_not_blamed_on_the_disk(tmp_path, png):
    # ENOTDIR, ELOOP and ENAMETOOLONG were reported as "a failing disk, or a share
    # or card that went away?", which sends the user to check the hardware.
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    cases = {
        png / "x.png": "a folder in the path is a file",
        loop: "loop of symbolic links",
        tmp_path / ("a" * 300 + ".png"): "longer than the system allows",
    }
    for path, reason in cases.items():
        with pytest.raises(ImageReadError, match=reason) as caught:
            read_image(path)
        assert "failing disk" not in caught.value.reason
