#!/usr/bin/python3
"""The aliasing table's reference: every case of aliasing_cases.py run on PyTorch (Debian's python3-torch),
what it did recorded in aliasing_reference.json, which is committed so that the test needs no PyTorch.

Run once from this folder: /usr/bin/python3 make_aliasing_reference.py
"""
import json

import numpy as np
import torch

import aliasing_cases

reference = {"generator": {"torch": torch.__version__, "command": "/usr/bin/python3 make_aliasing_reference.py"},
             "cases": {name: aliasing_cases.run(name, torch, np) for name in aliasing_cases.CASES}}
with open("aliasing_reference.json", "w") as f:
    json.dump(reference, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"{len(reference['cases'])} cases written to aliasing_reference.json (torch {torch.__version__})")
