"""``explain_image(target="cat")`` takes a class name, as ``boda explain --target cat`` does."""

from __future__ import annotations

import numpy as np
import pytest

from boda.errors import InvalidParameterError
from boda.explain import explain_image
from boda.nn import load_model


def test_a_class_name_is_the_class_of_its_index():
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    by_name = explain_image(image, methods=["gradcam"], target="Cat")
    by_index = explain_image(image, methods=["gradcam"], target=3)
    assert (by_name.target, by_name.target_name) == (3, "cat")
    np.testing.assert_array_equal(by_name.maps["gradcam"], by_index.maps["gradcam"])


def test_an_unknown_class_name_lists_the_classes():
    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(InvalidParameterError, match="target 'lion' is not a class.*airplane"):
        explain_image(image, methods=["gradcam"], target="lion")


def test_the_cli_and_the_library_read_a_target_alike():
    lm = load_model("resnet20-cifar10")
    assert lm.class_index(" 7 ") == lm.class_index("HORSE") == 7
    with pytest.raises(InvalidParameterError, match="--target 10 is out of range: .* 0 to 9"):
        lm.class_index("10", "--target")
