"""The sBNN schedule in PyTorch (CPU), for `cargo bench --bench sbnn`.

Same architecture (p-512-128-2-128-512-q, ELU, linear bottleneck and output,
Glorot-uniform kernels, zero biases), penalties (group lasso 0.1 on the first
layer's rows until pruning, L2 1e-10 on kernels and all biases but the output's),
Adam (eps 1e-7), batch 32 shuffled every epoch, and schedule as patchbench:
50 pre-training epochs on the k-means labels (clusters of >= 10 cells, first
60% of them), new output layer, 50 epochs with the first two layers frozen (their
output computed once, as patchbench does), 50 epochs all trainable at 5e-5,
prune to the 25 genes with the largest first-layer row norms, 100 epochs at 5e-5
without the lasso. Test R^2 (Eq. 3) is evaluated after every regression epoch.

usage: sbnn_torch.py DIR N_TRAIN N_TEST GENES TARGETS THREADS
DIR holds x_train.f32, y_train.f32, x_test.f32, y_test.f32 (little-endian
row-major float32) and labels.txt (one k-means label per training cell).
"""

import sys
import time

import numpy as np
import torch
from torch import nn


def main():
    folder, n, n_test, p, q, threads = sys.argv[1], *map(int, sys.argv[2:7])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    load = lambda name, rows, cols: torch.from_numpy(
        np.fromfile(f"{folder}/{name}", dtype="<f4").reshape(rows, cols).copy())
    x, y = load("x_train.f32", n, p), load("y_train.f32", n, q)
    xt, yt = load("x_test.f32", n_test, p), load("y_test.f32", n_test, q)
    labels = np.loadtxt(f"{folder}/labels.txt", dtype=np.int64)

    def dense(i, o):
        layer = nn.Linear(i, o)
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
        return layer

    body = [dense(p, 512), dense(512, 128), dense(128, 2), dense(2, 128), dense(128, 512)]
    elu = nn.functional.elu

    def forward(layers, head, inp, start=0):
        h = inp
        for i, layer in enumerate(layers[start:], start):
            h = layer(h)
            if i != 2:  # the bottleneck is linear
                h = elu(h)
        return head(h)

    def penalty(layers, head, lasso):
        total = 0.0
        for layer in layers:
            if layer.weight.requires_grad:
                total = total + 1e-10 * (layer.weight.pow(2).sum() + layer.bias.pow(2).sum())
        total = total + 1e-10 * head.weight.pow(2).sum()
        if lasso and layers[0].weight.requires_grad:
            total = total + 0.1 * layers[0].weight.pow(2).sum(0).add(1e-12).sqrt().sum()
        return total

    def epochs(count, layers, head, inp, target, loss_fn, lr, lasso, start=0, test=None):
        params = [t for l in layers[start:] + [head] for t in l.parameters() if t.requires_grad]
        opt = torch.optim.Adam(params, lr=lr, eps=1e-7)
        r2 = None
        for _ in range(count):
            order = torch.randperm(inp.shape[0])
            for b in range(0, inp.shape[0], 32):
                idx = order[b:b + 32]
                out = forward(layers, head, inp[idx], start)
                loss = loss_fn(out, target[idx]) + penalty(layers, head, lasso)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if test is not None:
                with torch.no_grad():
                    pred = forward(layers, head, test[0], start)
                    r2 = 1 - ((pred - test[1]) ** 2).sum().item() / (test[1] ** 2).sum().item()
        return r2

    times = {}
    start = time.perf_counter()
    # Pre-training.
    counts = np.bincount(labels)
    keep = np.flatnonzero(counts[labels] >= 10)
    classes = np.unique(labels[keep])
    relabel = {c: i for i, c in enumerate(classes)}
    cls = torch.tensor([relabel[l] for l in labels[keep]])
    split = int(len(keep) * 0.6)
    head = dense(512, len(classes))
    epochs(50, body, head, x[keep[:split]], cls[:split], nn.functional.cross_entropy, 1e-4, True)
    times["pre-training"] = time.perf_counter() - start

    # Frozen phase on cached features of the first two layers.
    t = time.perf_counter()
    head = dense(512, q)
    mse = nn.functional.mse_loss
    for layer in body[:2]:
        layer.weight.requires_grad_(False)
        layer.bias.requires_grad_(False)
    with torch.no_grad():
        feats = elu(body[1](elu(body[0](x))))
        feats_t = elu(body[1](elu(body[0](xt))))
    epochs(50, body, head, feats, y, mse, 1e-4, True, start=2, test=(feats_t, yt))
    times["frozen"] = time.perf_counter() - t

    t = time.perf_counter()
    for layer in body[:2]:
        layer.weight.requires_grad_(True)
        layer.bias.requires_grad_(True)
    epochs(50, body, head, x, y, mse, 5e-5, True, test=(xt, yt))
    times["unfrozen"] = time.perf_counter() - t

    t = time.perf_counter()
    norms = body[0].weight.detach().pow(2).sum(0).sqrt()
    genes = torch.argsort(norms, descending=True)[:25]
    first = nn.Linear(25, 512)
    with torch.no_grad():
        first.weight.copy_(body[0].weight[:, genes])
        first.bias.copy_(body[0].bias)
    body[0] = first
    r2 = epochs(100, body, head, x[:, genes], y, mse, 5e-5, False, test=(xt[:, genes], yt))
    times["pruned"] = time.perf_counter() - t
    total = time.perf_counter() - start

    print(f"\ntorch {torch.__version__}, {threads} thread(s):")
    for name, eps in [("pre-training", 50), ("frozen", 50), ("unfrozen", 50), ("pruned", 100)]:
        print(f"  {name:<14} {times[name]:8.2f} s  {times[name] / eps:.4f} s/epoch")
    print(f"torch test R^2 (Eq. 3) at the last epoch: {r2:.4f}")
    print(f"torch total seconds: {total:.3f}")


if __name__ == "__main__":
    main()
