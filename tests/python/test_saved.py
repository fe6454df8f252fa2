"""What each op's backward saves, as torch 1.13 answers (tests/reference/saved_reference.json, from
make_saved_reference.py): every input, and the output, written in place between the forward and the
backward; xgrad's backward must raise torch's "modified by an inplace operation" error exactly where
torch's does, and nowhere else."""
import json
import os
import sys

import pytest

import xgrad
import xgrad.nn.functional as F

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference")
sys.path.insert(0, REFERENCE)
import saved_cases  # noqa: E402

with open(os.path.join(REFERENCE, "saved_reference.json")) as f:
    EXPECTED = json.load(f)["ops"]


@pytest.mark.parametrize("name", sorted(saved_cases.OPS))
def test_backward_refuses_exactly_the_values_torch_saves(name):
    assert saved_cases.run(name, xgrad, F) == EXPECTED[name]
