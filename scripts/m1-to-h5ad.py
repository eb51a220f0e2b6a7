#!/usr/bin/env python3
"""Converts the M1 Patch-seq CSVs (data/m1_patchseq) into one AnnData file,
data/m1_h5ad/m1.h5ad, for sessions/m1_srrr_h5ad.ron: X = the gene counts
(cells x genes, CSR float64), obsm["ephys"] = the ephys table (a data frame, so
its feature names travel), obs = metadata.csv indexed by cell_id.

With `--dense`, X is written as a dense float64 array instead, to
data/m1_h5ad/m1_dense.h5ad (patchbench then reads it dense, as the CSVs).

Run from the repository root: `python3 scripts/m1-to-h5ad.py [--dense]` (needs anndata).
"""

import os
import sys

import anndata as ad
import pandas as pd
import scipy.sparse as sp

SOURCE = "data/m1_patchseq"
TARGET = "data/m1_h5ad"

# "round_trip": the correctly rounded parse patchbench's CSV reader does (pandas'
# default parser can miss the nearest double by one bit).
exact = {"float_precision": "round_trip"}
counts = pd.read_csv(os.path.join(SOURCE, "gene_counts.csv"), index_col=0, **exact).T
ephys = pd.read_csv(os.path.join(SOURCE, "ephys_values.csv"), index_col=0, **exact)
metadata = pd.read_csv(os.path.join(SOURCE, "metadata.csv"), index_col="cell_id", dtype=str)
if set(ephys.index) != set(counts.index):
    raise SystemExit("the ephys cells differ from the expression cells: obsm needs the same cells")
# Missing labels as empty strings, which patchbench reads as missing (as in the CSV).
metadata = metadata.reindex(counts.index).fillna("")
dense = "--dense" in sys.argv[1:]
values = counts.to_numpy(dtype="float64")
adata = ad.AnnData(
    X=values if dense else sp.csr_matrix(values),
    obs=metadata,
    var=pd.DataFrame(index=counts.columns),
)
adata.obsm["ephys"] = ephys.loc[counts.index]
os.makedirs(TARGET, exist_ok=True)
name = "m1_dense.h5ad" if dense else "m1.h5ad"
adata.write_h5ad(os.path.join(TARGET, name))
stored = "dense" if dense else f"{adata.X.nnz} stored counts"
print(f"wrote {TARGET}/{name}: {adata.n_obs} cells x {adata.n_vars} genes, {stored}")
