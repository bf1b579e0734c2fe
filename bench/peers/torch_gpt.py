#!/usr/bin/env python3
"""PyTorch peer for soap-train's throughput benchmark.

The same decoder architecture as soap-train (pre-norm LayerNorm without bias, causal attention
with RoPE and QK-LayerNorm, GeLU MLP, untied head), trained with torch.optim.AdamW on random
tokens, to measure tokens/s on this CPU. Needs Debian's python3-torch (and libopenblas0-pthread
for a fast BLAS): run it with /usr/bin/python3.

  /usr/bin/python3 bench/peers/torch_gpt.py --d-model 256 --n-layers 4 --n-heads 4 --seq-len 256 --batch 16 --vocab 256
Prints one JSON line: {"tokens_per_s": ..., "step_ms_median": ..., "step_ms_p10"/"p90"/"min"/"max",
"first_step_ms", "peak_rss_mib", "params": ...} (npm run bench reads it: bench/speed/peer.ts).

Provenance: copied unchanged (apart from this docstring) from the team's peer script
torch_gpt.py (sha256 9ee679c968399ddd79d2809a4579ceee6e5c63ca7935c43776024baf35816188 before
these edits) on 2026-12-02; written for torch 1.13 (Debian bookworm's python3-torch).
test/fixtures/gen/model_parity.py imports GPT from this file to make
test/fixtures/model/parity_small.json: a change to the model here needs that fixture remade.
"""
import argparse, json, math, resource, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


def rope(x, base=10000.0):  # x: (B, H, T, D)
    T, D = x.shape[-2], x.shape[-1]
    inv = 1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)  # (T, D/2)
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class LayerNorm(nn.Module):
    """LayerNorm with a weight and no bias (torch 1.13's nn.LayerNorm always has a bias)."""
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.weight, None, 1e-5)


def causal_attention(q, k, v):  # (B, H, T, D) each
    T = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    return att.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v


class Block(nn.Module):
    def __init__(self, d, h, mlp):
        super().__init__()
        self.h = h
        self.ln1 = LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.q_ln = LayerNorm(d // h)
        self.k_ln = LayerNorm(d // h)
        self.proj = nn.Linear(d, d, bias=False)
        self.ln2 = LayerNorm(d)
        self.up = nn.Linear(d, mlp, bias=False)
        self.down = nn.Linear(mlp, d, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        q, k = rope(self.q_ln(q)), rope(self.k_ln(k))
        y = causal_attention(q, k, v)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab, d, layers, h, mlp):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, h, mlp) for _ in range(layers))
        self.ln_f = LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx, targets):
        x = self.emb(idx)
        for b in self.blocks:
            x = b(x)
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


def main():
    p = argparse.ArgumentParser()
    for name, default in [("d-model", 256), ("n-layers", 4), ("n-heads", 4), ("seq-len", 256),
                          ("batch", 16), ("vocab", 256), ("steps", 20), ("warmup", 3), ("threads", 0)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--mlp", type=int, default=0, help="MLP width (default 4 x d_model)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT(a.vocab, a.d_model, a.n_layers, a.n_heads, a.mlp or 4 * a.d_model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.95, 0.95), weight_decay=0.1)
    times = []
    first_step_ms = None
    for step in range(a.warmup + a.steps):
        idx = torch.randint(0, a.vocab, (a.batch, a.seq_len + 1))
        t0 = time.perf_counter()
        loss = model(idx[:, :-1], idx[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step == 0:
            first_step_ms = (time.perf_counter() - t0) * 1e3
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    # Spread and memory for the benchmark table (quantiles: linear interpolation, as numpy's).
    ms = sorted(t * 1e3 for t in times)
    q = lambda p: ms[0] if len(ms) == 1 else statistics.quantiles(ms, n=10, method="inclusive")[p // 10 - 1]
    print(json.dumps({"tokens_per_s": a.batch * a.seq_len / med, "step_ms_median": med * 1e3,
                      "step_ms_p10": q(10), "step_ms_p90": q(90), "step_ms_min": ms[0], "step_ms_max": ms[-1],
                      "first_step_ms": first_step_ms,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "params": sum(t.numel() for t in model.parameters()),
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "final_loss": float(loss)}))


if __name__ == "__main__":
    main()
