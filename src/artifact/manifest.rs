//! The artifact's `manifest.json`: format name and version, provenance, the
//! fitted preprocessing of the model's input (and target) modality, and the
//! model's own part (weights file, feature names, scaling).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::qda::Qda;
use crate::models::cae::CaeConfig;
use crate::models::mixvae::MixVaeConfig;
use crate::prep::FittedRecipe;

/// The manifest's `format` field.
pub const FORMAT: &str = "patchbench-artifact";
/// The manifest version this build writes and reads.
pub const VERSION: u32 = 1;
/// The manifest's file name inside an artifact folder.
pub const MANIFEST: &str = "manifest.json";

/// Why an artifact could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The manifest is not a manifest this build can read.
    #[error("{path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The session file the model was trained in.
    pub session: String,
    /// The experiment's name.
    pub experiment: String,
    /// The dataset's name in the session.
    pub dataset: String,
    /// FNV-1a hash of the training matrices (cell ids, feature names, values).
    pub data_fingerprint: String,
    /// The experiment's configuration fingerprint.
    pub config_fingerprint: String,
    /// The patchbench version that trained it.
    pub patchbench: String,
}

/// A modality's name and what its recipe fitted on the training cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedModality {
    /// The modality's name in the session (e.g. `T`).
    pub name: String,
    /// The fitted recipe.
    pub recipe: FittedRecipe,
}

/// The sBNN's part: the network and the scaling around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SbnnPart {
    /// The network's safetensors file, relative to the artifact folder.
    pub weights: String,
    /// The network's input genes in order (prepared features of the input).
    pub genes: Vec<String>,
    /// Training means of those genes after the recipe (subtracted before the network).
    pub gene_means: Vec<f64>,
    /// Training SDs of those genes, when the fold scaling also divides.
    pub gene_sds: Option<Vec<f64>>,
    /// Output feature names in order.
    pub outputs: Vec<String>,
    /// Training means of the outputs after their recipe (added to the network's output).
    pub output_means: Vec<f64>,
    /// Training SDs of the outputs, when the fold scaling also divided.
    pub output_sds: Option<Vec<f64>>,
    /// Layers `0..code_layers` give the latent code.
    pub code_layers: usize,
}

/// The sRRR's part: the final fit's maps and the scaling around them.
/// Predictions are `((x − gene_means) / gene_sds) W Vᵀ · output_sds + output_means`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrrrPart {
    /// The selected genes in order (the rows of `w`).
    pub genes: Vec<String>,
    /// Training means of those genes after the recipe.
    pub gene_means: Vec<f64>,
    /// Training SDs of those genes, when the fold scaling also divides.
    pub gene_sds: Option<Vec<f64>>,
    /// W: one row per gene, one column per latent component.
    pub w: Vec<Vec<f64>>,
    /// V: one row per output, one column per latent component.
    pub v: Vec<Vec<f64>>,
    /// Output feature names in order.
    pub outputs: Vec<String>,
    /// Training means of the outputs after their recipe.
    pub output_means: Vec<f64>,
    /// Training SDs of the outputs, when the fold scaling also divided.
    pub output_sds: Option<Vec<f64>>,
}

/// A label level's classifiers, fitted on the training cells' latents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelLevel {
    /// The level's name (e.g. `family`).
    pub name: String,
    /// The metadata column its labels came from (e.g. `rna_family`).
    pub column: String,
    /// Class names; the classifiers predict indices into this list.
    pub classes: Vec<String>,
    /// QDA fitted on the training cells' `z_T` (absent when no class had enough cells).
    pub from_t: Option<Qda>,
    /// QDA fitted on the training cells' `z_E`.
    pub from_e: Option<Qda>,
}

/// The coupled autoencoder's part: the model on all training cells, its
/// arms' inputs, and the classifiers on its latents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaePart {
    /// The network's safetensors file (both arms), relative to the artifact folder.
    pub weights: String,
    /// The settings it was built with (needed to rebuild it before loading the weights).
    pub config: CaeConfig,
    /// Input features of the first arm (T), in order, as its recipe prepares them.
    pub t_features: Vec<String>,
    /// Training means of those features (filled in for missing genes unless
    /// the policy is `zero`).
    pub t_means: Vec<f64>,
    /// Input features of the second arm (E), in order.
    pub e_features: Vec<String>,
    /// Per label level, the classifiers.
    pub levels: Vec<LabelLevel>,
    /// The cross-validation folds' models (`patchbench apply --fold K`); empty
    /// in artifacts written before they were kept.
    #[serde(default)]
    pub folds: Vec<CaeFold>,
}

/// One cross-validation fold's k-CAE: trained on every cell but `held_out`,
/// with the classifiers fitted on its own training cells' latents (as the
/// fold's evaluation fitted them). Preprocessing and settings are the
/// artifact's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaeFold {
    /// The fold network's safetensors file, relative to the artifact folder.
    pub weights: String,
    /// The paired cells the fold held out (never trained on).
    pub held_out: Vec<String>,
    /// Per label level, the classifiers.
    pub levels: Vec<LabelLevel>,
}

/// The mixture VAE's part: every agent's network (of the first seed's fit,
/// whose categories the result stores), the settings to rebuild them, the
/// input features, and the categories' names and known types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixVaePart {
    /// One safetensors file per network (`agent0`, ... ; one when the
    /// agents share a network), relative to the artifact folder.
    pub weights: Vec<String>,
    /// The settings the networks were built with.
    pub config: MixVaeConfig,
    /// Input features in order, as the input recipe prepares them.
    pub features: Vec<String>,
    /// Training means of those features (filled in for missing genes unless
    /// the policy is `zero`).
    pub feature_means: Vec<f64>,
    /// Category names (`c0`, `c1`, ...), one per category of the model.
    pub categories: Vec<String>,
    /// The known types the categories map to, when training had labels.
    pub types: Option<CategoryTypes>,
}

/// Each category's known type: the most common label of the training cells
/// the consensus put in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryTypes {
    /// The metadata column the labels came from.
    pub column: String,
    /// Per category, its type (`None` for a category without labelled cells).
    pub types: Vec<Option<String>>,
}

/// The model inside an artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ArtifactModel {
    /// A sparse bottleneck network fitted on all training cells.
    Sbnn(SbnnPart),
    /// A coupled autoencoder (two arms) fitted on all training cells.
    Cae(CaePart),
    /// Sparse reduced-rank regression refitted on all training cells at the chosen λ.
    Srrr(SrrrPart),
    /// A coupled mixture VAE's agents.
    MixVae(MixVaePart),
}

impl ArtifactModel {
    /// The model kind as shown to users.
    pub fn kind(&self) -> &'static str {
        match self {
            ArtifactModel::Sbnn(_) => "sBNN",
            ArtifactModel::Cae(_) => "k-CAE",
            ArtifactModel::Srrr(_) => "sRRR",
            ArtifactModel::MixVae(_) => "mixVAE",
        }
    }
}

/// Everything an artifact says besides its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The manifest version ([`VERSION`] when written by this build).
    pub version: u32,
    /// Where the model came from.
    pub provenance: Provenance,
    /// The input modality's fitted preprocessing.
    pub input: FittedModality,
    /// The target modality's fitted preprocessing (to compare with measured values).
    pub target: Option<FittedModality>,
    /// The model.
    pub model: ArtifactModel,
}

impl Manifest {
    /// Writes `folder/manifest.json` (creating the folder).
    pub fn write(&self, folder: &Path) -> Result<(), ArtifactError> {
        let path = folder.join(MANIFEST);
        let io = |e: std::io::Error| ArtifactError::Io {
            path: path.clone(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(folder).map_err(io)?;
        let text = serde_json::to_string_pretty(self).map_err(|e| ArtifactError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&path, text).map_err(io)
    }

    /// Reads `folder/manifest.json`, checking format and version first.
    pub fn read(folder: &Path) -> Result<Self, ArtifactError> {
        let path = folder.join(MANIFEST);
        let bad = |reason: String| ArtifactError::Manifest {
            path: path.clone(),
            reason,
        };
        if !folder.is_dir() {
            return Err(ArtifactError::Io {
                path: folder.to_path_buf(),
                reason: "not an artifact folder (expected a folder holding manifest.json)".into(),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| ArtifactError::Io {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a complete JSON manifest ({e})")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(bad(format!(
                "not a patchbench artifact (no \"format\": \"{FORMAT}\")"
            )));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                return Err(bad(format!(
                    "artifact format version {v}, but this patchbench (version {}) reads version {VERSION}; \
                     re-export the model with this version or apply it with the patchbench that wrote it",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            None => return Err(bad("the manifest has no \"version\"".into())),
        }
        serde_json::from_value(value).map_err(|e| bad(e.to_string()))
    }
}

/// Copies the artifact folder `from` (its files, not sub-folders) to `to`,
/// replacing what `to` held.
pub fn copy_artifact(from: &Path, to: &Path) -> Result<(), ArtifactError> {
    let io = |path: &Path, e: std::io::Error| ArtifactError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if to.exists() {
        std::fs::remove_dir_all(to).map_err(|e| io(to, e))?;
    }
    std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let path = entry.map_err(|e| io(from, e))?.path();
        if path.is_file()
            && let Some(name) = path.file_name()
        {
            std::fs::copy(&path, to.join(name)).map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}

/// FNV-1a hash over cell ids, feature names and value bits of `tables`
/// (for a table kept sparse: its CSR arrays and its z-scoring).
pub fn data_fingerprint(tables: &[&crate::data::PreparedTable]) -> String {
    let mut hash = Fnv::new();
    for table in tables {
        match table {
            crate::data::PreparedTable::Dense(t) => hash.dense(t),
            crate::data::PreparedTable::Sparse(s) => {
                hash.names(&s.table.cells, &s.table.features);
                let csr = &s.table.values;
                for &p in csr.indptr().raw_storage() {
                    hash.eat(&(p as u64).to_le_bytes());
                }
                for &j in csr.indices() {
                    hash.eat(&j.to_le_bytes());
                }
                for v in csr.data() {
                    hash.eat(&v.to_bits().to_le_bytes());
                }
                for v in s.scaling.iter().flat_map(|c| c.means.iter().chain(&c.sds)) {
                    hash.eat(&v.to_bits().to_le_bytes());
                }
            }
        }
    }
    hash.hex()
}

/// [`data_fingerprint`] of dense tables (e.g. the paired cells of two modalities).
pub fn dense_fingerprint(tables: &[&crate::data::FeatureTable]) -> String {
    let mut hash = Fnv::new();
    for table in tables {
        hash.dense(table);
    }
    hash.hex()
}

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn eat(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn names(&mut self, cells: &[String], features: &[String]) {
        for name in cells.iter().chain(features) {
            self.eat(name.as_bytes());
            self.eat(&[0]);
        }
    }

    fn dense(&mut self, table: &crate::data::FeatureTable) {
        self.names(&table.cells, &table.features);
        for v in &table.values {
            self.eat(&v.to_bits().to_le_bytes());
        }
    }

    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}
