"""analyze_file trusts open_image's pixels (finite, in [0, 1]) and skips the check pass:
what open_image could hand over unchecked must still be refused or clipped on read."""

import numpy as np
import pytest
from PIL import Image

from boda.io import open_image
from boda.scan import analyze_file, analyze_pixels


def _float_tiff(path, values):
    Image.fromarray(values.astype(np.float32), mode="F").save(path)
    return path


def test_a_float_tiff_holding_nan_is_an_error_record(tmp_path):
    values = np.linspace(0.0, 1.0, 64 * 64).reshape(64, 64)
    values[10, 20] = np.nan
    record = analyze_file(_float_tiff(tmp_path / "nan.tif", values))
    assert record.status == "error"
    assert "NaN or infinite" in record.error


def test_a_float_tiff_beyond_one_is_clipped_before_the_measures(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.random((96, 128)) * 3.0 - 1.0  # -1..2: clipped to [0, 1] on read
    path = _float_tiff(tmp_path / "wide.tif", values)
    record = analyze_file(path)
    assert record.status == "ok", record.error
    pixels = open_image(path, max_side=640, resample="box").pixels
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0
    # The same scores as the checked path on the same pixels (to the last bits, which
    # NumPy's SIMD sums may round differently with the arrays' alignment).
    scores, _ = analyze_pixels(pixels)
    assert record.scores.keys() >= scores.keys()
    for name, value in scores.items():
        assert record.scores[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
