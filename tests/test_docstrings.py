"""Every docstring example in the package runs and prints what it says.

STYLE asks each public function for a short example; this keeps them true.
Each module's examples run in their own namespace (plus ``np``), from an
empty working folder, so an example that writes a file cannot litter the
checkout.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re

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


def _public_callables():
    """(label, docstring, signature) of every class and function in a package's ``__all__``."""
    seen = set()
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr, None)
            if obj is None or id(obj) in seen or not callable(obj) or not obj.__doc__:
                continue
            seen.add(id(obj))
            try:
                signature = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
            except (TypeError, ValueError):  # builtins without a signature
                continue
            yield f"{name}.{attr}", obj.__doc__, signature


_PARAMETER_LINE = re.compile(r"^\*{0,2}\w+(\s*,\s*\*{0,2}\w+)*\s*(:.*)?$")


def _documented_parameters(docstring: str) -> list[str] | None:
    """Names in a numpy-style Parameters section (None without one)."""
    lines = inspect.cleandoc(docstring).splitlines()
    starts = [
        k for k in range(len(lines) - 1)
        if lines[k].strip() == "Parameters" and set(lines[k + 1].strip()) == {"-"}
    ]
    if not starts:
        return None
    names: list[str] = []
    for k in range(starts[0] + 2, len(lines)):
        line = lines[k]
        if k + 1 < len(lines) and lines[k + 1].strip() and set(lines[k + 1].strip()) == {"-"}:
            break  # the next section's title
        if not line or line.startswith(" "):
            continue  # a description
        names += [n.strip().lstrip("*") for n in line.split(":")[0].split(",")]
        if not _PARAMETER_LINE.match(line):
            names.append(f"<not a parameter line: {line!r}>")
    return names


def test_documented_parameters_are_the_real_ones():
    # A Parameters section that names what the signature does not take (or
    # leaves out what it does) misleads: each public docstring that has one
    # must list exactly the real parameters (in any grouping or order).
    checked, wrong = 0, []
    for label, docstring, signature in _public_callables():
        documented = _documented_parameters(docstring)
        if documented is None:
            continue
        checked += 1
        real = {p for p in signature.parameters if p not in ("self", "cls")}
        plain = {
            p.name for p in signature.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in ("self", "cls")
        }
        if not plain <= set(documented) <= real:
            wrong.append(
                f"{label}: missing {sorted(plain - set(documented))}, "
                f"not parameters {sorted(set(documented) - real)}"
            )
    assert checked > 150
    assert not wrong, "\n".join(wrong)
