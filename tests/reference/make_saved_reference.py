#!/usr/bin/python3
"""Which inputs and outputs each op's backward saves, by torch 1.13 (saved_cases.py says how it is asked),
written to saved_reference.json, which is committed so that the tests need no PyTorch.

Run once from this folder: /usr/bin/python3 make_saved_reference.py
"""
import json

import torch
import torch.nn.functional as F

import saved_cases

reference = {"generator": {"torch": torch.__version__, "command": "/usr/bin/python3 make_saved_reference.py"},
             "ops": {name: saved_cases.run(name, torch, F) for name in saved_cases.OPS}}
with open("saved_reference.json", "w") as f:
    json.dump(reference, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"{len(reference['ops'])} ops written to saved_reference.json (torch {torch.__version__})")
