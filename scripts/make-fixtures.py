#!/usr/bin/env python3
"""Writes the AnnData / 10x fixtures under tests/fixtures/ with the Python tools themselves.

Run from the repository root: `python3 scripts/make-fixtures.py` (needs anndata, scanpy,
scipy; scikit-misc for the seurat_v3 golden data). Everything is seeded, so a rerun with
the same package versions writes the same numbers.

tests/fixtures/anndata/
  dense.h5ad      X dense float32; layers["counts"] int32 dense; obsm["ephys"] float64;
                  raw (X as float64 CSR); obs: categorical (one missing), categorical from strings, string, float, int, bool columns;
                  var["symbol"] (gene symbols)
  csr.h5ad        X CSR float64, same values
  csc.h5ad        X CSC int64, same values
  X.csv           the same X as CSV (cells x genes) to compare against
  counts.csv      layers["counts"] as CSV
  raw_X.csv       raw.X as CSV (cells x raw genes)
  ephys.csv       obsm["ephys"] as CSV
  obs.csv         obs as CSV (id column `cell`; booleans as true/false)
tests/fixtures/tenx/
  matrix.mtx.gz, features.tsv.gz, barcodes.tsv.gz: the counts as a 10x v3 folder
tests/fixtures/hvg/
  counts.h5ad     200 cells x 300 genes, gzip-compressed, of negative binomial counts, X CSR float32
  seurat.csv      scanpy's highly_variable_genes(flavor="seurat", n_top_genes=50) after
                  normalize_total + log1p: gene, means, dispersions, dispersions_norm, highly_variable
  seurat_v3.csv   flavor="seurat_v3", n_top_genes=50 on the counts (written when scikit-misc is present)
"""

import gzip
import os
import shutil

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.io
import scipy.sparse as sp

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def small():
    rng = np.random.default_rng(7)
    cells = [f"cell{i}" for i in range(6)]
    genes = ["ENSG01", "ENSG02", "ENSG03", "ENSG04", "ENSG05"]
    counts = rng.poisson(1.5, size=(6, 5)).astype(np.int32)
    counts[2, :] = 0
    counts[2, 1] = 7
    x = (counts * 0.5).astype(np.float32)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(["Vip", "Sst", None, "Pvalb", "Sst", "Vip"]),
            "donor": ["d1", "d1", "d2", "d2", "d3", "d3"],
            "sample": [f"s{i}" for i in range(6)],
            "depth": np.array([0.1, 0.25, 0.5, 0.75, 1.0, 1.5]),
            "age": np.array([30, 31, 32, 33, 34, 35], dtype=np.int64),
            "qc_pass": np.array([True, False, True, True, False, True]),
        },
        index=pd.Index(cells, name="cell"),
    )
    var = pd.DataFrame({"symbol": ["Gad1", "Vip", "Sst", "Pvalb", "Lamp5"]}, index=genes)
    ephys = rng.normal(size=(6, 3))
    return x, counts, obs, var, ephys


def write_csv(path, matrix, rows, columns):
    frame = pd.DataFrame(np.asarray(matrix), index=rows, columns=columns)
    frame.to_csv(path, float_format="%.17g")


def anndata_fixtures():
    folder = os.path.join(ROOT, "anndata")
    os.makedirs(folder, exist_ok=True)
    x, counts, obs, var, ephys = small()
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.layers["counts"] = counts
    adata.obsm["ephys"] = ephys
    raw = ad.AnnData(X=sp.csr_matrix(counts.astype(np.float64)), obs=obs, var=var)
    adata.raw = raw
    adata.write_h5ad(os.path.join(folder, "dense.h5ad"))
    sparse = ad.AnnData(X=sp.csr_matrix(x.astype(np.float64)), obs=obs, var=var)
    sparse.write_h5ad(os.path.join(folder, "csr.h5ad"))
    csc = ad.AnnData(X=sp.csc_matrix(counts.astype(np.int64)), obs=obs, var=var)
    csc.write_h5ad(os.path.join(folder, "csc.h5ad"))
    write_csv(os.path.join(folder, "X.csv"), x, obs.index, var.index)
    write_csv(os.path.join(folder, "counts.csv"), counts, obs.index, var.index)
    write_csv(os.path.join(folder, "raw_X.csv"), counts, obs.index, var.index)
    write_csv(os.path.join(folder, "ephys.csv"), ephys, obs.index, ["e0", "e1", "e2"])
    obs_out = obs.copy()
    obs_out["qc_pass"] = obs_out["qc_pass"].map({True: "true", False: "false"})
    obs_out.to_csv(os.path.join(folder, "obs.csv"))


def tenx_fixture():
    folder = os.path.join(ROOT, "tenx")
    os.makedirs(folder, exist_ok=True)
    _, counts, obs, var, _ = small()
    matrix = os.path.join(folder, "matrix.mtx")
    # 10x: genes x barcodes, integer coordinate format.
    scipy.io.mmwrite(matrix, sp.coo_matrix(counts.T), field="integer")
    for name, lines in [
        ("features.tsv", [f"{g}\t{s}\tGene Expression" for g, s in zip(var.index, var["symbol"])]),
        ("barcodes.tsv", list(obs.index)),
    ]:
        with open(os.path.join(folder, name), "w") as handle:
            handle.write("\n".join(lines) + "\n")
    for name in ["matrix.mtx", "features.tsv", "barcodes.tsv"]:
        path = os.path.join(folder, name)
        with open(path, "rb") as source, gzip.GzipFile(path + ".gz", "wb", mtime=0) as target:
            shutil.copyfileobj(source, target)
        os.remove(path)


def hvg_fixture():
    folder = os.path.join(ROOT, "hvg")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(11)
    cells, genes = 200, 300
    means = np.exp(rng.normal(0.0, 1.5, size=genes))
    dispersion = rng.uniform(0.05, 2.0, size=genes)
    library = rng.lognormal(0.0, 0.3, size=(cells, 1))
    mu = means * library
    p = 1.0 / (1.0 + mu * dispersion)
    counts = rng.negative_binomial(1.0 / dispersion, p).astype(np.float32)
    adata = ad.AnnData(
        X=sp.csr_matrix(counts),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(cells)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(genes)]),
    )
    adata.write_h5ad(os.path.join(folder, "counts.h5ad"), compression="gzip")
    columns = ["means", "dispersions", "dispersions_norm", "highly_variable"]
    logged = adata.copy()
    sc.pp.normalize_total(logged)
    sc.pp.log1p(logged)
    sc.pp.highly_variable_genes(logged, flavor="seurat", n_top_genes=50)
    logged.var[columns].to_csv(os.path.join(folder, "seurat.csv"), float_format="%.17g")
    try:
        import skmisc  # noqa: F401
    except ImportError:
        print("scikit-misc is absent: seurat_v3.csv not written")
        return
    v3 = adata.copy()
    sc.pp.highly_variable_genes(v3, flavor="seurat_v3", n_top_genes=50)
    v3.var[["means", "variances", "variances_norm", "highly_variable_rank", "highly_variable"]].to_csv(
        os.path.join(folder, "seurat_v3.csv"), float_format="%.17g"
    )


if __name__ == "__main__":
    anndata_fixtures()
    tenx_fixture()
    hvg_fixture()
