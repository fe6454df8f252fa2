"""W7 under PyTorch DDP with the gloo backend: the reference for bench/ddp_bench.cpp (BENCHMARKS.md).

    /usr/bin/python3 bench/ddp_torch.py --ranks 2      # Debian's python3-torch 1.13; 1 thread per rank
    /usr/bin/python3 bench/ddp_torch.py --ranks 1      # one process, no DDP

The model is bench/compare.cpp's nanoGPT in libtorch (V 96, 4 layers, 4 heads, C 128, T 64), with the
composed attention (matmul, masked_fill, softmax, matmul: torch 1.13 has no fused CPU attention), the
LM head tied to wte, AdamW (lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on the 2-D weights), clip 1.0.
Each rank trains on its own batch of 12, as ddp_bench. Prints the median step time of --steps after 5
warm-up steps, and the samples per second. Used only for this benchmark: never a dependency of xgrad.
"""
import argparse
import math
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

V, L, H, C, T, B = 96, 4, 4, 128, 64, 12


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.attn_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.register_buffer("mask", torch.ones(T, T).tril(), persistent=False)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, 2)
        heads = lambda z: z.view(b, t, H, c // H).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // H))
        att = F.softmax(att.masked_fill(self.mask[:t, :t] == 0, float("-inf")), dim=-1)
        x = x + self.attn_proj((att @ v).transpose(1, 2).contiguous().view(b, t, c))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()   # the tied head


def worker(rank, ranks, steps, out):
    torch.set_num_threads(1)
    if ranks > 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        dist.init_process_group("gloo", rank=rank, world_size=ranks)
    torch.manual_seed(13)
    model = Gpt()
    g = torch.Generator().manual_seed(14 + 100 * rank)
    x = torch.randint(0, V, (B, T), generator=g)
    y = torch.randint(0, V, (B, T), generator=g)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    net = nn.parallel.DistributedDataParallel(model) if ranks > 1 else model   # bucket_cap_mb = 25
    times = []
    for step in range(steps + 5):
        if ranks > 1:
            dist.barrier()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x).view(-1, V), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= 5:
            times.append(time.perf_counter() - start)
    if rank == 0:
        m = statistics.median(times)
        out.put(f"torch {torch.__version__} W7 {ranks} rank{'s' if ranks > 1 else ''} x 1 thread"
                f"{' (DDP, gloo)' if ranks > 1 else ''}: step {1e3 * m:.2f} ms [{1e3 * min(times):.2f}-{1e3 * max(times):.2f}], "
                f"{ranks * B / m:.0f} samples/s")
    if ranks > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(worker, args=(args.ranks, args.steps, queue), nprocs=args.ranks, join=True)
    print(queue.get())
