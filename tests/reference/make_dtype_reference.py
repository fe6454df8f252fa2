#!/usr/bin/python3
"""The dtype tables' reference, from PyTorch (Debian's python3-torch), committed so that the test needs
no PyTorch:
  - promote_types for every ordered pair of the ten dtypes (100 pairs);
  - result_type for every pair of dtypes in each meeting of ranks: a tensor with dimensions, a 0-D
    tensor, a Python number (bool, int, float) on either side (520 cases);
  - every dtype converted to every other (x.to(dtype)), over values at and past each type's edges.

Run once from this folder: /usr/bin/python3 make_dtype_reference.py
"""
import json
import math

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8,
          "bool": torch.bool}
NAME = {v: k for k, v in DTYPES.items()}

promote = {f"{a} {b}": NAME[torch.promote_types(DTYPES[a], DTYPES[b])] for a in DTYPES for b in DTYPES}

# result_type(x, y) where each side is a tensor of one dimension, a 0-D tensor, or a number of a kind
NUMBERS = {"bool": True, "int": 3, "float": 2.5}
def operands():
    for d in DTYPES:
        yield f"dimensioned {d}", torch.zeros(2, dtype=DTYPES[d])
        yield f"zero_dim {d}", torch.zeros((), dtype=DTYPES[d])
    for kind, number in NUMBERS.items():
        yield f"number {kind}", number

result = {}
for a_name, a in operands():
    for b_name, b in operands():
        if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
            continue
        result[f"{a_name}, {b_name}"] = NAME[torch.result_type(a, b)]

# conversions: the values of each source dtype (at and past the edges of every target), converted
SOURCES = {
    "float32": [0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -1.5, 255.9, 300.7, -300.7, 40000.0, -40000.0, 65504.0, 65520.0, 1e-8,
                3e9, -3e9, 1e10, 1e20, -1e20, math.inf, -math.inf, math.nan, 2.0 ** 31, 2.0 ** 63, 0.1],
    "float64": [0.0, 0.5, -1.5, 2.5, 300.7, -300.7, 65519.99, 3.4e38, 3.5e38, 1e-40, 1e-310, 2.0 ** 31 - 0.5,
                -2.0 ** 31 - 0.5, 2.0 ** 63, -2.0 ** 63, math.inf, math.nan, 0.1],
    "int64": [0, 1, -1, 127, 128, 255, 256, -129, 32767, 32768, 70000, 2 ** 31, 2 ** 31 + 5, -2 ** 31 - 1, 2 ** 24 + 1,
              2 ** 53 + 1, 2 ** 62 + 1, -2 ** 63, 2 ** 63 - 1],
    "int32": [0, -1, 300, -300, 2 ** 31 - 1, -2 ** 31, 16777217],
    "uint8": [0, 1, 127, 128, 255],
    "int8": [0, -1, 127, -128],
    "bool": [False, True],
}
conversions = {}
for src, values in SOURCES.items():
    x = torch.tensor(values, dtype=DTYPES[src])
    for dst, dtype in DTYPES.items():
        y = x.to(dtype)
        out = [v if not (isinstance(v, float) and not math.isfinite(v)) else str(v) for v in y.tolist()]
        conversions[f"{src} {dst}"] = {"from": [v if not (isinstance(v, float) and not math.isfinite(v)) else str(v)
                                                for v in x.tolist()], "to": out}

reference = {"generator": {"torch": torch.__version__, "command": "/usr/bin/python3 make_dtype_reference.py"},
             "promote_types": promote, "result_type": result, "conversions": conversions}
with open("dtype_reference.json", "w") as f:
    json.dump(reference, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"{len(promote)} promote_types pairs, {len(result)} result_type cases, {len(conversions)} conversions "
      f"written to dtype_reference.json (torch {torch.__version__})")
