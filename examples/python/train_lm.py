"""The seed's model (token + position embeddings -> next-token head) trained from Python, as
examples/train_lm trains it in C++: the same corpus, split, batches, initial weights and AdamW, so that
the same flags give the same weights (tests/python/test_train_lm.py checks it to 1e-6). It prints the
same before/after story: nearest neighbours, the structure score, position similarity, the loss.

    PYTHONPATH=build/python python3 examples/python/train_lm.py            # 300 steps, a few seconds
    PYTHONPATH=build/python python3 examples/python/train_lm.py --steps 5000 --eval-interval 500
"""
import argparse
import math
import time

import numpy as np

import xgrad as torch
import xgrad.nn as nn
import xgrad.nn.functional as F
from xgrad import text


class TinyLM(nn.Module):
    """x (B, T) -> tok_emb(x) + pos_emb(arange(T)) (B, T, C) -> [+ fc2(gelu(fc1(h)))] -> lm_head (B, T, V)."""

    def __init__(self, vocab_size, n_embd, block_size, hidden, init_std):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd, position_table=True)
        if hidden > 0:
            self.fc1 = nn.Linear(n_embd, hidden)
            self.fc2 = nn.Linear(hidden, n_embd)
        else:
            self.fc1 = self.fc2 = None
        self.lm_head = nn.Linear(n_embd, vocab_size)
        nn.init.normal_(self.tok_emb.weight, 0.0, init_std)   # GPT-2's N(0, 0.02^2), not N(0, 1)
        nn.init.normal_(self.pos_emb.weight, 0.0, init_std)

    def forward(self, x):
        T = x.shape[1]
        h = self.tok_emb(x) + self.pos_emb(torch.arange(T))                 # (B, T, C)
        if self.fc1 is not None:
            h = h + self.fc2(F.gelu(self.fc1(h), approximate="tanh"))      # residual MLP
        return self.lm_head(h)


# ---- what the embeddings learned (examples/train_lm/analysis.cpp, in numpy) ------------------------
def cosine_matrix(rows):
    rows = rows.astype(np.float64)
    norm = np.sqrt((rows * rows).sum(1)) + 1e-12
    return (rows @ rows.T) / np.outer(norm, norm)


def char_class(c):
    if c in "aeiou":
        return "vowel"
    if "a" <= c <= "z":
        return "consonant"
    if "A" <= c <= "Z":
        return "capital"
    return "other"


def nearest(cos, i, k):
    order = [j for j in np.argsort(-cos[i], kind="stable") if j != i]
    return order[:k]


def structure_score(cos, vocab):
    score = chance = counted = 0
    for i, c in enumerate(vocab):
        cls = char_class(c)
        if cls == "other":
            continue
        same = sum(1 for j, d in enumerate(vocab) if j != i and char_class(d) == cls)
        chance += same / (len(vocab) - 1)
        score += char_class(vocab[nearest(cos, i, 1)[0]]) == cls
        counted += 1
    return score / max(counted, 1), chance / max(counted, 1)


def similarity_by_distance(cos, distances, limit):
    n = min(limit, cos.shape[0])
    return [float(np.mean([cos[i, i + d] for i in range(n - d)])) if n > d else 0.0 for d in distances]


def printable(c):
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", " ": "␠"}.get(c, c)


def look_at(model, vocab, when):
    tok = model.tok_emb.weight.detach().numpy()
    pos = model.pos_emb.weight.detach().numpy()
    cos = cosine_matrix(tok)
    pos_cos = cosine_matrix(pos - pos.mean(0))
    score, chance = structure_score(cos, vocab)
    print(f"\nembeddings {when} training\n  nearest neighbours by cosine:")
    for c in "aeiousntrAE'":
        if c in vocab:
            i = vocab.index(c)
            near = "".join(f"  {printable(vocab[j]):<2} {cos[i, j]:.2f}" for j in nearest(cos, i, 4))
            print(f"    {printable(c):<2} ->{near}")
    print(f"  structure: {100 * score:.0f}% of vowels, consonants and capitals have a nearest neighbour of their "
          f"own class (chance {100 * chance:.0f}%)")
    distances = [1, 2, 4, 8, 16, 32]
    by_d = similarity_by_distance(pos_cos, distances, pos_cos.shape[0])
    early = similarity_by_distance(pos_cos, distances[:4], 16)
    print("  position similarity by distance (mean cosine of centred position vectors d apart):\n    all positions:" +
          "".join(f"  d={d}: {v:+.2f}" for d, v in zip(distances, by_d)))
    print("    positions 0-15:" + "".join(f"  d={d}: {v:+.2f}" for d, v in zip(distances, early)))
    return score, chance


def main():
    ap = argparse.ArgumentParser(description="train the seed's model from Python, as examples/train_lm does")
    ap.add_argument("--corpus", default="/usr/share/dict/american-english")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--block-size", type=int, default=64)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--eval-interval", type=int, default=150)
    ap.add_argument("--eval-batches", type=int, default=8)
    ap.add_argument("--init-std", type=float, default=0.02)
    ap.add_argument("--save", default="", help="write the trained weights here (safetensors)")
    args = ap.parse_args()
    start = time.time()

    torch.manual_seed(args.seed)
    raw = text.normalize_line_ends(text.read_text_file(args.corpus))
    corpus = text.shuffle_lines(raw, args.seed)
    tokenizer = text.CharTokenizer(corpus)
    vocab = tokenizer.vocabulary
    tokens = tokenizer.encode(corpus)
    split = len(tokens) * 9 // 10
    train, val = tokens[:split], tokens[split:]
    counts = np.bincount(np.asarray(train), minlength=len(vocab))
    p = counts[counts > 0] / len(train)
    entropy = float(-(p * np.log(p)).sum())
    newline = tokenizer.encode(b"\n")[0] if "\n" in vocab else -1
    train_starts = text.offsets_after(train, newline, args.block_size) if newline >= 0 else []
    val_starts = text.offsets_after(val, newline, args.block_size) if newline >= 0 else []
    val_rng = text.Generator(args.seed + 1)
    val_batches = [text.sample_batch(val, args.batch, args.block_size, val_rng, val_starts)
                   for _ in range(args.eval_batches)]

    model = TinyLM(len(vocab), args.n_embd, args.block_size, args.hidden, args.init_std)
    decay = [p for n, p in model.named_parameters() if n.endswith(".weight") and n.startswith(("fc", "lm_head"))]
    no_decay = [p for n, p in model.named_parameters() if not (n.endswith(".weight") and n.startswith(("fc", "lm_head")))]
    adam = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr,
                             weight_decay=args.weight_decay)

    @torch.no_grad()
    def evaluate():
        return sum(F.cross_entropy(model(x).view(-1, len(vocab)), y.view(-1)).item() for x, y in val_batches) / len(val_batches)

    print(f"xgrad train_lm.py: {args.corpus}, {len(train)} train / {len(val)} validation characters, "
          f"vocabulary of {len(vocab)}")
    print(model)
    print(f"unigram entropy of the training characters: {entropy:.3f} nats (a model that knows only their frequencies)")
    before = look_at(model, vocab, "before")
    print(f"validation loss before training: {evaluate():.4f}")

    print(f"\ntraining: {args.steps} steps of (B, T) = ({args.batch}, {args.block_size}), Adam lr {args.lr:g}, "
          f"{torch.get_num_threads()} threads")
    recent, last_val = [], math.nan
    for step in range(args.steps):
        rng = text.Generator((args.seed * 0x9E3779B97F4A7C15 + step) % 2 ** 64)   # train_lm's batch of this step
        x, y = text.sample_batch(train, args.batch, args.block_size, rng, train_starts)
        adam.zero_grad()
        loss = F.cross_entropy(model(x).view(-1, len(vocab)), y.view(-1))
        recent.append(loss.item())
        loss.backward()
        adam.step()
        if (step + 1) % args.eval_interval == 0 or step + 1 == args.steps:
            last_val = evaluate()
            print(f"step {step + 1:6d}  train {sum(recent) / len(recent):.4f}  val {last_val:.4f}  "
                  f"(unigram entropy {entropy:.3f})")
            recent = []

    after = look_at(model, vocab, "after")
    print(f"\nstructure score: {100 * before[0]:.0f}% before, {100 * after[0]:.0f}% after (chance {100 * after[1]:.0f}%)")
    print(f"final validation loss {last_val:.4f} nats vs unigram entropy {entropy:.3f}")
    if args.save:
        torch.save(model.state_dict(), args.save)
        print(f"wrote {args.save}")
    print(f"({time.time() - start:.1f} s in all)")


if __name__ == "__main__":
    main()
