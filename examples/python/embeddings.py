# The seed's snippet: text -> integers -> token embeddings + position embeddings. Written as the blog
# writes it for PyTorch; only the two import lines are xgrad's.
import xgrad as torch
import xgrad.nn as nn

text = "hello"
chars = sorted(set(text))                   # the vocabulary: ['e', 'h', 'l', 'o']
stoi = {ch: i for i, ch in enumerate(chars)}
vocab_size = len(chars)

n_embd = 64                                 # the size of each embedding vector
block_size = 64                             # the longest sequence the model sees

tok_emb = nn.Embedding(vocab_size, n_embd)  # one learned vector per character
pos_emb = nn.Embedding(block_size, n_embd)  # one learned vector per position

x = torch.tensor([[stoi[c] for c in text]], dtype=torch.long)   # (B, T) = (1, 5)
B, T = x.shape
tok = tok_emb(x)                            # (1, 5, 64): what each character is
pos = pos_emb(torch.arange(T))              # (5, 64): where each character is
h = tok + pos                               # (1, 5, 64): broadcast over the batch

print(x)
print(h.shape)
print(h[0, :, :4])
