//! Weight files in the safetensors format, written atomically (a temporary
//! file in the same folder, then a rename), so a reader never sees half a file.
//!
//! Parameter stores ([`ParamStore::save`]): one tensor per parameter, named
//! exactly as the parameter (`"enc1.weight"`), dtype F32, little-endian,
//! row-major, shape `[rows, cols]` for matrices and `[len]` for vectors. The
//! header's `__metadata__` holds `"format": "patchbench-nn"`, `"version": "1"`,
//! and for every parameter `"role:<name>"` (weight, bias, scale, shift,
//! running_stat) and `"trainable:<name>"` (`true`/`false`).
//!
//! Dense stacks ([`DenseNet::save`]): tensors `"layer<i>.weight"` (shape
//! `[inputs, outputs]`) and `"layer<i>.bias"` (`[outputs]`) for layers
//! `i = 0, 1, ...`; metadata `"format": "patchbench-dense"`, `"version": "1"`,
//! `"layers"` (the count), `"activation:<i>"` (`elu`, `relu` or `linear`), plus any
//! caller-given entries (e.g. the input feature names).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::NnError;
use super::dense::{Activation, DenseLayer, DenseNet};
use super::params::{ParamRole, ParamStore, Value};

const FORMAT: &str = "patchbench-nn";
const DENSE_FORMAT: &str = "patchbench-dense";

/// A [`NnError::WeightFile`] for `path`.
fn weight_file_error(path: &Path, reason: String) -> NnError {
    NnError::WeightFile {
        path: path.to_path_buf(),
        reason,
    }
}

/// The bytes of the safetensors file `path` and its header's metadata, which
/// must name `format`.
fn read_weight_file(
    path: &Path,
    format: &str,
) -> Result<(Vec<u8>, BTreeMap<String, String>), NnError> {
    let bytes = std::fs::read(path).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| weight_file_error(path, format!("not a safetensors file: {e}")))?;
    let meta: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if meta.get("format").map(String::as_str) != Some(format) {
        return Err(weight_file_error(
            path,
            format!("metadata field \"format\" must be \"{format}\""),
        ));
    }
    Ok((bytes, meta))
}

/// The little-endian `f32` values of tensor `name`, checked to be finite.
fn finite_values(name: &str, view: &TensorView<'_>) -> Result<Vec<f32>, NnError> {
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    super::check_finite(name, &values)?;
    Ok(values)
}

/// Writes `bytes` to `path` through a temporary file in the same folder that
/// replaces `path` by rename once it is flushed; on failure `path` is untouched.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), NnError> {
    let io_error = |source| NnError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(source) = written.and_then(|()| std::fs::rename(&temp, path)) {
        // The temporary file is ours; removing it is best effort.
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(source));
    }
    Ok(())
}

/// Serialises `(name, shape, f32 values)` tensors with `meta` as the header metadata.
fn encode(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Vec<u8>)>,
    meta: HashMap<String, String>,
) -> Result<Vec<u8>, NnError> {
    let file_error = |reason: String| NnError::WeightFile {
        path: path.to_path_buf(),
        reason,
    };
    let views = tensors
        .iter()
        .map(|(name, dims, bytes)| {
            TensorView::new(Dtype::F32, dims.clone(), bytes)
                .map(|v| (name.as_str(), v))
                .map_err(|e| file_error(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, Some(meta)).map_err(|e| file_error(e.to_string()))
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl DenseNet {
    /// Writes every layer's weights, biases and activation to `path`, with
    /// `info` (free-form `key: value` pairs, e.g. input feature names) in the
    /// header. [`DenseNet::load`] rebuilds the network from the file alone.
    pub fn save(&self, path: &Path, info: &BTreeMap<String, String>) -> Result<(), NnError> {
        let mut meta: HashMap<String, String> =
            info.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        meta.insert("format".into(), DENSE_FORMAT.into());
        meta.insert("version".into(), "1".into());
        meta.insert("layers".into(), self.layers.len().to_string());
        let mut tensors = Vec::with_capacity(2 * self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let activation = match layer.activation {
                Activation::Elu => "elu",
                Activation::Relu => "relu",
                Activation::Linear => "linear",
            };
            meta.insert(format!("activation:{i}"), activation.into());
            tensors.push((
                format!("layer{i}.weight"),
                vec![layer.inputs, layer.outputs],
                le_bytes(&layer.weight),
            ));
            tensors.push((
                format!("layer{i}.bias"),
                vec![layer.outputs],
                le_bytes(&layer.bias),
            ));
        }
        write_atomically(path, &encode(path, tensors, meta)?)
    }

    /// Reads a network written by [`DenseNet::save`], with the header's
    /// metadata. The layers come back frozen (`trainable: false`).
    pub fn load(path: &Path) -> Result<(DenseNet, BTreeMap<String, String>), NnError> {
        let file_error = |reason: String| weight_file_error(path, reason);
        let (bytes, meta) = read_weight_file(path, DENSE_FORMAT)?;
        let count: usize = meta
            .get("layers")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| file_error("metadata field \"layers\" must be a count".into()))?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| file_error(e.to_string()))?;
        let read = |name: &str, rank: usize| -> Result<(Vec<usize>, Vec<f32>), NnError> {
            let view = tensors
                .tensor(name)
                .map_err(|_| file_error(format!("tensor \"{name}\" is missing")))?;
            if view.dtype() != Dtype::F32 || view.shape().len() != rank {
                return Err(file_error(format!(
                    "tensor \"{name}\": expected rank-{rank} F32, found {:?} {:?}",
                    view.dtype(),
                    view.shape()
                )));
            }
            Ok((view.shape().to_vec(), finite_values(name, &view)?))
        };
        // The count comes from the file: reserve no more than its tensors can fill.
        let mut layers = Vec::with_capacity(count.min(tensors.len() / 2));
        for i in 0..count {
            let (shape, weight) = read(&format!("layer{i}.weight"), 2)?;
            let (_, bias) = read(&format!("layer{i}.bias"), 1)?;
            let activation = match meta.get(&format!("activation:{i}")).map(String::as_str) {
                Some("elu") => Activation::Elu,
                Some("relu") => Activation::Relu,
                Some("linear") => Activation::Linear,
                other => {
                    return Err(file_error(format!(
                        "activation:{i}: expected elu, relu or linear, found {other:?}"
                    )));
                }
            };
            layers.push(DenseLayer {
                inputs: shape[0],
                outputs: shape[1],
                weight,
                bias,
                activation,
                trainable: false,
                bias_l2: true,
            });
        }
        let network = DenseNet::new(layers).map_err(|e| file_error(e.to_string()))?;
        Ok((network, meta))
    }
}

impl ParamStore {
    /// Writes every parameter, its role and its trainable flag to `path` (atomically).
    pub fn save(&self, path: &Path) -> Result<(), NnError> {
        let mut tensors = Vec::with_capacity(self.params.len());
        let mut meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("version".to_string(), "1".to_string()),
        ]);
        for p in &self.params {
            tensors.push((p.name.clone(), p.value.dims(), le_bytes(&p.value.to_vec())));
            meta.insert(format!("role:{}", p.name), p.role.as_str().to_string());
            meta.insert(format!("trainable:{}", p.name), p.trainable.to_string());
        }
        write_atomically(path, &encode(path, tensors, meta)?)
    }

    /// Reads the values (and roles' trainable flags) of every parameter of this
    /// store from `path`. The file must hold exactly these names with these shapes.
    pub fn load_into(&mut self, path: &Path) -> Result<(), NnError> {
        let file_error = |reason: String| weight_file_error(path, reason);
        let (bytes, meta) = read_weight_file(path, FORMAT)?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| file_error(e.to_string()))?;
        if let Some(extra) = tensors.names().into_iter().find(|n| self.id(n).is_none()) {
            return Err(file_error(format!(
                "tensor \"{extra}\" matches no parameter of the model"
            )));
        }
        let mut updates = Vec::with_capacity(self.params.len());
        for (index, p) in self.params.iter().enumerate() {
            let view = tensors
                .tensor(&p.name)
                .map_err(|_| file_error(format!("parameter \"{}\" is missing", p.name)))?;
            if view.dtype() != Dtype::F32 {
                return Err(file_error(format!(
                    "tensor \"{}\": expected dtype F32, found {:?}",
                    p.name,
                    view.dtype()
                )));
            }
            let dims = p.value.dims();
            if view.shape() != dims.as_slice() {
                return Err(file_error(format!(
                    "tensor \"{}\": expected shape {dims:?}, found {:?}",
                    p.name,
                    view.shape()
                )));
            }
            let values = finite_values(&p.name, &view)?;
            if let Some(role) = meta.get(&format!("role:{}", p.name))
                && ParamRole::parse(role) != Some(p.role)
            {
                return Err(file_error(format!(
                    "parameter \"{}\": expected role {}, found {role}",
                    p.name,
                    p.role.as_str()
                )));
            }
            let trainable = match meta
                .get(&format!("trainable:{}", p.name))
                .map(String::as_str)
            {
                None => p.trainable,
                Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    return Err(file_error(format!(
                        "trainable:{}: expected true or false, found {other}",
                        p.name
                    )));
                }
            };
            updates.push((index, dims, values, trainable));
        }
        for (index, dims, values, trainable) in updates {
            let shape_error = |e: ndarray::ShapeError| file_error(e.to_string());
            let value = match dims.as_slice() {
                [r, c] => Value::Matrix(self.matrix_tensor(
                    &Array2::from_shape_vec((*r, *c), values).map_err(shape_error)?,
                )?),
                _ => Value::Vector(self.vector_tensor(&Array1::from_vec(values))?),
            };
            if let Some(p) = self.params.get_mut(index) {
                p.value = value;
                p.trainable = trainable;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{BatchNorm, DeviceChoice, Linear};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn model(seed: u64) -> (ParamStore, Linear, BatchNorm) {
        let mut s = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let l = Linear::new(&mut s, "enc", 5, 3, &mut rng).unwrap();
        let bn = BatchNorm::new(&mut s, "bn", 3, true).unwrap();
        (s, l, bn)
    }

    #[test]
    fn round_trip_restores_values_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let (mut a, la, _) = model(1);
        a.set_vector(la.bias, &Array1::from_vec(vec![0.25, -1.5, 3.0]))
            .unwrap();
        a.set_trainable(la.weight, false).unwrap();
        a.save(&path).unwrap();
        let (mut b, lb, _) = model(2);
        assert_ne!(a.values(la.weight).unwrap(), b.values(lb.weight).unwrap());
        b.load_into(&path).unwrap();
        for id in a.ids() {
            assert_eq!(a.values(id).unwrap(), b.values(id).unwrap());
            assert_eq!(a.is_trainable(id).unwrap(), b.is_trainable(id).unwrap());
        }
        let raw = std::fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&raw).unwrap();
        assert_eq!(st.tensor("enc.weight").unwrap().shape(), &[5, 3]);
    }

    #[test]
    fn dense_nets_round_trip_with_their_predictions_and_info() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.safetensors");
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut first = DenseLayer::glorot(4, 3, Activation::Elu, &mut rng).unwrap();
        first.bias = vec![0.1, -0.2, 0.3];
        let second = DenseLayer::glorot(3, 2, Activation::Linear, &mut rng).unwrap();
        let net = DenseNet::new(vec![first, second]).unwrap();
        let info = BTreeMap::from([("inputs".to_string(), "a,b,c,d".to_string())]);
        net.save(&path, &info).unwrap();
        let (loaded, meta) = DenseNet::load(&path).unwrap();
        assert_eq!(meta["inputs"], "a,b,c,d");
        let x: Vec<f32> = (0..20).map(|i| (i as f32 * 0.37).sin()).collect();
        let expected = net.forward_range(&x, 5, 0, 2).unwrap();
        assert_eq!(loaded.forward_range(&x, 5, 0, 2).unwrap(), expected);
        assert_eq!(loaded.layers[1].activation, Activation::Linear);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");
        let (store, _, _) = model(1);
        store.save(&path).unwrap();
        let err = DenseNet::load(&path).unwrap_err().to_string();
        assert!(err.contains("patchbench-dense"), "{err}");
    }

    #[test]
    fn mismatched_files_are_refused_with_the_parameter_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let (a, la, _) = model(1);
        a.save(&path).unwrap();
        let (mut pruned, lp, _) = model(1);
        lp.keep_inputs(&mut pruned, &[0, 1]).unwrap();
        let err = pruned.load_into(&path).unwrap_err().to_string();
        assert!(
            err.contains("enc.weight") && err.contains("[2, 3]"),
            "{err}"
        );
        let mut small = ParamStore::new(DeviceChoice::Cpu).unwrap();
        Linear::new(&mut small, "enc", 5, 3, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let err = small.load_into(&path).unwrap_err().to_string();
        assert!(err.contains("matches no parameter"), "{err}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(small.load_into(&path).is_err());
        assert!(a.values(la.weight).is_ok());
        assert!(matches!(
            small.load_into(&dir.path().join("none")),
            Err(NnError::Io { .. })
        ));
    }
}
