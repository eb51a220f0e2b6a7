"""Seconds per training epoch of MMIDAS' cpl-mixVAE network (PyTorch, CPU)
on the matrix `cargo bench --bench mixvae` trains on, for the side-by-side
comparison that bench prints.

Usage: python benches/mixvae_mmidas.py MMIDAS_REPO MATRIX.csv EPOCHS

MMIDAS_REPO is a checkout of AllenInstitute/MMIDAS (its `mmidas` package is
imported from there); MATRIX.csv holds cells x genes without a header. The
network is `mmidas.networks_mixvae.RNA_RNA_mixVAE` with the bench's settings
(2 arms, K = 77, state 2, latent 10, 100 units, batch 256 over every cell,
the last batch smaller) and the optimiser step of `cpl_mixVAE.train`
(forward, `loss`, Adam), without its per-epoch validation, logging and
saving. Threads: PATCHBENCH_TORCH_THREADS (default 2). Prints one line per
result, `mmidas median seconds per epoch: S` last.
"""

import os
import sys
import time

import numpy as np
import torch


def main():
    repo, matrix, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path.insert(0, repo)
    from mmidas.networks_mixvae import RNA_RNA_mixVAE

    torch.set_num_threads(int(os.environ.get("PATCHBENCH_TORCH_THREADS", "2")))
    torch.manual_seed(0)
    x = torch.tensor(np.loadtxt(matrix, delimiter=",", dtype=np.float32))
    cells, genes = x.shape
    model = RNA_RNA_mixVAE(
        input_dim=genes,
        fc_dim=100,
        n_categories=77,
        state_dim=2,
        lowD_dim=10,
        x_drop=0.5,
        s_drop=0.2,
        n_arm=2,
        lam=1.0,
        lam_pc=1.0,
        tau=0.1,
        beta=1.0,
        hard=False,
        variational=True,
        device=torch.device("cpu"),
        eps=1e-8,
        momentum=0.01,
        ref_prior=False,
        loss_mode="MSE",
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    seconds = []
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(cells, generator=generator)
        for first in range(0, cells, 256):
            batch = x[order[first : first + 256]]
            if batch.shape[0] < 2:
                continue
            data = [batch, batch]
            out = model(x=data, temp=1.0, prior_c=0.0)
            recon, p_x, r_x, _, qc, _, c, mu, log_var, _ = out
            loss = model.loss(recon, p_x, r_x, data, mu, log_var, qc, c, 0.0)[0]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    rest = sorted(seconds[1:])
    print(f"mmidas torch {torch.__version__}, {torch.get_num_threads()} thread(s), {cells} cells x {genes} genes, {epochs} epochs")
    print(f"mmidas median seconds per epoch: {rest[len(rest) // 2]:.4f}")


if __name__ == "__main__":
    main()
