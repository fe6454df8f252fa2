"""The three example scripts run and say what they should; train_lm.py matches the C++ train_lm."""
import os
import subprocess

import numpy as np
import pytest

import xgrad
from conftest import run_example


def test_embeddings_prints_the_1_5_64_result():
    out = run_example("embeddings.py")
    assert "tensor([[1, 0, 2, 2, 3]])" in out
    assert "(1, 5, 64)" in out


def test_gpt_trains_and_samples():
    out = run_example("gpt.py", "--iters", "30", "--eval-interval", "15", "--max-new-tokens", "20")
    losses = [float(line.split("val loss ")[1].split(",")[0]) for line in out.splitlines() if "val loss" in line]
    assert len(losses) == 3 and losses[-1] < losses[0] - 0.3, out
    assert "sample: '" in out and "num decayed parameter tensors" in out


def test_gpt_runs_on_the_same_seed_the_same_way():
    args = ("--iters", "6", "--eval-interval", "3", "--eval-iters", "1", "--max-new-tokens", "8")
    def losses(out):
        return [line.rsplit(",", 1)[0] for line in out.splitlines() if line.startswith("step")]
    first = run_example("gpt.py", *args)
    assert losses(first) == losses(run_example("gpt.py", *args)) and len(losses(first)) == 3


def test_train_lm_matches_the_cpp_example_weights(tmp_path):
    """The Python-defined TinyLM trained 20 steps with AdamW from Python ends with the weights the C++
    train_lm writes to its checkpoint, to 1e-6: same corpus, batches, initial weights and update."""
    program = os.environ.get("XGRAD_TRAIN_LM")
    if not program or not os.path.exists(program):
        pytest.skip("XGRAD_TRAIN_LM (the C++ train_lm) not given")
    if not os.path.exists("/usr/share/dict/american-english"):
        pytest.skip("no default corpus")
    subprocess.run([program, "--steps", "20", "--eval-interval", "10", "--out", str(tmp_path / "cpp")], check=True,
                   capture_output=True, timeout=60)
    out = run_example("train_lm.py", "--steps", "20", "--eval-interval", "10", "--save", str(tmp_path / "py.safetensors"))
    assert "structure score:" in out and "validation loss before training: 4.2380" in out
    cpp = xgrad.load(tmp_path / "cpp" / "checkpoint.safetensors")
    py = xgrad.load(tmp_path / "py.safetensors")
    assert set(py) == {"tok_emb.weight", "pos_emb.weight", "lm_head.weight", "lm_head.bias"}
    for name, t in py.items():
        np.testing.assert_allclose(t.numpy(), cpp[name].numpy(), atol=1e-6, rtol=0, err_msg=name)
    assert np.abs(py["tok_emb.weight"].numpy()).max() > 0.0


def test_gpt_py_is_pytorch_code_but_for_its_imports(tmp_path):
    """With its three import lines swapped for torch's, gpt.py runs on PyTorch (where installed)."""
    pytest.importorskip("torch")
    import sys
    source = open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               "examples", "python", "gpt.py")).read()
    swapped = source.replace("import xgrad as torch", "import torch").replace("import xgrad.nn as nn", "import torch.nn as nn") \
                    .replace("from xgrad.nn import functional as F", "from torch.nn import functional as F")
    assert "xgrad" not in swapped.split('"""', 2)[2]
    script = tmp_path / "gpt_torch.py"
    script.write_text(swapped)
    result = subprocess.run([sys.executable, str(script), "--iters", "4", "--eval-interval", "2", "--eval-iters", "1",
                             "--max-new-tokens", "4"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "step 4:" in result.stdout and "sample:" in result.stdout
