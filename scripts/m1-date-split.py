#!/usr/bin/env python3
"""Writes sessions/m1_date_apply.ron: the M1 sBNN and k-CAE trained on the cells
recorded before 2019 only (the later cells are dropped by explicit DropCells steps, first
in both recipes, so no statistic of theirs reaches the model). The later cells
are what `patchbench apply --where 'date=2019*'` predicts (README, "Applying a
trained model to new cells").

Usage: python3 scripts/m1-date-split.py [data/m1_patchseq/metadata.csv]
"""
import csv
import sys

metadata = sys.argv[1] if len(sys.argv) > 1 else "data/m1_patchseq/metadata.csv"
rows = list(csv.DictReader(open(metadata)))
late = [r["cell_id"] for r in rows if r["date"] >= "2019"]
early = len(rows) - len(late)
ids = ",\n".join(f'              "{c}"' for c in late)
drop = f"DropCells(cells: [\n{ids},\n            ])"
session = f"""// The M1 sBNN (sessions/m1_sbnn.ron) and k-CAE (sessions/m1_cae.ron, C_MSV with
// lambda 1, 10 folds instead of 5) trained on the {early} cells recorded before
// 2019; the {len(late)} cells of 2019 are dropped first in both recipes (written by
// scripts/m1-date-split.py) and predicted afterwards by the model artifacts:
//   patchbench --batch sessions/m1_date_apply.ron --json
//   patchbench apply sessions/m1_date_apply.weights/sbnn --data data/m1_patchseq/gene_counts.csv \\
//     --observed data/m1_patchseq/ephys_values.csv --metadata data/m1_patchseq/metadata.csv --where 'date=2019*'
//   (the same with sessions/m1_date_apply.weights/cae and --id-column cell_id for the k-CAE)
// The experiments sbnn_2019 and cae_2019 do the same inside the session (Apply).
(
  version: 1,
  datasets: [
    (
      name: "m1_early",
      modalities: [
        (
          name: "T",
          path: "../data/m1_patchseq/gene_counts.csv",
          orientation: FeaturesByCells,
          recipe: (steps: [
            {drop},
            LibrarySizeNormalise,
            Log2p1,
          ], standardise: AllCells),
        ),
        (
          name: "E",
          path: "../data/m1_patchseq/ephys_values.csv",
          orientation: CellsByFeatures,
          recipe: (steps: [
            {drop},
          ], standardise: AllCells),
        ),
      ],
      metadata: (path: "../data/m1_patchseq/metadata.csv", id_column: "cell_id"),
      fetch: "see data/README.md; in a developer checkout, run scripts/link-shared-data.sh",
    ),
    (
      // The files as they are: Apply prepares the 2019 cells with the trained
      // model's own preprocessing.
      name: "m1_all",
      modalities: [
        (name: "T", path: "../data/m1_patchseq/gene_counts.csv", orientation: FeaturesByCells),
        (name: "E", path: "../data/m1_patchseq/ephys_values.csv", orientation: CellsByFeatures),
      ],
      metadata: (path: "../data/m1_patchseq/metadata.csv", id_column: "cell_id"),
      fetch: "see data/README.md; in a developer checkout, run scripts/link-shared-data.sh",
    ),
  ],
  experiments: [
    (
      name: "sbnn",
      dataset: "m1_early",
      modalities: ["T", "E"],
      model: Sbnn(genes: 25),
      protocol: (folds: 10, seed: 42, scheme: NumpyContiguous),
    ),
    (
      name: "cae",
      dataset: "m1_early",
      modalities: ["T", "E"],
      model: Cae(model: (coupling: MinSingularValue, lambda: 1.0, steps: 2500), analysis: (gmm_components: [9], gmm: (inits: 4))),
      protocol: (folds: 10, seed: 42, scheme: NumpyContiguous),
    ),
    (
      name: "sbnn_2019",
      dataset: "m1_all",
      modalities: ["T", "E"],
      model: Apply(
        model_from: "sbnn",
        calibrate: Some(Random(50)),
        filter: (column: "date", value: "2019*"),
      ),
    ),
    (
      name: "cae_2019",
      dataset: "m1_all",
      modalities: ["T", "E"],
      model: Apply(model_from: "cae", filter: (column: "date", value: "2019*")),
    ),
  ],
)
"""
open("sessions/m1_date_apply.ron", "w").write(session)
print(f"sessions/m1_date_apply.ron: {early} training cells, {len(late)} dropped")
