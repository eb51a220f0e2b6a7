#!/usr/bin/env python3
"""scanpy's side of `cargo bench --bench h5ad_scale`: load an .h5ad, then
with FLAVOR `seurat` (the default): normalize_total, log1p,
highly_variable_genes(flavor="seurat", n_top_genes=2000) and keep those genes;
with `seurat_v3`: highly_variable_genes(flavor="seurat_v3", n_top_genes=2000) on
the counts (needs scikit-misc), keep those genes, normalize_total, log1p.
Prints one JSON line: load_s, prep_s, peak_mb, genes.

Usage: python3 benches/h5ad_scale.py FILE.h5ad [FLAVOR]
"""

import json
import resource
import sys
import time

import scanpy as sc


def main(path, flavor):
    start = time.perf_counter()
    adata = sc.read_h5ad(path)
    loaded = time.perf_counter()
    if flavor == "seurat_v3":
        sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=2000)
        adata = adata[:, adata.var["highly_variable"]].copy()
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
    else:
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
        sc.pp.highly_variable_genes(adata, flavor="seurat", n_top_genes=2000)
        adata = adata[:, adata.var["highly_variable"]].copy()
    done = time.perf_counter()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "load_s": loaded - start,
                "prep_s": done - loaded,
                "peak_mb": peak_kb / 1024,
                "genes": int(adata.n_vars),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "seurat")
