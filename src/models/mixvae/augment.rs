//! Type-preserving augmentation: each agent gets its own noisy copy of a sample.
//!
//! [`Generator`] is the paper's augmenter (Eq. 7): an autoencoder-like network
//! mapping `x` to a low-dimensional `z`, with a second path that mixes noise
//! `n` into the representation before `z`. It outputs a noise-free sample
//! `x_pl` and a noisy one `x_n` and is trained, before the mixture model,
//! against a discriminator `D` with
//! `adv · [BCE(D(x_n), 1) + BCE(D(x_pl), 1)] / 2 + triplet · T_α + γ · KL(q(z|x) ‖ q(z|x,n)) + rec · mean_n ‖x_pl − x‖²`,
//! where `T_α = mean_n max(‖x − x_pl‖ − ‖x − x_n‖ + α, 0)`. The reconstruction
//! is summed over features like the KL and the distances of the triplet term
//! (see [`reconstruction_error`]). Unlike MMIDAS
//! (whose binarised inputs to D block every gradient but the reconstruction's,
//! see the reference), all terms here reach the generator, and the
//! reparameterisation noise is Gaussian. Afterwards it is frozen and `x_n`
//! is each agent's copy.
//!
//! [`label_preservation`] judges an augmenter as the paper does (MNIST: a
//! digit classifier keeps 96.6 % of its accuracy on augmented images): a
//! classifier trained on original samples is scored on held-out originals
//! and on their augmented copies.

use ndarray::Array2;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::MixVaeError;
use super::config::{Augmentation, GeneratorConfig};
use super::rotate::{TransformLimits, transform_rows_in_place};
use crate::analysis::cca::Pca;
use crate::models::cae::data::{Rows, gather};
use crate::nn::{
    self, Adam, AdamConfig, BatchNorm, Device, Linear, Mode, NnError, ParamStore, Scalar, Var,
};
use crate::progress::{Event, Sink};

/// A frozen augmenter, ready to make agents' copies.
#[derive(Debug, Clone)]
pub(crate) enum Augmenter {
    /// No change.
    Identity,
    /// Input dropout.
    Dropout(f32),
    /// Additive Gaussian noise.
    Noise(f32),
    /// Random rotation (and shift and size) of images `width` wide.
    Rotation {
        /// The largest angle, shift and change of size.
        limits: TransformLimits,
        /// The image width.
        width: usize,
    },
    /// A trained generator.
    Generator(Box<Generator>),
}

impl Augmenter {
    /// Builds the augmenter `choice`, training the generator on `x` if asked.
    pub(crate) fn build(
        choice: &Augmentation,
        x: &dyn Rows,
        device: &Device,
        rng: &mut ChaCha8Rng,
        sink: &mut dyn Sink,
    ) -> Result<Augmenter, NnError> {
        Ok(match choice {
            Augmentation::None => Augmenter::Identity,
            Augmentation::Dropout { rate } => Augmenter::Dropout(*rate),
            Augmentation::Noise { std } => Augmenter::Noise(*std),
            Augmentation::Rotation {
                degrees,
                width,
                shift,
                scale,
            } => Augmenter::Rotation {
                limits: TransformLimits {
                    degrees: *degrees,
                    shift: *shift,
                    scale: *scale,
                },
                width: *width,
            },
            Augmentation::Generator(config) => {
                Augmenter::Generator(Box::new(Generator::train(config, x, device, rng, sink)?))
            }
        })
    }

    /// The same augmenter with its parameters (if any) on `device`.
    pub(crate) fn on(&self, device: &Device) -> Result<Augmenter, NnError> {
        Ok(match self {
            Augmenter::Generator(g) => Augmenter::Generator(Box::new(Generator {
                store: g.store.moved_to(device)?,
                ..(**g).clone()
            })),
            other => other.clone(),
        })
    }

    /// One agent's copy of the batch `x` (host values: no gradient flows back).
    pub(crate) fn augment(
        &self,
        x: &Array2<f32>,
        device: &Device,
        rng: &mut ChaCha8Rng,
    ) -> Result<Array2<f32>, NnError> {
        let mut values = Vec::new();
        if let Augmenter::Generator(g) = self {
            g.noisy_copy(x, device, rng, &mut values)?;
        } else {
            match x.as_slice() {
                Some(v) => values.extend_from_slice(v),
                None => values.extend(x.iter().copied()),
            }
            self.perturb(&mut values, x.ncols(), rng)?;
        }
        Array2::from_shape_vec(x.dim(), values).map_err(|e| NnError::Backend(e.to_string()))
    }

    /// [`Augmenter::augment`] of the rows `batch` of `x` into `out`
    /// (row-major, replacing its contents): the rows are gathered straight
    /// into `out`, sparing a training step a copy of its batch.
    pub(crate) fn augment_rows_into(
        &self,
        x: &dyn Rows,
        batch: &[usize],
        device: &Device,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<f32>,
    ) -> Result<(), NnError> {
        out.clear();
        if let Augmenter::Generator(g) = self {
            return g.noisy_copy(&gather(x, batch), device, rng, out);
        }
        for &r in batch {
            x.push_row(r, out);
        }
        self.perturb(out, x.ncols(), rng)
    }

    /// The dropout, noise or rotation of a fixed augmenter, in place on
    /// row-major `values` of `columns` features (nothing for the others).
    fn perturb(
        &self,
        values: &mut [f32],
        columns: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), NnError> {
        match self {
            Augmenter::Dropout(rate) => nn::dropout_in_place(values, *rate, rng),
            Augmenter::Noise(std) => nn::add_noise_in_place(values, *std, rng),
            Augmenter::Rotation { limits, width } => {
                transform_rows_in_place(values, columns, *width, *limits, rng);
                Ok(())
            }
            Augmenter::Identity | Augmenter::Generator(_) => Ok(()),
        }
    }
}

/// The generator network, its parameters and its settings.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
    config: GeneratorConfig,
    store: ParamStore,
    enc1: (Linear, BatchNorm),
    enc2: (Linear, BatchNorm),
    noise_in: (Linear, BatchNorm),
    clean3: (Linear, BatchNorm),
    noisy3: (Linear, BatchNorm),
    mean: Linear,
    log_var: Linear,
    dec: Vec<(Linear, BatchNorm)>,
    out: Linear,
}

/// Both outputs of the generator and the two latent Gaussians.
pub(crate) struct GeneratorPass {
    clean: Var,
    noisy: Var,
    clean_mean: Var,
    clean_log_var: Var,
    noisy_mean: Var,
    noisy_log_var: Var,
}

fn layer(
    store: &mut ParamStore,
    name: &str,
    inputs: usize,
    outputs: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Linear, BatchNorm), NnError> {
    let lin = Linear::new(store, name, inputs, outputs, rng)?;
    let mut bn = BatchNorm::new(store, &format!("{name}.bn"), outputs, false)?;
    bn.momentum = 0.99;
    bn.eps = 1e-5;
    Ok((lin, bn))
}

fn apply(
    store: &mut ParamStore,
    (lin, bn): &(Linear, BatchNorm),
    x: Var,
    mode: Mode,
) -> Result<Var, NnError> {
    let z = lin.forward(store, x)?;
    bn.forward(store, z, mode)?.relu()
}

fn gaussian(
    device: &Device,
    rows: usize,
    cols: usize,
    scale: f32,
    rng: &mut ChaCha8Rng,
) -> Result<Var, NnError> {
    let values = (0..rows * cols)
        .map(|_| scale * rng.sample::<f32, _>(StandardNormal))
        .collect();
    Var::from_vec(device, rows, cols, values)
}

impl Generator {
    fn new(
        config: &GeneratorConfig,
        genes: usize,
        device: &Device,
        rng: &mut ChaCha8Rng,
    ) -> Result<Generator, NnError> {
        let mut store = ParamStore::on(device.clone());
        let (h, l, m) = (config.hidden, config.latent, config.noise_dim);
        let bottleneck = 100.min(h);
        let s = &mut store;
        let enc1 = layer(s, "gen.enc1", genes, h, rng)?;
        let enc2 = layer(s, "gen.enc2", h, h, rng)?;
        let noise_in = layer(s, "gen.noise", m, m, rng)?;
        let clean3 = layer(s, "gen.clean3", h, bottleneck, rng)?;
        let noisy3 = layer(s, "gen.noisy3", h + m, bottleneck, rng)?;
        let mean = Linear::new(s, "gen.mean", bottleneck, l, rng)?;
        let log_var = Linear::new(s, "gen.log_var", bottleneck, l, rng)?;
        let dec = vec![
            layer(s, "gen.dec1", l, bottleneck, rng)?,
            layer(s, "gen.dec2", bottleneck, h, rng)?,
            layer(s, "gen.dec3", h, h, rng)?,
        ];
        let out = Linear::new(s, "gen.out", h, genes, rng)?;
        Ok(Generator {
            config: config.clone(),
            store,
            enc1,
            enc2,
            noise_in,
            clean3,
            noisy3,
            mean,
            log_var,
            dec,
            out,
        })
    }

    /// The noisy output `x_n` for the batch `x`, appended to `out` (row-major).
    fn noisy_copy(
        &self,
        x: &Array2<f32>,
        device: &Device,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<f32>,
    ) -> Result<(), NnError> {
        let mut store = self.store.clone();
        let copy = self
            .forward(&mut store, Var::from_array(device, x)?, Mode::Eval, rng)?
            .noisy
            .to_array()?;
        out.extend(copy.iter().copied());
        Ok(())
    }

    fn decode(&self, store: &mut ParamStore, z: Var, mode: Mode) -> Result<Var, NnError> {
        let mut h = z;
        for l in &self.dec {
            h = apply(store, l, h, mode)?;
        }
        self.out.forward(store, h)?.relu()
    }

    fn latent(
        &self,
        store: &mut ParamStore,
        h: Var,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Var, Var, Var), NnError> {
        let (h1, h2) = h.fork();
        let (mu, mu_out) = self.mean.forward(store, h1)?.fork();
        let (lv, lv_out) = self.log_var.forward(store, h2)?.fork();
        let (rows, dims) = mu.shape();
        let xi = gaussian(&mu.device(), rows, dims, 1.0, rng)?;
        let z = mu.add(lv.scale(0.5)?.exp()?.mul(xi)?)?;
        Ok((z, mu_out, lv_out))
    }

    /// Both paths for the batch `x`, using `self.store`'s layout with `store`'s values.
    fn forward(
        &self,
        store: &mut ParamStore,
        x: Var,
        mode: Mode,
        rng: &mut ChaCha8Rng,
    ) -> Result<GeneratorPass, NnError> {
        let rows = x.shape().0;
        let h = apply(store, &self.enc1, x, mode)?;
        let h = apply(store, &self.enc2, h, mode)?;
        let (hc, hn) = h.fork();
        let noise = gaussian(
            &hc.device(),
            rows,
            self.config.noise_dim,
            self.config.noise_scale,
            rng,
        )?;
        let noise = {
            let (lin, bn) = &self.noise_in;
            let z = lin.forward(store, noise)?;
            bn.forward(store, z, mode)?.elu()?
        };
        let clean_h = apply(store, &self.clean3, hc, mode)?;
        let noisy_h = apply(store, &self.noisy3, hn.concat_cols(noise)?, mode)?;
        let (zc, clean_mean, clean_log_var) = self.latent(store, clean_h, rng)?;
        let (zn, noisy_mean, noisy_log_var) = self.latent(store, noisy_h, rng)?;
        Ok(GeneratorPass {
            clean: self.decode(store, zc, mode)?,
            noisy: self.decode(store, zn, mode)?,
            clean_mean,
            clean_log_var,
            noisy_mean,
            noisy_log_var,
        })
    }

    /// Trains generator and discriminator on the rows of `x`, then freezes the generator.
    fn train(
        config: &GeneratorConfig,
        x: &dyn Rows,
        device: &Device,
        rng: &mut ChaCha8Rng,
        sink: &mut dyn Sink,
    ) -> Result<Generator, NnError> {
        let genes = x.ncols();
        let mut generator = Generator::new(config, genes, device, rng)?;
        let mut disc_store = ParamStore::on(device.clone());
        let d1 = Linear::new(&mut disc_store, "disc.1", genes, config.hidden, rng)?;
        let d2 = Linear::new(&mut disc_store, "disc.2", config.hidden, 1, rng)?;
        let discriminate = |store: &ParamStore, v: Var| -> Result<Var, NnError> {
            let h = d1.forward(store, v)?.relu()?;
            d2.forward(store, h)
        };
        let mut gen_adam = Adam::new(AdamConfig::paper(config.learning_rate));
        let mut disc_adam = Adam::new(AdamConfig::paper(config.learning_rate));
        let mut order: Vec<usize> = (0..x.nrows()).collect();
        let batch = config.batch_size.min(x.nrows()).max(2);
        sink.event(Event::Stage {
            name: "augmenter".into(),
            total: config.epochs as u64,
        });
        let mut store = std::mem::replace(&mut generator.store, ParamStore::on(device.clone()));
        for epoch in 0..config.epochs {
            order.shuffle(rng);
            let mut epoch_loss = 0.0;
            let mut steps = 0;
            for chunk in order.chunks(batch) {
                if chunk.len() < 2 {
                    continue;
                }
                let xb = gather(x, chunk);
                let xv = || Var::from_array(device, &xb);
                // Discriminator step on detached generator outputs.
                let pass = generator.forward(&mut store, xv()?, Mode::Train, rng)?;
                let real = bce_logits(discriminate(&disc_store, xv()?)?, 1.0)?;
                let fake_n = bce_logits(discriminate(&disc_store, pass.noisy.detach())?, 0.0)?;
                let fake_c = bce_logits(discriminate(&disc_store, pass.clean.detach())?, 0.0)?;
                let d_loss = real.add(fake_n.add(fake_c)?.scale(0.5)?)?;
                let mut grads = d_loss.backward()?;
                disc_adam.step(&mut disc_store, &mut grads)?;
                // Generator step; the discriminator's gradients are discarded.
                let pass = generator.forward(&mut store, xv()?, Mode::Train, rng)?;
                let (noisy1, noisy2) = pass.noisy.fork();
                let (clean1, rest) = pass.clean.fork();
                let (clean2, clean3) = rest.fork();
                let adv = bce_logits(discriminate(&disc_store, noisy1)?, 1.0)?
                    .add(bce_logits(discriminate(&disc_store, clean1)?, 1.0)?)?
                    .scale(0.5)?;
                let dist_clean = row_distance(clean2, xv()?)?;
                let dist_noisy = row_distance(noisy2, xv()?)?;
                let triplet = dist_clean
                    .sub(dist_noisy)?
                    .add_scalar(config.margin)?
                    .relu()?
                    .mean()?;
                let latent = nn::loss::kl_normal(
                    pass.clean_mean,
                    pass.clean_log_var,
                    pass.noisy_mean,
                    pass.noisy_log_var,
                )?;
                let rec = reconstruction_error(clean3, xv()?)?;
                let g_loss = adv
                    .scale(config.adversarial_weight)?
                    .add(triplet.scale(config.triplet_weight)?)?
                    .add(latent.scale(config.latent_weight)?)?
                    .add(rec.scale(config.reconstruction_weight)?)?;
                epoch_loss += g_loss.value()? as f64;
                steps += 1;
                let mut grads = g_loss.backward()?;
                gen_adam.step(&mut store, &mut grads)?;
            }
            sink.event(Event::Metric {
                fold: None,
                name: "augmenter_loss".into(),
                step: epoch as u64,
                value: epoch_loss / steps.max(1) as f64,
            });
            sink.event(Event::Step {
                done: epoch as u64 + 1,
            });
        }
        store.check_finite()?;
        let ids: Vec<_> = store.ids().collect();
        for id in ids {
            store.set_trainable(id, false)?;
        }
        generator.store = store;
        Ok(generator)
    }
}

/// Binary cross-entropy of `sigmoid(logit)` against a constant target, averaged over rows.
fn bce_logits(logit: Var, target: f32) -> Result<Scalar, NnError> {
    let rows = logit.shape().0;
    let zeros = Var::from_vec(&logit.device(), rows, 1, vec![0.0; rows])?;
    let two = zeros.concat_cols(logit)?;
    let soft = Var::from_vec(
        &two.device(),
        rows,
        2,
        (0..rows).flat_map(|_| [1.0 - target, target]).collect(),
    )?;
    nn::loss::cross_entropy(two, soft)
}

/// Squared error summed over features and averaged over samples, `mean_n ‖a_n − b_n‖²`.
///
/// Averaging over features too (a per-pixel MSE, 784 times smaller on MNIST)
/// let the adversarial, triplet and KL terms, which are not averaged over
/// features, outweigh the reconstruction: the generator's copies then lost
/// their digit (label preservation 0.10 instead of about 0.9).
fn reconstruction_error(a: Var, b: Var) -> Result<Scalar, NnError> {
    let rows = a.shape().0;
    if a.shape() != b.shape() || rows == 0 {
        return Err(NnError::shape(
            "reconstruction_error",
            format!("{:?}", a.shape()),
            format!("{:?}", b.shape()),
        ));
    }
    a.sub(b)?.square()?.sum()?.scale(1.0 / rows as f32)
}

/// Euclidean distance of every row of `a` to the same row of `b`, `(rows, 1)`.
fn row_distance(a: Var, b: Var) -> Result<Var, NnError> {
    a.sub(b)?.square()?.row_sums()?.add_scalar(1e-8)?.powf(0.5)
}

/// Principal components the label-preservation classifier works in.
const PRESERVATION_PCS: usize = 30;

/// Every this many labelled samples, one is held out from the classifier.
const PRESERVATION_HOLDOUT: usize = 5;

/// A classifier's accuracy on held-out original samples and on their augmented copies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelPreservation {
    /// Accuracy on the held-out original samples.
    pub original_accuracy: f64,
    /// Accuracy on the augmented copies of the same samples.
    pub augmented_accuracy: f64,
}

impl LabelPreservation {
    /// The share of the classifier's accuracy that survives augmentation
    /// (the paper's label preservation: 96.14 / 99.54 = 96.6 % on MNIST).
    pub fn ratio(&self) -> f64 {
        self.augmented_accuracy / self.original_accuracy
    }
}

/// Trains a classifier (the nearest neighbour in the space of the top 30
/// principal components) on the original samples `original` of the rows
/// `rows`, labelled `labels`, except every fifth, and scores it on those
/// held-out rows of `original` and of `augmented` (the same samples after
/// augmentation). A nearest neighbour assumes nothing about the shape of
/// the classes, which decoded (smoothed) samples need not share.
pub fn label_preservation<O: Rows, A: Rows>(
    original: O,
    augmented: A,
    rows: &[usize],
    labels: &[usize],
) -> Result<LabelPreservation, MixVaeError> {
    let failed = |what: String| MixVaeError::Data(format!("label preservation: {what}"));
    let dim = |x: &dyn Rows| (x.nrows(), x.ncols());
    if dim(&original) != dim(&augmented) || rows.len() != labels.len() {
        return Err(failed(format!(
            "{:?} original and {:?} augmented samples, {} rows and {} labels",
            dim(&original),
            dim(&augmented),
            rows.len(),
            labels.len()
        )));
    }
    if let Some(&row) = rows.iter().find(|&&r| r >= original.nrows()) {
        return Err(failed(format!("row {row} of {} samples", original.nrows())));
    }
    let held_out = |i: usize| i % PRESERVATION_HOLDOUT == PRESERVATION_HOLDOUT - 1;
    let split = |keep_held_out: bool| -> (Vec<usize>, Vec<usize>) {
        rows.iter()
            .zip(labels)
            .enumerate()
            .filter(|(i, _)| held_out(*i) == keep_held_out)
            .map(|(_, (&r, &l))| (r, l))
            .unzip()
    };
    let (train_rows, train_labels) = split(false);
    let (test_rows, test_labels) = split(true);
    if test_rows.is_empty() || train_rows.is_empty() {
        return Err(failed(format!(
            "{} labelled samples are too few to train and test on",
            rows.len()
        )));
    }
    let pick = |x: &dyn Rows, rows: &[usize]| gather(x, rows).mapv(f64::from);
    let train_x = pick(&original, &train_rows);
    let pca = Pca::fit(train_x.view(), PRESERVATION_PCS).map_err(|e| failed(e.to_string()))?;
    let reference = pca.transform(train_x.view());
    let accuracy = |x: &dyn Rows| -> f64 {
        let scores = pca.transform(pick(x, &test_rows).view());
        let correct = scores
            .rows()
            .into_iter()
            .zip(&test_labels)
            .filter(|(query, label)| {
                let nearest = reference
                    .rows()
                    .into_iter()
                    .map(|r| {
                        r.iter()
                            .zip(query)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f64>()
                    })
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(&b.1));
                nearest.map(|(r, _)| train_labels[r]) == Some(**label)
            })
            .count();
        correct as f64 / test_labels.len() as f64
    };
    Ok(LabelPreservation {
        original_accuracy: accuracy(&original),
        augmented_accuracy: accuracy(&augmented),
    })
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    use super::*;
    use crate::nn::DeviceChoice;
    use crate::progress::Quiet;

    /// `types` classes of non-negative samples (the generator's output is a
    /// ReLU) with `dims` features each: far apart in sum, close per feature.
    fn classes(types: usize, per_type: usize, dims: usize) -> (Array2<f32>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let means: Vec<Vec<f32>> = (0..types)
            .map(|_| (0..dims).map(|_| rng.random_range(0.0..4.0)).collect())
            .collect();
        let labels: Vec<usize> = (0..types * per_type).map(|i| i % types).collect();
        let x = Array2::from_shape_fn((labels.len(), dims), |(i, g)| {
            (means[labels[i]][g] + rng.sample::<f32, _>(StandardNormal)).max(0.0)
        });
        (x, labels)
    }

    #[test]
    fn the_reconstruction_is_summed_over_features_and_averaged_over_samples() {
        let device = Device::open(DeviceChoice::Cpu).unwrap();
        let error = |rows: usize, cols: usize| {
            let a = Var::from_array(&device, &Array2::<f32>::zeros((rows, cols))).unwrap();
            let b = Var::from_array(&device, &Array2::from_elem((rows, cols), 0.5)).unwrap();
            reconstruction_error(a, b).unwrap().value().unwrap()
        };
        // 0.25 per feature: 300 features give 75 per sample, whatever the batch.
        assert!((error(4, 300) - 75.0).abs() < 1e-3);
        assert!((error(16, 300) - 75.0).abs() < 1e-3);
        assert!((error(4, 600) - 150.0).abs() < 1e-3);
        let a = Var::from_array(&device, &Array2::<f32>::zeros((2, 3))).unwrap();
        let b = Var::from_array(&device, &Array2::<f32>::zeros((3, 2))).unwrap();
        let message = reconstruction_error(a, b).unwrap_err().to_string();
        assert!(message.contains("reconstruction_error"), "{message}");
    }

    /// Regression: with a per-feature mean the reconstruction was outweighed
    /// and the copies of 200-feature samples lost their class.
    #[test]
    fn the_trained_generator_keeps_the_classes_of_many_feature_samples() {
        let (x, labels) = classes(4, 50, 200);
        let device = Device::open(DeviceChoice::Cpu).unwrap();
        let config = GeneratorConfig {
            hidden: 64,
            latent: 4,
            noise_dim: 8,
            epochs: 30,
            batch_size: 32,
            ..GeneratorConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let generator = Generator::train(&config, &x, &device, &mut rng, &mut Quiet).unwrap();
        let copy = Augmenter::Generator(Box::new(generator))
            .augment(&x, &device, &mut rng)
            .unwrap();
        assert!(copy.iter().all(|v| v.is_finite()) && copy != x);
        let rows: Vec<usize> = (0..labels.len()).collect();
        let check = label_preservation(x.view(), copy.view(), &rows, &labels).unwrap();
        assert!(check.original_accuracy > 0.95, "{check:?}");
        assert!(check.ratio() > 0.9, "{check:?}");
    }
}
