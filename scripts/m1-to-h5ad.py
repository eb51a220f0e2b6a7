#!/usr/bin/env python3
"""Converts the M1 Patch-seq CSVs (data/m1_patchseq) into one AnnData file,
data/m1_h5ad/m1.h5ad, for sessions/m1_srrr_h5ad.ron: X = the gene counts
(cells x genes, CSR float64), obsm["ephys"] = the ephys table (a data frame, so
its feature names travel), obs = metadata.csv indexed by cell_id.

Run from the repository root: `python3 scripts/m1-to-h5ad.py` (needs anndata).
"""

import os

import anndata as ad
import pandas as pd
import scipy.sparse as sp

SOURCE = "data/m1_patchseq"
TARGET = "data/m1_h5ad"

counts = pd.read_csv(os.path.join(SOURCE, "gene_counts.csv"), index_col=0).T
ephys = pd.read_csv(os.path.join(SOURCE, "ephys_values.csv"), index_col=0)
metadata = pd.read_csv(os.path.join(SOURCE, "metadata.csv"), index_col="cell_id", dtype=str)
if set(ephys.index) != set(counts.index):
    raise SystemExit("the ephys cells differ from the expression cells: obsm needs the same cells")
# Missing labels as empty strings, which patchbench reads as missing (as in the CSV).
metadata = metadata.reindex(counts.index).fillna("")
adata = ad.AnnData(
    X=sp.csr_matrix(counts.to_numpy(dtype="float64")),
    obs=metadata,
    var=pd.DataFrame(index=counts.columns),
)
adata.obsm["ephys"] = ephys.loc[counts.index]
os.makedirs(TARGET, exist_ok=True)
adata.write_h5ad(os.path.join(TARGET, "m1.h5ad"))
print(f"wrote {TARGET}/m1.h5ad: {adata.n_obs} cells x {adata.n_vars} genes, {adata.X.nnz} stored counts")
