//! The parameter registry. Every trainable or stateful tensor of a model lives
//! in one [`ParamStore`] under a unique name (`"enc1.weight"`), with a
//! trainable/frozen flag and a [`ParamRole`]. Layers hold only [`ParamId`]
//! handles, so freezing, copying weights between models, pruning and saving all
//! go through the store. Weight matrices are `(inputs, outputs)`, row-major, so
//! row `g` of a first-layer weight belongs to input feature `g`.

use std::collections::HashMap;

use dfdx::shapes::HasShape;
use dfdx::tensor::{Tensor, TensorFromVec};
use ndarray::{Array1, Array2};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::NnError;
use super::device::{Dev, Device, DeviceChoice};

/// A runtime-shaped matrix on the device.
pub(crate) type Mat = Tensor<(usize, usize), f32, Dev>;
/// A runtime-shaped vector on the device.
pub(crate) type Vect = Tensor<(usize,), f32, Dev>;

/// Handle of one parameter in a [`ParamStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamId(pub(crate) usize);

/// What a parameter is for; the optimiser never updates [`ParamRole::RunningStat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ParamRole {
    /// A weight matrix (kernel).
    Weight,
    /// A bias vector.
    Bias,
    /// A learnable scale (batch normalisation gamma).
    Scale,
    /// A learnable shift (batch normalisation beta).
    Shift,
    /// A running statistic updated by the forward pass, never by gradients.
    RunningStat,
}

impl ParamRole {
    /// The name used in weight-file metadata.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ParamRole::Weight => "weight",
            ParamRole::Bias => "bias",
            ParamRole::Scale => "scale",
            ParamRole::Shift => "shift",
            ParamRole::RunningStat => "running_stat",
        }
    }

    /// Parses [`ParamRole::as_str`].
    pub(crate) fn parse(text: &str) -> Option<Self> {
        [
            ParamRole::Weight,
            ParamRole::Bias,
            ParamRole::Scale,
            ParamRole::Shift,
            ParamRole::RunningStat,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// The stored tensor of a parameter.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A `(rows, cols)` matrix.
    Matrix(Mat),
    /// A vector.
    Vector(Vect),
}

impl Value {
    /// Shape as a list of dimensions.
    pub(crate) fn dims(&self) -> Vec<usize> {
        match self {
            Value::Matrix(t) => vec![t.shape().0, t.shape().1],
            Value::Vector(t) => vec![t.shape().0],
        }
    }

    /// The values in row-major order (a copy).
    pub(crate) fn to_vec(&self) -> Vec<f32> {
        match self {
            Value::Matrix(t) => t.as_vec(),
            Value::Vector(t) => t.as_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) value: Value,
    pub(crate) trainable: bool,
    pub(crate) role: ParamRole,
}

/// Named, runtime-shaped `f32` parameters of one or more models on one device.
#[derive(Debug, Clone)]
pub struct ParamStore {
    device: Device,
    pub(crate) params: Vec<Param>,
    by_name: HashMap<String, usize>,
}

impl ParamStore {
    /// An empty store on the device named by `choice`.
    pub fn new(choice: DeviceChoice) -> Result<Self, NnError> {
        Ok(Self::on(Device::open(choice)?))
    }

    /// An empty store on an already opened device.
    pub fn on(device: Device) -> Self {
        ParamStore {
            device,
            params: Vec::new(),
            by_name: HashMap::new(),
        }
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A copy of the store whose parameters live on `device`.
    pub fn moved_to(&self, device: &Device) -> Result<ParamStore, NnError> {
        let mut moved = ParamStore {
            device: device.clone(),
            params: Vec::with_capacity(self.params.len()),
            by_name: self.by_name.clone(),
        };
        for param in &self.params {
            let value = match &param.value {
                Value::Matrix(t) => {
                    Value::Matrix(device.dev.try_tensor_from_vec(t.as_vec(), *t.shape())?)
                }
                Value::Vector(t) => {
                    Value::Vector(device.dev.try_tensor_from_vec(t.as_vec(), *t.shape())?)
                }
            };
            moved.params.push(Param {
                value,
                ..param.clone()
            });
        }
        Ok(moved)
    }

    /// Registers a matrix parameter with the given values (trainable unless it is a running statistic).
    pub fn add_matrix(
        &mut self,
        name: &str,
        values: &Array2<f32>,
        role: ParamRole,
    ) -> Result<ParamId, NnError> {
        let tensor = self.matrix_tensor(values)?;
        self.insert(name, Value::Matrix(tensor), role)
    }

    /// Registers a vector parameter with the given values (trainable unless it is a running statistic).
    pub fn add_vector(
        &mut self,
        name: &str,
        values: &Array1<f32>,
        role: ParamRole,
    ) -> Result<ParamId, NnError> {
        let tensor = self.vector_tensor(values)?;
        self.insert(name, Value::Vector(tensor), role)
    }

    /// Registers a `(fan_in, fan_out)` weight drawn from Keras' `glorot_uniform`:
    /// uniform on `±sqrt(6 / (fan_in + fan_out))`, row-major draws from `rng`.
    pub fn add_glorot(
        &mut self,
        name: &str,
        fan_in: usize,
        fan_out: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<ParamId, NnError> {
        self.add_matrix(
            name,
            &glorot_uniform(fan_in, fan_out, rng)?,
            ParamRole::Weight,
        )
    }

    /// Registers a vector of `n` zeros.
    pub fn add_zeros(&mut self, name: &str, n: usize, role: ParamRole) -> Result<ParamId, NnError> {
        self.add_vector(name, &Array1::zeros(n), role)
    }

    fn insert(&mut self, name: &str, value: Value, role: ParamRole) -> Result<ParamId, NnError> {
        if self.by_name.contains_key(name) {
            return Err(NnError::DuplicateParam(name.to_string()));
        }
        let id = self.params.len();
        self.params.push(Param {
            name: name.to_string(),
            value,
            trainable: role != ParamRole::RunningStat,
            role,
        });
        self.by_name.insert(name.to_string(), id);
        Ok(ParamId(id))
    }

    pub(crate) fn matrix_tensor(&self, values: &Array2<f32>) -> Result<Mat, NnError> {
        let (r, c) = values.dim();
        let data: Vec<f32> = values.iter().copied().collect();
        Ok(self.device.dev.try_tensor_from_vec(data, (r, c))?)
    }

    pub(crate) fn vector_tensor(&self, values: &Array1<f32>) -> Result<Vect, NnError> {
        let data: Vec<f32> = values.iter().copied().collect();
        let n = data.len();
        Ok(self.device.dev.try_tensor_from_vec(data, (n,))?)
    }

    /// The id of the parameter called `name`, if any.
    pub fn id(&self, name: &str) -> Option<ParamId> {
        self.by_name.get(name).map(|&i| ParamId(i))
    }

    /// All parameter ids in registration order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> + '_ {
        (0..self.params.len()).map(ParamId)
    }

    /// Number of parameters (tensors, not values).
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the store holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    pub(crate) fn param(&self, id: ParamId) -> Result<&Param, NnError> {
        self.params
            .get(id.0)
            .ok_or_else(|| NnError::UnknownParam(format!("#{}", id.0)))
    }

    pub(crate) fn param_mut(&mut self, id: ParamId) -> Result<&mut Param, NnError> {
        self.params
            .get_mut(id.0)
            .ok_or_else(|| NnError::UnknownParam(format!("#{}", id.0)))
    }

    /// The matrix tensor of `id`.
    pub(crate) fn mat(&self, id: ParamId) -> Result<&Mat, NnError> {
        let p = self.param(id)?;
        match &p.value {
            Value::Matrix(t) => Ok(t),
            Value::Vector(t) => Err(NnError::shape(
                &p.name,
                "a matrix",
                format!("a vector of {}", t.shape().0),
            )),
        }
    }

    /// The vector tensor of `id`.
    pub(crate) fn vect(&self, id: ParamId) -> Result<&Vect, NnError> {
        let p = self.param(id)?;
        match &p.value {
            Value::Vector(t) => Ok(t),
            Value::Matrix(t) => Err(NnError::shape(
                &p.name,
                "a vector",
                format!("a matrix {:?}", t.shape()),
            )),
        }
    }

    /// The name of `id`.
    pub fn name(&self, id: ParamId) -> Result<&str, NnError> {
        Ok(&self.param(id)?.name)
    }

    /// The shape of `id`: `[rows, cols]` or `[len]`.
    pub fn shape(&self, id: ParamId) -> Result<Vec<usize>, NnError> {
        Ok(self.param(id)?.value.dims())
    }

    /// The role of `id`.
    pub fn role(&self, id: ParamId) -> Result<ParamRole, NnError> {
        Ok(self.param(id)?.role)
    }

    /// Whether the optimiser updates `id`.
    pub fn is_trainable(&self, id: ParamId) -> Result<bool, NnError> {
        Ok(self.param(id)?.trainable)
    }

    /// Freezes (`false`) or unfreezes (`true`) `id`. Running statistics cannot be made trainable.
    pub fn set_trainable(&mut self, id: ParamId, trainable: bool) -> Result<(), NnError> {
        let p = self.param_mut(id)?;
        if trainable && p.role == ParamRole::RunningStat {
            return Err(NnError::invalid(
                &p.name,
                "a running statistic is never trainable",
            ));
        }
        p.trainable = trainable;
        Ok(())
    }

    /// A copy of the matrix `id`.
    pub fn matrix(&self, id: ParamId) -> Result<Array2<f32>, NnError> {
        let t = self.mat(id)?;
        let (r, c) = *t.shape();
        Array2::from_shape_vec((r, c), t.as_vec()).map_err(|e| NnError::Backend(e.to_string()))
    }

    /// A copy of the vector `id`.
    pub fn vector(&self, id: ParamId) -> Result<Array1<f32>, NnError> {
        Ok(Array1::from_vec(self.vect(id)?.as_vec()))
    }

    /// The values of `id` in row-major order.
    pub fn values(&self, id: ParamId) -> Result<Vec<f32>, NnError> {
        Ok(self.param(id)?.value.to_vec())
    }

    /// Replaces the matrix `id` (its shape may change, e.g. when pruning).
    pub fn set_matrix(&mut self, id: ParamId, values: &Array2<f32>) -> Result<(), NnError> {
        self.mat(id)?;
        let tensor = self.matrix_tensor(values)?;
        self.param_mut(id)?.value = Value::Matrix(tensor);
        Ok(())
    }

    /// Replaces the vector `id` (its length may change).
    pub fn set_vector(&mut self, id: ParamId, values: &Array1<f32>) -> Result<(), NnError> {
        self.vect(id)?;
        let tensor = self.vector_tensor(values)?;
        self.param_mut(id)?.value = Value::Vector(tensor);
        Ok(())
    }

    /// Copies the values of `from` in `source` into `to` here; shapes must match.
    pub fn copy_from(
        &mut self,
        to: ParamId,
        source: &ParamStore,
        from: ParamId,
    ) -> Result<(), NnError> {
        let (want, have) = (self.shape(to)?, source.shape(from)?);
        if want != have {
            return Err(NnError::shape(
                &format!("copy into {}", self.name(to)?),
                format!("{want:?}"),
                format!("{have:?}"),
            ));
        }
        match &source.param(from)?.value {
            Value::Matrix(_) => self.set_matrix(to, &source.matrix(from)?),
            Value::Vector(_) => self.set_vector(to, &source.vector(from)?),
        }
    }

    /// Fails with [`NnError::NonFinite`] naming the first parameter holding NaN or infinity.
    pub fn check_finite(&self) -> Result<(), NnError> {
        self.params
            .iter()
            .try_for_each(|p| super::check_finite(&p.name, &p.value.to_vec()))
    }
}

/// Keras' `glorot_uniform` for a `(fan_in, fan_out)` kernel.
pub(crate) fn glorot_uniform(
    fan_in: usize,
    fan_out: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Array2<f32>, NnError> {
    if fan_in == 0 || fan_out == 0 {
        return Err(NnError::invalid(
            "fan_in/fan_out",
            format!("must be positive, got {fan_in}x{fan_out}"),
        ));
    }
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
    Ok(Array2::from_shape_simple_fn((fan_in, fan_out), || {
        rng.random_range(-limit..limit)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn glorot_is_seeded_and_bounded() {
        let mut a = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let mut b = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let wa = a
            .add_glorot("w", 30, 20, &mut ChaCha8Rng::seed_from_u64(3))
            .unwrap();
        let wb = b
            .add_glorot("w", 30, 20, &mut ChaCha8Rng::seed_from_u64(3))
            .unwrap();
        let (va, vb) = (a.values(wa).unwrap(), b.values(wb).unwrap());
        assert_eq!(
            va.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            vb.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let limit = (6.0f32 / 50.0).sqrt();
        assert!(va.iter().all(|v| v.abs() <= limit));
        // A uniform on ±limit has variance limit²/3.
        let var = va.iter().map(|v| v * v).sum::<f32>() / va.len() as f32;
        assert!(
            (var - limit * limit / 3.0).abs() < 0.2 * limit * limit / 3.0,
            "{var}"
        );
        let other = a
            .add_glorot("w2", 30, 20, &mut ChaCha8Rng::seed_from_u64(4))
            .unwrap();
        assert_ne!(a.values(other).unwrap(), va);
    }

    #[test]
    fn names_flags_and_shapes() {
        let mut s = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let w = s
            .add_matrix("w", &Array2::from_elem((2, 3), 1.0), ParamRole::Weight)
            .unwrap();
        let r = s.add_zeros("bn.mean", 3, ParamRole::RunningStat).unwrap();
        assert_eq!(s.id("w"), Some(w));
        assert_eq!(s.shape(w).unwrap(), vec![2, 3]);
        assert!(s.is_trainable(w).unwrap());
        assert!(!s.is_trainable(r).unwrap());
        assert!(s.set_trainable(r, true).is_err());
        s.set_trainable(w, false).unwrap();
        assert!(!s.is_trainable(w).unwrap());
        assert!(matches!(
            s.add_zeros("w", 2, ParamRole::Bias),
            Err(NnError::DuplicateParam(_))
        ));
        assert!(s.vector(w).is_err());
        assert!(s.name(ParamId(9)).is_err());
    }

    #[test]
    fn copy_from_checks_shapes_and_copies() {
        let mut a = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let mut b = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let src = a
            .add_matrix(
                "w",
                &Array2::from_shape_fn((2, 2), |(i, j)| (i * 2 + j) as f32),
                ParamRole::Weight,
            )
            .unwrap();
        let dst = b
            .add_matrix("w", &Array2::zeros((2, 2)), ParamRole::Weight)
            .unwrap();
        let bad = b
            .add_matrix("v", &Array2::zeros((3, 2)), ParamRole::Weight)
            .unwrap();
        b.copy_from(dst, &a, src).unwrap();
        assert_eq!(b.values(dst).unwrap(), vec![0.0, 1.0, 2.0, 3.0]);
        assert!(b.copy_from(bad, &a, src).is_err());
    }

    #[test]
    fn check_finite_names_the_parameter() {
        let mut s = ParamStore::new(DeviceChoice::Cpu).unwrap();
        s.add_vector("ok", &Array1::from_vec(vec![1.0]), ParamRole::Bias)
            .unwrap();
        s.add_vector(
            "bad",
            &Array1::from_vec(vec![0.0, f32::NAN]),
            ParamRole::Bias,
        )
        .unwrap();
        let err = s.check_finite().unwrap_err();
        assert!(err.to_string().contains("bad"), "{err}");
    }
}
