#!/usr/bin/python3
"""The oracle for xgrad's type promotion in operations, from PyTorch (Debian's python3-torch), committed so
that the test needs no PyTorch. For the ten dtypes it records what torch does, a result (dtype and values)
or an error (the exception's kind and the first line of its message), in:
  - 15 binary ops, tensor with tensor, for every ordered pair of dtypes (1500 cases);
  - 10 binary ops with a Python number (int 2, float 2.5, bool True) on the right, and 5 of them (add, sub,
    mul, div, pow) with the number on the left;
  - unary ops and reductions (neg, abs, bitwise_not, logical_not, sum, sum over dim 0, mean, argmax, max, exp,
    clamp between ints and above a float);
  - integer floor division and remainder by a tensor holding a zero (int64, int32, uint8).
Operands are 1-D of 4 elements, converted with .to(dtype); the values recorded are torch's, after conversion.
Non-finite floats are written as the strings "nan", "inf", "-inf". One case per line.

Run once from this folder: /usr/bin/python3 make_dtype_ops_reference.py
"""
import json
import math

import torch

DTYPES = {"bool": torch.bool, "uint8": torch.uint8, "int8": torch.int8, "int16": torch.int16,
          "int32": torch.int32, "int64": torch.int64, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "float32": torch.float32, "float64": torch.float64}
NAME = {v: k for k, v in DTYPES.items()}

A = [-3, -1, 2, 5]
B = [2, -2, 3, 1]
A_BOOL = [True, False, True, True]
B_BOOL = [True, True, False, True]
ZERO = [1, 0, 1, 1]

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: torch.div(a, b),
    "floor_divide": lambda a, b: a // b,
    "remainder": lambda a, b: a % b,
    "pow": lambda a, b: torch.pow(a, b),
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "ge": lambda a, b: a >= b,
    "maximum": lambda a, b: torch.maximum(a, b),
    "bitwise_and": lambda a, b: a & b,
    "bitwise_or": lambda a, b: a | b,
    "bitwise_xor": lambda a, b: a ^ b,
    "logical_and": lambda a, b: torch.logical_and(a, b),
}
SCALAR_OPS = ["add", "sub", "mul", "div", "floor_divide", "remainder", "pow", "eq", "lt", "bitwise_and"]
REFLECTED_OPS = ["add", "sub", "mul", "div", "pow"]
SCALARS = {"int": 2, "float": 2.5, "bool": True}

UNARY = {
    "neg": lambda a: -a,
    "abs": lambda a: torch.abs(a),
    "bitwise_not": lambda a: ~a,
    "logical_not": lambda a: torch.logical_not(a),
    "sum": lambda a: torch.sum(a),
    "mean": lambda a: torch.mean(a),
    "argmax": lambda a: torch.argmax(a),
    "max": lambda a: torch.max(a),
    "exp": lambda a: torch.exp(a),
    "clamp_int": lambda a: torch.clamp(a, -1, 3),
    "clamp_min_float": lambda a: torch.clamp(a, min=0.5),
}


def tensor(values, dtype):
    return torch.tensor(values).to(DTYPES[dtype])


def number(v):
    return str(v) if isinstance(v, float) and not math.isfinite(v) else v


def describe(x):
    if isinstance(x, torch.Tensor):
        values = x.tolist()
        values = [number(v) for v in values] if isinstance(values, list) else number(values)
        return {"dtype": NAME[x.dtype], "values": values}
    return {"scalar": type(x).__name__, "value": x}


def case(op, fn, a, b=None, **extra):
    c = {"op": op, "a": describe(a)}
    if b is not None:
        c["b"] = describe(b)
    c.update(extra)
    try:
        c["result"] = describe(fn(a) if b is None else fn(a, b))
    except Exception as e:
        lines = str(e).splitlines()
        c["error"] = {"kind": type(e).__name__, "message": lines[0] if lines else ""}
    return c


def operand_a(d):
    return tensor(A_BOOL if d == "bool" else A, d)


def operand_b(d):
    return tensor(B_BOOL if d == "bool" else B, d)


cases = []
for op, fn in BINARY.items():
    for da in DTYPES:
        for db in DTYPES:
            cases.append(case(op, fn, operand_a(da), operand_b(db)))
for op in SCALAR_OPS:
    for d in DTYPES:
        for s in SCALARS.values():
            cases.append(case(op, BINARY[op], operand_a(d), s))
for op in REFLECTED_OPS:
    for d in DTYPES:
        for s in SCALARS.values():
            cases.append(case(op, BINARY[op], s, operand_a(d)))
for op, fn in UNARY.items():
    for d in DTYPES:
        cases.append(case(op, fn, operand_a(d)))
        if op == "sum":
            cases.append(case("sum", lambda a: torch.sum(a, dim=0), operand_a(d), dim=0))
for op in ["floor_divide", "remainder"]:
    for d in ["int64", "int32", "uint8"]:
        cases.append(case(op, BINARY[op], operand_a(d), tensor(ZERO, d)))

generator = {"torch": torch.__version__, "command": "/usr/bin/python3 make_dtype_ops_reference.py"}
with open("dtype_ops_reference.json", "w") as f:
    f.write('{\n "generator": ' + json.dumps(generator, sort_keys=True) + ',\n')
    f.write(' "dtypes": ' + json.dumps(list(DTYPES)) + ',\n "cases": [\n')
    f.write(",\n".join("  " + json.dumps(c) for c in cases))
    f.write("\n ]\n}\n")
errors = sum("error" in c for c in cases)
print(f"{len(cases)} cases ({len(cases) - errors} results, {errors} errors) written to dtype_ops_reference.json "
      f"(torch {torch.__version__})")
