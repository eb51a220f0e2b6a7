//! Gradient checks of every layer and loss against central finite
//! differences, plus end-to-end training behaviour of the neural layer.

use ndarray::Array2;
use patchbench::nn::{
    self, Adam, AdamConfig, BatchNorm, DeviceChoice, Linear, Mode, NnError, ParamId, ParamStore,
    Scalar, Var,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-1.0..1.0))
}

fn input(store: &ParamStore, a: &Array2<f32>) -> Var {
    Var::from_array(store.device(), a).unwrap()
}

/// Compares the analytic gradient of `loss` with respect to every element of
/// `params` with a central difference of step `h`.
fn check_gradients(
    store: &mut ParamStore,
    params: &[ParamId],
    h: f32,
    mut loss: impl FnMut(&mut ParamStore) -> Result<Scalar, NnError>,
) {
    let mut grads = loss(store).unwrap().backward().unwrap();
    for &id in params {
        let analytic = grads.of(store, id).unwrap();
        let shape = store.shape(id).unwrap();
        let base = store.values(id).unwrap();
        let set = |s: &mut ParamStore, v: Vec<f32>| match shape.as_slice() {
            [r, c] => s
                .set_matrix(id, &Array2::from_shape_vec((*r, *c), v).unwrap())
                .unwrap(),
            _ => s.set_vector(id, &ndarray::Array1::from_vec(v)).unwrap(),
        };
        for i in 0..base.len() {
            let mut plus = base.clone();
            plus[i] += h;
            set(store, plus);
            let lp = loss(store).unwrap().value().unwrap() as f64;
            let mut minus = base.clone();
            minus[i] -= h;
            set(store, minus);
            let lm = loss(store).unwrap().value().unwrap() as f64;
            set(store, base.clone());
            let numeric = (lp - lm) / (2.0 * h as f64);
            let a = analytic[i] as f64;
            let tol = 1e-2 * a.abs().max(numeric.abs()) + 2e-3;
            assert!(
                (a - numeric).abs() <= tol,
                "{} element {i}: analytic {a}, numeric {numeric}",
                store.name(id).unwrap()
            );
        }
    }
}

/// A small model: a linear layer whose output feeds `head`, reduced to a
/// scalar by a fixed random weighting (so no gradient cancels by symmetry).
fn check_op(name: &str, cols_out: usize, head: impl Fn(Var) -> Result<Var, NnError>) {
    let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
    let layer = Linear::new(
        &mut store,
        name,
        3,
        cols_out,
        &mut ChaCha8Rng::seed_from_u64(1),
    )
    .unwrap();
    store
        .set_vector(
            layer.bias,
            &ndarray::Array1::from_shape_fn(cols_out, |j| 0.1 * j as f32 - 0.2),
        )
        .unwrap();
    let x = random(4, 3, 2);
    let weights = random(4, cols_out, 3);
    check_gradients(&mut store, &[layer.weight, layer.bias], 1e-3, |s| {
        let out = head(layer.forward(s, input(s, &x))?)?;
        out.mul(input(s, &weights))?.sum()
    });
}

#[test]
fn element_wise_activations_have_correct_gradients() {
    check_op("identity", 3, Ok);
    check_op("elu", 3, |v| v.elu());
    check_op("relu", 3, |v| v.relu());
    check_op("tanh", 3, |v| v.tanh());
    check_op("sigmoid", 3, |v| v.sigmoid());
    check_op("exp", 3, |v| v.exp());
    check_op("square", 3, |v| v.square());
    check_op("scale", 3, |v| v.scale(-2.5)?.add_scalar(1.0));
    check_op("softmax", 3, |v| v.softmax());
    check_op("log_softmax", 3, |v| v.log_softmax());
}

#[test]
fn log_power_and_reduction_ops_have_correct_gradients() {
    // Positive inputs for ln and powf: softmax outputs plus a margin.
    check_op("ln", 3, |v| v.softmax()?.add_scalar(0.1)?.ln());
    check_op("powf", 3, |v| v.sigmoid()?.add_scalar(0.2)?.powf(-0.5));
    check_op("row_sums", 3, |v| {
        let (a, b) = v.fork();
        let sums = a.square()?.row_sums()?;
        let device = sums.device();
        b.add(sums.matmul(Var::from_array(&device, &Array2::ones((1, 3)))?)?)
    });
    check_op("column_variance", 3, |v| {
        let (a, b) = v.fork();
        b.mul_broadcast_row(
            a.sigmoid()?
                .column_variance()?
                .add_scalar(1e-3)?
                .powf(-0.5)?,
        )
    });
    check_op("concat_rows", 3, |v| {
        let (a, b) = v.fork();
        let stacked = a.tanh()?.concat_rows(b.exp()?)?;
        let device = stacked.device();
        // (8, 3) -> (4, 3) through a fixed mixing of rows.
        Var::from_array(&device, &random(4, 8, 21))?.matmul(stacked)
    });
}

#[test]
fn two_operand_ops_have_correct_gradients() {
    check_op("mul", 2, |v| {
        let (a, b) = v.fork();
        a.mul(b.tanh()?)
    });
    check_op("sub", 2, |v| {
        let (a, b) = v.fork();
        a.sub(b.square()?)
    });
    check_op("concat", 4, |v| {
        let (a, b) = v.fork();
        let left = a.matmul(Var::from_array(&b.device(), &random(4, 2, 9))?)?;
        let device = left.device();
        left.concat_cols(
            b.exp()?
                .matmul(Var::from_array(&device, &random(4, 2, 8))?)?,
        )
    });
}

#[test]
fn external_scalar_backpropagates_the_given_gradient() {
    // f(Y) = Σ y³ computed outside the tape, with its gradient 3y², on the
    // output Y of a linear layer (plus an on-tape term, to test mixing).
    let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
    let layer = Linear::new(&mut store, "ext", 3, 2, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
    let x = random(5, 3, 6);
    check_gradients(&mut store, &[layer.weight, layer.bias], 1e-3, |s| {
        let (y, y2) = layer.forward(s, input(s, &x))?.fork();
        let values = y.to_array()?;
        let value: f32 = values.iter().map(|a| a * a * a).sum();
        let grad = values.mapv(|a| 3.0 * a * a);
        let cubed = nn::external_scalar(vec![y], value, &[grad])?;
        assert!((cubed.value()? - value).abs() < 1e-4 * value.abs().max(1.0));
        cubed.add(y2.square()?.sum()?)
    });
}

#[test]
fn losses_have_correct_gradients() {
    let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let a = Linear::new(&mut store, "a", 3, 3, &mut rng).unwrap();
    let b = Linear::new(&mut store, "b", 3, 3, &mut rng).unwrap();
    let c = Linear::new(&mut store, "c", 3, 3, &mut rng).unwrap();
    let all = [a.weight, a.bias, b.weight, b.bias, c.weight, c.bias];
    let x = random(5, 3, 5);
    let y = random(5, 3, 6);
    let labels = [0usize, 2, 1, 1, 0];
    let soft = Array2::from_shape_fn((5, 3), |(i, j)| if j == labels[i] { 0.8 } else { 0.1 });
    check_gradients(&mut store, &all[..2], 1e-3, |s| {
        nn::loss::mse(a.forward(s, input(s, &x))?, input(s, &y))
    });
    check_gradients(&mut store, &all[..2], 1e-3, |s| {
        nn::loss::cross_entropy_labels(a.forward(s, input(s, &x))?, &labels)
    });
    check_gradients(&mut store, &all[..2], 1e-3, |s| {
        nn::loss::cross_entropy(a.forward(s, input(s, &x))?, input(s, &soft))
    });
    check_gradients(&mut store, &all[..2], 1e-3, |s| {
        nn::loss::kl_categorical_uniform(a.forward(s, input(s, &x))?)
    });
    check_gradients(&mut store, &all[..4], 1e-3, |s| {
        nn::loss::kl_std_normal(a.forward(s, input(s, &x))?, b.forward(s, input(s, &x))?)
    });
    check_gradients(&mut store, &all, 1e-3, |s| {
        let (x1, x2, x3) = (input(s, &x), input(s, &x), input(s, &x));
        let prior_logvar = c.forward(s, x3)?.tanh()?;
        nn::loss::kl_normal(
            a.forward(s, x1)?,
            b.forward(s, x2)?,
            input(s, &y),
            prior_logvar,
        )
    });
    // Gradients reach a learnable prior mean too.
    check_gradients(&mut store, &all[4..], 1e-3, |s| {
        let (x1, x2, x3) = (input(s, &x), input(s, &x), input(s, &x));
        let prior_mu = c.forward(s, x3)?;
        let zeros = input(s, &Array2::zeros((5, 3)));
        nn::loss::kl_normal(a.forward(s, x1)?, b.forward(s, x2)?, prior_mu, zeros)
    });
}

#[test]
fn batch_norm_has_correct_gradients() {
    let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
    let l = Linear::new(&mut store, "l", 3, 2, &mut ChaCha8Rng::seed_from_u64(8)).unwrap();
    let bn = BatchNorm::new(&mut store, "bn", 2, true).unwrap();
    let (scale, shift) = (bn.scale.unwrap(), bn.shift.unwrap());
    store
        .set_vector(scale, &ndarray::Array1::from_vec(vec![1.5, 0.7]))
        .unwrap();
    store
        .set_vector(shift, &ndarray::Array1::from_vec(vec![0.1, -0.2]))
        .unwrap();
    let x = random(6, 3, 9);
    let w = random(6, 2, 10);
    check_gradients(&mut store, &[l.weight, l.bias, scale, shift], 1e-3, |s| {
        let h = l.forward(s, input(s, &x))?;
        let weights = input(s, &w);
        bn.forward(s, h, Mode::Train)?.tanh()?.mul(weights)?.sum()
    });
}

#[test]
fn random_layers_have_correct_gradients() {
    let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
    let l = Linear::new(&mut store, "l", 3, 4, &mut ChaCha8Rng::seed_from_u64(11)).unwrap();
    let x = random(5, 3, 12);
    let w = random(5, 4, 13);
    // The same seed inside the closure makes every evaluation draw the same noise.
    check_gradients(&mut store, &[l.weight, l.bias], 1e-3, |s| {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let h = nn::dropout(l.forward(s, input(s, &x))?, 0.4, Mode::Train, &mut rng)?;
        let h = nn::gaussian_noise(h, 0.3, Mode::Train, &mut rng)?;
        let h = nn::gumbel_softmax(h, 0.7, &mut rng)?;
        h.mul(input(s, &w))?.sum()
    });
}

/// A 4-16-16-1 ELU network on y = sin(2 x0) + x1 x2 - x3 / 2.
fn toy_training(seed: u64, epochs: usize) -> (Vec<f32>, ParamStore) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
    let layers = [
        Linear::new(&mut store, "l1", 4, 16, &mut rng).unwrap(),
        Linear::new(&mut store, "l2", 16, 16, &mut rng).unwrap(),
        Linear::new(&mut store, "l3", 16, 1, &mut rng).unwrap(),
    ];
    let x = random(128, 4, seed + 1);
    let y = Array2::from_shape_fn((128, 1), |(i, _)| {
        (2.0 * x[[i, 0]]).sin() + x[[i, 1]] * x[[i, 2]] - 0.5 * x[[i, 3]]
    });
    let mut adam = Adam::new(AdamConfig::keras(0.01));
    let mut losses = Vec::new();
    for _ in 0..epochs {
        let mut epoch_loss = 0.0;
        for start in (0..128).step_by(32) {
            let rows: Vec<usize> = (start..start + 32).collect();
            let xb = x.select(ndarray::Axis(0), &rows);
            let yb = y.select(ndarray::Axis(0), &rows);
            let mut h = input(&store, &xb);
            for (k, layer) in layers.iter().enumerate() {
                h = layer.forward(&store, h).unwrap();
                if k + 1 < layers.len() {
                    h = h.elu().unwrap();
                }
            }
            let loss = nn::loss::mse(h, input(&store, &yb)).unwrap();
            epoch_loss += loss.value().unwrap() / 4.0;
            let mut grads = loss.backward().unwrap();
            adam.step(&mut store, &mut grads).unwrap();
        }
        losses.push(epoch_loss);
    }
    (losses, store)
}

#[test]
fn a_small_mlp_learns_a_toy_regression() {
    let (losses, store) = toy_training(21, 150);
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < first / 10.0, "loss went from {first} to {last}");
    store.check_finite().unwrap();
}

#[test]
fn same_seed_gives_bit_identical_training() {
    let (la, sa) = toy_training(5, 3);
    let (lb, sb) = toy_training(5, 3);
    let (lc, _) = toy_training(6, 3);
    assert_eq!(
        la.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        lb.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    for id in sa.ids() {
        let (a, b) = (sa.values(id).unwrap(), sb.values(id).unwrap());
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
    assert_ne!(la, lc);
}

#[test]
fn frozen_prefix_is_not_traced_and_not_updated() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
    let first = Linear::new(&mut store, "first", 5, 4, &mut rng).unwrap();
    let second = Linear::new(&mut store, "second", 4, 2, &mut rng).unwrap();
    first.set_trainable(&mut store, false).unwrap();
    let frozen = store.values(first.weight).unwrap();
    let x = input(&store, &random(8, 5, 4));
    let h = first.forward(&store, x).unwrap().elu().unwrap();
    assert!(!h.is_traced());
    let loss = nn::loss::mse(
        second.forward(&store, h).unwrap(),
        input(&store, &random(8, 2, 5)),
    )
    .unwrap();
    let mut adam = Adam::new(AdamConfig::keras(1e-2));
    let before = store.values(second.weight).unwrap();
    adam.step(&mut store, &mut loss.backward().unwrap())
        .unwrap();
    assert_eq!(store.values(first.weight).unwrap(), frozen);
    assert_ne!(store.values(second.weight).unwrap(), before);
}
