#!/usr/bin/env python3
"""Writes copies of the M1 sessions that read the AnnData conversions of the
CSVs made by scripts/m1-to-h5ad.py, into target/sessions/ (git-ignored):
NAME_h5ad.ron reads data/m1_h5ad/m1.h5ad (X as CSR), NAME_dense_h5ad.ron
reads data/m1_h5ad/m1_dense.h5ad (X dense). The genes come from X (one row per
cell), the ephys features from obsm["ephys"], the labels from obs; everything
else in the session is unchanged, so each copy's metrics can be compared with
the CSV session's (README, "The other M1 sessions from the .h5ad").

Run from the repository root, after `python3 scripts/m1-to-h5ad.py` and
`python3 scripts/m1-to-h5ad.py --dense`:
    python3 scripts/m1-h5ad-sessions.py
then e.g. `patchbench --batch target/sessions/m1_sbnn_dense_h5ad.ron --rerun --json`.
"""

import os

SESSIONS = ["m1_srrr", "m1_sbnn", "m1_cae", "m1_cae_reference", "m1_mixvae"]
TARGET = "target/sessions"

GENES = (
    'path: "../data/m1_patchseq/gene_counts.csv",\n          orientation: FeaturesByCells,',
    'path: "../../data/m1_h5ad/{file}",\n          orientation: CellsByFeatures,',
)
EPHYS = (
    'path: "../data/m1_patchseq/ephys_values.csv",\n          orientation: CellsByFeatures,',
    'path: "../../data/m1_h5ad/{file}",\n          orientation: CellsByFeatures,\n          obsm: "ephys",',
)
METADATA = (
    'metadata: (path: "../data/m1_patchseq/metadata.csv", id_column: "cell_id")',
    'metadata: (path: "../../data/m1_h5ad/{file}", id_column: "obs_names")',
)

os.makedirs(TARGET, exist_ok=True)
for name in SESSIONS:
    with open(f"sessions/{name}.ron") as f:
        text = f.read()
    for suffix, file in [("h5ad", "m1.h5ad"), ("dense_h5ad", "m1_dense.h5ad")]:
        copy = text
        for old, new in (GENES, EPHYS, METADATA):
            copy = copy.replace(old, new.format(file=file))
        if 'path: "../data/m1_patchseq' in copy:
            raise SystemExit(f"sessions/{name}.ron: a data path was not replaced")
        with open(f"{TARGET}/{name}_{suffix}.ron", "w") as f:
            f.write(copy)
        print(f"wrote {TARGET}/{name}_{suffix}.ron")
