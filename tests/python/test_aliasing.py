"""The aliasing table: each case of tests/reference/aliasing_cases.py run on xgrad, against what torch 1.13
did with the same code (aliasing_reference.json, from make_aliasing_reference.py): every tensor's values,
shape, strides, offset, contiguity, view-ness, autograd state and version; which tensors share storage;
which calls raise, and of what kind; whether backward raises, else the gradients."""
import json
import math
import os
import sys

import numpy as np
import pytest

import xgrad

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference")
sys.path.insert(0, REFERENCE)
import aliasing_cases  # noqa: E402

with open(os.path.join(REFERENCE, "aliasing_reference.json")) as f:
    EXPECTED = json.load(f)["cases"]


def close(got, want):
    """Nested lists of floats alike to float32 precision (inf and nan as themselves)."""
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(close(g, w) for g, w in zip(got, want))
    if isinstance(want, float) and (math.isnan(want) or math.isinf(want)):
        return isinstance(got, float) and (math.isnan(got) if math.isnan(want) else got == want)
    return abs(got - want) <= 1e-5 + 1e-5 * abs(want)


def test_the_table_covers_what_it_should():
    assert len(EXPECTED) >= 60
    assert set(EXPECTED) == set(aliasing_cases.CASES)


@pytest.mark.parametrize("name", sorted(aliasing_cases.CASES))
def test_xgrad_aliases_as_torch(name):
    got, want = aliasing_cases.run(name, xgrad, np), EXPECTED[name]
    problems = []
    for t, fields in want["tensors"].items():
        for field, value in fields.items():
            mine = got["tensors"][t][field]
            if not (close(mine, value) if field == "values" else mine == value):
                problems.append(f"{t}.{field}: xgrad {mine!r}, torch {value!r}")
    for a, values in want["arrays"].items():
        if not close(got["arrays"][a], values):
            problems.append(f"array {a}: xgrad {got['arrays'][a]!r}, torch {values!r}")
    if got["shares"] != want["shares"]:
        problems.append(f"storage shared by: xgrad {got['shares']}, torch {want['shares']}")
    if got.get("raises") != want.get("raises"):
        problems.append(f"raises: xgrad {got.get('raises')}, torch {want.get('raises')}")
    if "backward" in want:
        mine, theirs = got["backward"], want["backward"]
        if mine["error"] != theirs["error"]:
            problems.append(f"backward raises: xgrad {mine['error']}, torch {theirs['error']}")
        for t, g in (theirs.get("grads") or {}).items():
            m = (mine.get("grads") or {}).get(t)
            if (m is None) != (g is None) or (g is not None and not close(m, g)):
                problems.append(f"{t}.grad: xgrad {m!r}, torch {g!r}")
    assert not problems, "\n".join(problems)
