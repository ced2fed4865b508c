"""Every docstring example in the package runs and prints what it says.

STYLE asks each public function for a short example; this keeps them true.
Each module's examples run in their own namespace (plus ``np``), from an
empty working folder, so an example that writes a file cannot litter the
checkout.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import boda

MODULES = sorted(m.name for m in pkgutil.walk_packages(boda.__path__, "boda."))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_the_walk_finds_the_package():
    # A broken walk would leave the parametrised test below with nothing to run.
    assert len(MODULES) > 80
    assert {"boda.io", "boda.quality._sharpness", "boda.explain._cam"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=FLAGS, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_most_public_modules_have_examples():
    # Guards the count, so examples cannot quietly disappear from the docs.
    finder = doctest.DocTestFinder()
    examples = 0
    for name in MODULES:
        module = importlib.import_module(name)
        examples += sum(len(t.examples) for t in finder.find(module))
    assert examples >= 350
