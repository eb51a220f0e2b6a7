//! Weight files in the safetensors format.
//!
//! Layout: one tensor per parameter, named exactly as the parameter
//! (`"enc1.weight"`), dtype F32, little-endian, row-major, shape `[rows, cols]`
//! for matrices and `[len]` for vectors. The header's `__metadata__` holds
//! `"format": "patchbench-nn"`, `"version": "1"`, and for every parameter
//! `"role:<name>"` (weight, bias, scale, shift, running_stat) and
//! `"trainable:<name>"` (`true`/`false`).

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::NnError;
use super::params::{ParamRole, ParamStore, Value};

const FORMAT: &str = "patchbench-nn";

impl ParamStore {
    /// Writes every parameter, its role and its trainable flag to `path`.
    pub fn save(&self, path: &Path) -> Result<(), NnError> {
        let mut buffers = Vec::with_capacity(self.params.len());
        let mut meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("version".to_string(), "1".to_string()),
        ]);
        for p in &self.params {
            let bytes: Vec<u8> = p
                .value
                .to_vec()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            buffers.push((p.name.clone(), p.value.dims(), bytes));
            meta.insert(format!("role:{}", p.name), p.role.as_str().to_string());
            meta.insert(format!("trainable:{}", p.name), p.trainable.to_string());
        }
        let file_error = |reason: String| NnError::WeightFile {
            path: path.to_path_buf(),
            reason,
        };
        let views = buffers
            .iter()
            .map(|(name, dims, bytes)| {
                TensorView::new(Dtype::F32, dims.clone(), bytes)
                    .map(|v| (name.as_str(), v))
                    .map_err(|e| file_error(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let encoded =
            safetensors::serialize(views, Some(meta)).map_err(|e| file_error(e.to_string()))?;
        std::fs::write(path, encoded).map_err(|source| NnError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads the values (and roles' trainable flags) of every parameter of this
    /// store from `path`. The file must hold exactly these names with these shapes.
    pub fn load_into(&mut self, path: &Path) -> Result<(), NnError> {
        let file_error = |reason: String| NnError::WeightFile {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|source| NnError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| file_error(format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(file_error(format!(
                "metadata field \"format\" must be \"{FORMAT}\""
            )));
        }
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
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            super::check_finite(&p.name, &values)?;
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
