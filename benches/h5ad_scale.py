#!/usr/bin/env python3
"""scanpy's side of `cargo bench --bench h5ad_scale`: load an .h5ad, then
normalize_total, log1p, highly_variable_genes(flavor="seurat", n_top_genes=2000)
and keep those genes. Prints one JSON line: load_s, prep_s, peak_mb, genes.

Usage: python3 benches/h5ad_scale.py FILE.h5ad
"""

import json
import resource
import sys
import time

import scanpy as sc


def main(path):
    start = time.perf_counter()
    adata = sc.read_h5ad(path)
    loaded = time.perf_counter()
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
    main(sys.argv[1])
