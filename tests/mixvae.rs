//! The coupled mixture VAE on synthetic mixtures with known components, its
//! distances on the simplex, configuration checks and reproducibility.

use ndarray::Array2;
use patchbench::analysis::clustering::adjusted_rand_index;
use patchbench::models::mixvae::{
    Augmentation, CouplingInput, GeneratorConfig, MixVaeConfig, MixVaeError, MixVaeFit, Output,
    RestartCriterion, SoftmaxMode, StatePrior, aitchison_distance_sq, d_sigma_sq, fit, fit_keeping,
    fit_keeping_on, label_preservation, restart_seeds,
};
use patchbench::nn::dense::Engine;
use patchbench::progress::{Event, Quiet, Recorder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// `per_type` cells of each of `types` Gaussian components in `dims`
/// dimensions: component means drawn from N(0, 3²) per dimension, unit noise
/// scaled by `noise`. Returns the data and the true component of every cell.
fn gaussian_mixture(
    types: usize,
    per_type: usize,
    dims: usize,
    noise: f32,
    seed: u64,
) -> (Array2<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let means: Vec<Vec<f32>> = (0..types)
        .map(|_| {
            (0..dims)
                .map(|_| 3.0 * rng.sample::<f32, _>(StandardNormal))
                .collect()
        })
        .collect();
    let n = types * per_type;
    let labels: Vec<usize> = (0..n).map(|i| i % types).collect();
    let x = Array2::from_shape_fn((n, dims), |(i, g)| {
        means[labels[i]][g] + noise * rng.sample::<f32, _>(StandardNormal)
    });
    (x, labels)
}

/// A small, fast network for the synthetic tests.
fn small_config(agents: usize, categories: usize) -> MixVaeConfig {
    MixVaeConfig {
        agents,
        categories,
        hidden: 32,
        hidden_layers: 2,
        low_dim: 8,
        output: Output::Linear,
        input_dropout: 0.1,
        state_dropout: 0.1,
        augmentation: Augmentation::Noise { std: 0.3 },
        epochs: 60,
        batch_size: 64,
        learning_rate: 3e-3,
        temperature: 0.67,
        seed: 3,
        ..MixVaeConfig::default()
    }
}

#[test]
fn two_agents_recover_the_components_of_a_gaussian_mixture() {
    let (x, labels) = gaussian_mixture(4, 80, 20, 1.0, 11);
    let mut recorder = Recorder::default();
    let fitted = fit(&x, &small_config(2, 4), &mut recorder).unwrap();
    // The components are far apart (mean distance ≈ 3·√(2·20) ≈ 19 noise SDs),
    // so k-means or a GMM separates them perfectly; a model that merges two of
    // the four components scores ARI ≈ 0.7 at best, and random labels ≈ 0.
    // Requiring 0.9 therefore demands that every component be found.
    let ari = adjusted_rand_index(&fitted.consensus, &labels);
    assert!(ari > 0.9, "ARI {ari}, sizes {:?}", fitted.category_sizes);
    assert!(fitted.category_sizes.iter().all(|&n| n > 0));
    assert!(fitted.agreement > 0.9, "agreement {}", fitted.agreement);
    assert!(fitted.amp() > 0.5 && fitted.amp() <= 1.0);
    assert_eq!(fitted.agents.len(), 2);
    assert_eq!(fitted.agents[0].state.dim(), (320, 2));
    // One traversal per used category and state dimension.
    assert_eq!(fitted.traversals.len(), 4 * 2);
    assert!(fitted.traversals.iter().all(|t| t.state_values.len() == 9));
    let losses: Vec<f64> = recorder
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Metric { name, value, .. } if name == "loss" => Some(*value),
            _ => None,
        })
        .collect();
    assert_eq!(losses.len(), 60);
    assert!(losses[59] < losses[0], "{} -> {}", losses[0], losses[59]);
}

#[test]
fn one_agent_trains_its_classifier_and_recovers_the_components() {
    // The single-agent baseline has no coupling terms, so its category
    // logits learn only from the reconstruction through the Gumbel-softmax
    // sample. If that path lost its gradient, q would stay at its random
    // initialisation: near-uniform (mean maximum posterior close to 1/K)
    // and at best a partial clustering (ARI well below 0.9, see the
    // two-agent test for why 0.9 demands every component).
    let (x, labels) = gaussian_mixture(4, 80, 20, 1.0, 11);
    // With the balance term, as in the example sessions: without it a
    // single agent may leave a category empty (no coupling holds it back).
    let config = MixVaeConfig {
        balance_weight: 10.0,
        ..small_config(1, 4)
    };
    let fitted = fit(&x, &config, &mut Quiet).unwrap();
    let ari = adjusted_rand_index(&fitted.consensus, &labels);
    assert!(ari > 0.9, "ARI {ari}, sizes {:?}", fitted.category_sizes);
    assert!(fitted.category_sizes.iter().all(|&n| n > 0));
    assert!(
        fitted.mean_confidence() > 0.8,
        "mean max posterior {}",
        fitted.mean_confidence()
    );
}

#[test]
fn empty_categories_are_re_seeded_when_k_exceeds_the_components() {
    // Three components and six categories: the balance term alone leaves
    // some categories without cells; re-seeding splits the largest.
    let (x, labels) = gaussian_mixture(3, 80, 20, 1.0, 5);
    let sizes_with = |revive_every: usize| {
        let config = MixVaeConfig {
            revive_every,
            ..small_config(2, 6)
        };
        fit(&x, &config, &mut Quiet).unwrap()
    };
    let without = sizes_with(0);
    assert_eq!(without.revived, 0);
    assert!(
        without.category_sizes.contains(&0),
        "no empty category to re-seed: {:?}",
        without.category_sizes
    );
    let with = sizes_with(10);
    assert!(with.revived > 0);
    assert!(
        with.category_sizes.iter().all(|&n| n > 0),
        "sizes {:?} after {} re-seedings",
        with.category_sizes,
        with.revived
    );
    // Splitting components keeps them apart: every category is mostly one component.
    for category in 0..6 {
        let mut counts = [0usize; 3];
        for (c, &l) in with.consensus.iter().zip(&labels) {
            if *c == category {
                counts[l] += 1;
            }
        }
        let total: usize = counts.iter().sum();
        let top = counts.iter().copied().max().unwrap_or(0);
        assert!(
            top * 10 >= total * 9,
            "category {category} mixes {counts:?}"
        );
    }
}

#[test]
fn the_generator_augmenter_trains_and_feeds_the_agents() {
    let (x, labels) = gaussian_mixture(3, 40, 12, 1.0, 5);
    let config = MixVaeConfig {
        augmentation: Augmentation::Generator(GeneratorConfig {
            hidden: 32,
            latent: 4,
            noise_dim: 8,
            epochs: 5,
            batch_size: 32,
            ..GeneratorConfig::default()
        }),
        epochs: 40,
        ..small_config(2, 3)
    };
    let mut recorder = Recorder::default();
    let fitted = fit(&x, &config, &mut recorder).unwrap();
    assert!(
        recorder
            .events
            .iter()
            .any(|e| matches!(e, Event::Metric { name, .. } if name == "augmenter_loss"))
    );
    assert_eq!(fitted.consensus.len(), labels.len());
    let copy = fitted
        .augmented
        .expect("the augmenter's copy of every cell");
    assert_eq!(copy.dim(), x.dim());
    assert!(copy.iter().all(|v| v.is_finite()) && copy != x);
}

#[test]
fn label_preservation_falls_when_augmentation_destroys_the_classes() {
    let (x, labels) = gaussian_mixture(4, 60, 40, 1.0, 8);
    let rows: Vec<usize> = (0..labels.len()).collect();
    let same = label_preservation(x.view(), x.view(), &rows, &labels).unwrap();
    assert!(same.original_accuracy > 0.95, "{same:?}");
    assert_eq!(same.ratio(), 1.0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut noisy = |std: f32| x.mapv(|v| v + std * rng.sample::<f32, _>(StandardNormal));
    let mild = label_preservation(x.view(), noisy(0.3).view(), &rows, &labels).unwrap();
    assert!(mild.ratio() > 0.9, "{mild:?}");
    let destroyed = label_preservation(x.view(), noisy(30.0).view(), &rows, &labels).unwrap();
    assert!(destroyed.ratio() < 0.6, "{destroyed:?}");
    let short = x.select(ndarray::Axis(0), &rows[..10]);
    let message = label_preservation(x.view(), short.view(), &rows, &labels)
        .unwrap_err()
        .to_string();
    assert!(message.contains("label preservation"), "{message}");
}

#[test]
fn d_sigma_equals_the_aitchison_distance_with_unit_variances() {
    let ones = [1.0; 4];
    // Compositions with the same geometric mean (here: permutations of each other).
    let a = [0.1, 0.2, 0.3, 0.4];
    let b = [0.4, 0.1, 0.2, 0.3];
    let d = aitchison_distance_sq(&a, &b);
    assert!(d > 0.1);
    assert!((d_sigma_sq(&a, &b, &ones, &ones) - d).abs() < 1e-12);
    // In general, with σ = 1, d²_σ − d² = (Σ_k ln(a_k / b_k))² / K ≥ 0, which
    // vanishes as the two compositions meet (Prop. 2 of the paper).
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..100 {
        let mut draw = || -> Vec<f64> {
            let v: Vec<f64> = (0..5).map(|_| rng.random_range(0.01..1.0)).collect();
            let s: f64 = v.iter().sum();
            v.iter().map(|x| x / s).collect()
        };
        let (a, b) = (draw(), draw());
        let ones = [1.0; 5];
        let gap = d_sigma_sq(&a, &b, &ones, &ones) - aitchison_distance_sq(&a, &b);
        let log_ratio: f64 = a.iter().zip(&b).map(|(x, y)| (x / y).ln()).sum();
        assert!((gap - log_ratio * log_ratio / 5.0).abs() < 1e-9);
        assert!(gap >= -1e-12);
        assert!(d_sigma_sq(&a, &a, &ones, &ones).abs() < 1e-12);
    }
    // Scaling by σ: halving σ_a doubles agent a's log-probabilities.
    let a = [0.5, 0.5];
    let b = [0.5, 0.5];
    let two = 2.0 * 0.5f64.ln();
    let expected = 2.0 * (two - 0.5f64.ln()).powi(2);
    assert!((d_sigma_sq(&a, &b, &[0.5, 0.5], &[1.0, 1.0]) - expected).abs() < 1e-12);
}

#[test]
fn invalid_settings_are_rejected_with_the_field_name() {
    let cases: Vec<(MixVaeConfig, &str)> = vec![
        (
            MixVaeConfig {
                agents: 0,
                ..MixVaeConfig::default()
            },
            "agents",
        ),
        (
            MixVaeConfig {
                categories: 1,
                ..MixVaeConfig::default()
            },
            "categories",
        ),
        (
            MixVaeConfig {
                temperature: 1.5,
                ..MixVaeConfig::default()
            },
            "temperature",
        ),
        (
            MixVaeConfig {
                temperature: 0.0,
                ..MixVaeConfig::default()
            },
            "temperature",
        ),
        (
            MixVaeConfig {
                batch_size: 1,
                ..MixVaeConfig::default()
            },
            "batch_size",
        ),
        (
            MixVaeConfig {
                lambda: -1.0,
                ..MixVaeConfig::default()
            },
            "lambda",
        ),
        (
            MixVaeConfig {
                input_dropout: 1.0,
                ..MixVaeConfig::default()
            },
            "input_dropout",
        ),
        (
            MixVaeConfig {
                variance_eps: 0.0,
                ..MixVaeConfig::default()
            },
            "variance_eps",
        ),
        (
            MixVaeConfig {
                softmax: patchbench::models::mixvae::SoftmaxMode::Double { tau: 0.0 },
                ..MixVaeConfig::default()
            },
            "softmax.tau",
        ),
        (
            MixVaeConfig {
                augmentation: Augmentation::Dropout { rate: 1.2 },
                ..MixVaeConfig::default()
            },
            "augmentation.rate",
        ),
        (
            MixVaeConfig {
                augmentation: Augmentation::Rotation {
                    degrees: 200.0,
                    width: 28,
                    shift: 0.0,
                    scale: 0.0,
                },
                ..MixVaeConfig::default()
            },
            "augmentation.degrees",
        ),
        (
            MixVaeConfig {
                augmentation: Augmentation::Rotation {
                    degrees: 20.0,
                    width: 0,
                    shift: 0.0,
                    scale: 0.0,
                },
                ..MixVaeConfig::default()
            },
            "augmentation.width",
        ),
        (
            MixVaeConfig {
                augmentation: Augmentation::Rotation {
                    degrees: 20.0,
                    width: 28,
                    shift: -1.0,
                    scale: 0.0,
                },
                ..MixVaeConfig::default()
            },
            "augmentation.shift",
        ),
        (
            MixVaeConfig {
                augmentation: Augmentation::Rotation {
                    degrees: 20.0,
                    width: 28,
                    shift: 2.0,
                    scale: 1.0,
                },
                ..MixVaeConfig::default()
            },
            "augmentation.scale",
        ),
        (
            MixVaeConfig {
                augmentation: Augmentation::Generator(GeneratorConfig {
                    epochs: 0,
                    ..GeneratorConfig::default()
                }),
                ..MixVaeConfig::default()
            },
            "augmentation.epochs",
        ),
    ];
    let x = Array2::<f32>::zeros((10, 3));
    for (config, field) in cases {
        match fit(&x, &config, &mut Quiet) {
            Err(MixVaeError::Config { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected a config error, got {other:?}"),
        }
    }
    assert!(MixVaeConfig::default().validate().is_ok());
    // Rotation needs rows of whole images: 3 features are not rows of 2 pixels.
    let rotation = MixVaeConfig {
        augmentation: Augmentation::Rotation {
            degrees: 20.0,
            width: 2,
            shift: 0.0,
            scale: 0.0,
        },
        ..MixVaeConfig::default()
    };
    let err = fit(&x, &rotation, &mut Quiet).unwrap_err();
    assert!(err.to_string().contains("augmentation.width"), "{err}");
    // Bad data: too few cells, non-finite values.
    let one = Array2::<f32>::zeros((1, 3));
    assert!(matches!(
        fit(&one, &MixVaeConfig::default(), &mut Quiet),
        Err(MixVaeError::Data(_))
    ));
    let mut nan = Array2::<f32>::zeros((4, 3));
    nan[[2, 1]] = f32::NAN;
    let err = fit(&nan, &MixVaeConfig::default(), &mut Quiet).unwrap_err();
    assert!(err.to_string().contains("cell 2, feature 1"), "{err}");
}

/// The bits of every epoch's total loss, for comparing fits exactly.
fn loss_bits(fit: &MixVaeFit) -> Vec<u64> {
    fit.losses.iter().map(|l| l.total.to_bits()).collect()
}

#[test]
fn the_same_seed_gives_the_same_fit() {
    let (x, _) = gaussian_mixture(3, 30, 10, 1.0, 2);
    let config = MixVaeConfig {
        epochs: 5,
        ..small_config(2, 3)
    };
    let a = fit(&x, &config, &mut Quiet).unwrap();
    let b = fit(&x, &config, &mut Quiet).unwrap();
    assert_eq!(loss_bits(&a), loss_bits(&b));
    assert_eq!(a.agents, b.agents);
    assert_eq!(a.consensus, b.consensus);
    let c = fit(&x, &MixVaeConfig { seed: 4, ..config }, &mut Quiet).unwrap();
    assert_ne!(loss_bits(&a), loss_bits(&c));
}

#[test]
fn agents_that_also_see_the_originals_train_on_both_and_recover_the_components() {
    // With the originals, each agent's batch is the samples followed by its
    // augmented copies (MMIDAS's concat(x, x_aug)): a different fit from the
    // same seed, still reproducible, and still one that finds every component.
    let (x, labels) = gaussian_mixture(4, 80, 20, 1.0, 11);
    let copies_only = small_config(2, 4);
    let config = MixVaeConfig {
        with_originals: true,
        ..copies_only.clone()
    };
    let a = fit(&x, &config, &mut Quiet).unwrap();
    let b = fit(&x, &config, &mut Quiet).unwrap();
    let plain = fit(&x, &copies_only, &mut Quiet).unwrap();
    assert_eq!(loss_bits(&a), loss_bits(&b));
    assert_ne!(loss_bits(&a), loss_bits(&plain));
    let ari = adjusted_rand_index(&a.consensus, &labels);
    assert!(ari > 0.9, "ARI {ari}, sizes {:?}", a.category_sizes);
    assert!(a.agreement > 0.9, "agreement {}", a.agreement);
    // The originals are clean rows: they add reconstruction error no larger
    // than the noisy copies', so the per-row mean cannot blow up.
    let last = |f: &MixVaeFit| f.losses.last().unwrap().reconstruction;
    assert!(
        last(&a) < 2.0 * last(&plain),
        "{} against {}",
        last(&a),
        last(&plain)
    );
}

/// Writes `config` as RON, checks that the text holds `written`, and reads
/// it back unchanged.
fn assert_round_trip(config: &MixVaeConfig, written: &str) {
    let text = ron::to_string(config).unwrap();
    assert!(text.contains(written), "{text}");
    assert_eq!(&ron::from_str::<MixVaeConfig>(&text).unwrap(), config);
}

#[test]
fn the_originals_setting_is_written_only_when_on() {
    // Experiments written before the setting existed keep their text, and
    // with it their fingerprints.
    let off = ron::to_string(&MixVaeConfig::default()).unwrap();
    assert!(!off.contains("with_originals"), "{off}");
    let on = MixVaeConfig {
        with_originals: true,
        ..MixVaeConfig::default()
    };
    assert_round_trip(&on, "with_originals:true");
}

#[test]
fn a_rotation_writes_its_shift_and_scale_only_when_set() {
    // Rotation-only experiments keep their text (and fingerprints); a shift
    // and a change of size round-trip.
    let rotation = |shift, scale| MixVaeConfig {
        augmentation: Augmentation::Rotation {
            degrees: 20.0,
            width: 28,
            shift,
            scale,
        },
        ..MixVaeConfig::default()
    };
    let plain = ron::to_string(&rotation(0.0, 0.0)).unwrap();
    assert!(plain.contains("Rotation(degrees:20.0,width:28)"), "{plain}");
    let read: MixVaeConfig =
        ron::from_str("(augmentation: Rotation(degrees: 20.0, width: 28))").unwrap();
    assert_eq!(read, rotation(0.0, 0.0));
    assert_round_trip(&rotation(2.0, 0.1), "shift:2.0,scale:0.1");
}

/// The single fit from each restart's seed of `config`, in order.
fn each_restart_alone(x: &Array2<f32>, config: &MixVaeConfig) -> Vec<MixVaeFit> {
    restart_seeds(config.seed, config.restarts)
        .into_iter()
        .map(|seed| {
            let one = MixVaeConfig {
                seed,
                restarts: 1,
                ..config.clone()
            };
            fit(x, &one, &mut Quiet).unwrap()
        })
        .collect()
}

#[test]
fn restarts_keep_the_fit_whose_agents_agree_most() {
    // Overlapping components and short training, so restarts end apart.
    let (x, _) = gaussian_mixture(4, 40, 10, 2.5, 21);
    let config = MixVaeConfig {
        epochs: 8,
        restarts: 3,
        ..small_config(2, 4)
    };
    let mut recorder = Recorder::default();
    let restarted = fit(&x, &config, &mut recorder).unwrap();
    let stages: Vec<String> = recorder
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Stage { name, .. } if name.starts_with("mixVAE") => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        stages,
        (1..=3)
            .map(|r| format!("mixVAE, 2 agent(s), restart {r} of 3"))
            .collect::<Vec<_>>()
    );
    // Every restart is the single fit from its seed; restart 0 from the
    // seed itself.
    let seeds = restart_seeds(config.seed, 3);
    assert_eq!(seeds[0], config.seed);
    assert_eq!(seeds.len(), 3);
    let singles = each_restart_alone(&x, &config);
    let agreements: Vec<f64> = singles.iter().map(|f| f.agreement).collect();
    assert_eq!(restarted.restart_scores, agreements);
    assert!(
        agreements.windows(2).any(|w| w[0] != w[1]),
        "restarts should end apart: {agreements:?}"
    );
    // The kept fit is the first of the most agreeing ones, all of it.
    let best = agreements.iter().copied().fold(f64::MIN, f64::max);
    let chosen = agreements.iter().position(|&a| a == best).unwrap();
    assert_eq!(restarted.chosen_restart, chosen);
    assert_eq!(restarted.agreement, best);
    assert_eq!(restarted.consensus, singles[chosen].consensus);
    assert_eq!(restarted.losses, singles[chosen].losses);
    assert_eq!(singles[0].restart_scores, [singles[0].agreement]);
}

#[test]
fn augment_consistency_is_the_share_of_copies_that_keep_their_cells_category() {
    let (x, _) = gaussian_mixture(3, 40, 10, 1.5, 8);
    let config = MixVaeConfig {
        epochs: 10,
        ..small_config(2, 3)
    };
    let (fitted, mut trained) = fit_keeping(&x, &config, &mut Quiet).unwrap();
    let copy = fitted.augmented.as_ref().unwrap();
    let on_copy = trained.assign(copy.view()).unwrap();
    let expected = fitted
        .agents
        .iter()
        .zip(&on_copy.agents)
        .map(|(own, copied)| {
            let same = own
                .category
                .iter()
                .zip(&copied.category)
                .filter(|(a, b)| a == b)
                .count();
            same as f64 / own.category.len() as f64
        })
        .sum::<f64>()
        / 2.0;
    let consistency = fitted.augment_consistency.unwrap();
    assert!((consistency - expected).abs() < 1e-12);
    // Noise of SD 0.3 against components 1.5 SDs apart moves few cells.
    assert!(consistency > 0.5 && consistency < 1.0, "{consistency}");
    // Without augmentation there is no copy to be consistent with.
    let plain = MixVaeConfig {
        augmentation: Augmentation::None,
        ..config
    };
    let without = fit(&x, &plain, &mut Quiet).unwrap();
    assert_eq!(without.augment_consistency, None);
}

#[test]
fn restarts_picked_by_consistency_keep_the_most_consistent_fit_even_for_one_agent() {
    let (x, _) = gaussian_mixture(4, 40, 10, 2.5, 21);
    let config = MixVaeConfig {
        epochs: 8,
        restarts: 3,
        restart_by: RestartCriterion::Consistency,
        ..small_config(1, 4)
    };
    let restarted = fit(&x, &config, &mut Quiet).unwrap();
    let consistencies: Vec<f64> = each_restart_alone(&x, &config)
        .iter()
        .map(|f| f.augment_consistency.unwrap())
        .collect();
    assert_eq!(restarted.restart_scores, consistencies);
    assert!(
        consistencies.windows(2).any(|w| w[0] != w[1]),
        "{consistencies:?}"
    );
    let best = consistencies.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(restarted.augment_consistency, Some(best));
    assert_eq!(
        restarted.chosen_restart,
        consistencies.iter().position(|&c| c == best).unwrap()
    );
}

#[test]
fn restarts_need_what_picks_them_and_are_written_only_when_asked() {
    let x = Array2::<f32>::zeros((10, 3));
    let by_consistency_without_copies = MixVaeConfig {
        restarts: 2,
        restart_by: RestartCriterion::Consistency,
        augmentation: Augmentation::None,
        ..MixVaeConfig::default()
    };
    let cases = [
        MixVaeConfig {
            restarts: 0,
            ..MixVaeConfig::default()
        },
        // Agreement needs a second agent.
        MixVaeConfig {
            agents: 1,
            restarts: 2,
            ..MixVaeConfig::default()
        },
        by_consistency_without_copies,
    ];
    for config in cases {
        match fit(&x, &config, &mut Quiet) {
            Err(MixVaeError::Config { field, .. }) => assert_eq!(field, "restarts"),
            other => panic!("{config:?}: {other:?}"),
        }
    }
    let by_consistency = MixVaeConfig {
        restarts: 2,
        restart_by: RestartCriterion::Consistency,
        augmentation: Augmentation::Dropout { rate: 0.1 },
        ..MixVaeConfig::default()
    };
    assert_round_trip(&by_consistency, "restart_by:Consistency");
    let single = ron::to_string(&MixVaeConfig::default()).unwrap();
    assert!(
        !single.contains("restarts") && !single.contains("restart_by"),
        "{single}"
    );
    let three = MixVaeConfig {
        restarts: 3,
        ..MixVaeConfig::default()
    };
    assert_round_trip(&three, "restarts:3");
}

#[test]
fn a_fit_on_an_f64_table_equals_the_fit_on_its_f32_copy() {
    // The runner hands the model the prepared `f64` table, whose rows it
    // gathers as `f32`; that must be the fit of the converted copy, bit for bit,
    // with augmentation (its copy of every cell) and revival included.
    let (x, _) = gaussian_mixture(3, 30, 10, 1.0, 5);
    let table: Array2<f64> = x.mapv(|v| f64::from(v) * 1.1 + 0.3);
    let copy: Array2<f32> = table.mapv(|v| v as f32);
    let config = MixVaeConfig {
        epochs: 12,
        revive_every: 5,
        ..small_config(2, 5)
    };
    let from_table = fit(&table, &config, &mut Quiet).unwrap();
    let from_copy = fit(&copy, &config, &mut Quiet).unwrap();
    assert_eq!(loss_bits(&from_table), loss_bits(&from_copy));
    assert_eq!(from_table.agents, from_copy.agents);
    assert_eq!(from_table.consensus, from_copy.consensus);
    assert_eq!(from_table.augmented, from_copy.augmented);
    assert!(from_table.augmented.is_some());
    let rows: Vec<usize> = (0..copy.nrows()).collect();
    let labels: Vec<usize> = rows.iter().map(|r| r % 3).collect();
    let augmented = from_copy.augmented.as_ref().unwrap().view();
    assert_eq!(
        label_preservation(table.view(), augmented, &rows, &labels).unwrap(),
        label_preservation(copy.view(), augmented, &rows, &labels).unwrap()
    );
}

#[test]
fn a_session_experiment_reports_metrics_confusion_curves_and_detail() {
    use patchbench::session::ResultDetail;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = patchbench::data::simulate::SimulationConfig {
        seed: 4,
        cells: 160,
        genes: 120,
        ..Default::default()
    };
    patchbench::data::simulate::simulate(&config)
        .and_then(|d| d.write(&data))
        .expect("simulated files");
    let text = r#"(
  version: 1,
  datasets: [(
    name: "sim",
    modalities: [(name: "T", path: "data/gene_counts.csv", orientation: FeaturesByCells,
      recipe: (steps: [ExcludeFeatures(pattern: "^ERCC-"), LibrarySizeNormalise, Log2p1], standardise: None))],
    metadata: (path: "data/metadata.csv", id_column: "cell_id"),
  )],
  experiments: [(
    name: "mix",
    dataset: "sim",
    modalities: ["T"],
    model: MixVae(labels: Some("rna_family"), seeds: [1, 2],
      model: (agents: 2, categories: 3, hidden: 16, hidden_layers: 1, epochs: 3, batch_size: 64)),
  )],
)"#;
    let session =
        patchbench::session::parse(text, std::path::Path::new("mix.ron")).expect("valid session");
    let prepared =
        patchbench::runner::load_dataset(&session.datasets[0], dir.path()).expect("loads");
    let mut recorder = Recorder::default();
    let result =
        patchbench::runner::run_experiment(&session.experiments[0], &prepared, &mut recorder)
            .expect("runs");
    for key in [
        "accuracy",
        "ari",
        "ami",
        "amp",
        "agent_agreement",
        "seconds",
    ] {
        assert!(result.metrics[key].is_finite(), "{key}");
    }
    assert_eq!(result.metrics["seeds"], 2.0);
    assert_eq!(result.per_fold.len(), 2);
    assert_eq!(result.confusions.len(), 1);
    // Cells with an expression profile (the simulation also has E-only cells).
    let cells = prepared.data.modality("T").expect("T").table.cells().len();
    assert_eq!(result.confusions[0].total(), cells as u64);
    assert!(
        result
            .curves
            .iter()
            .any(|c| c.name == "loss" && c.values.len() == 3)
    );
    assert_eq!(result.latent.as_ref().map(|l| l.dims), Some(2));
    let ResultDetail::MixVae {
        category_sizes,
        assignments,
        traversals,
        ..
    } = &result.detail
    else {
        panic!("expected the mixVAE detail");
    };
    assert_eq!(category_sizes.len(), 2);
    assert_eq!(category_sizes[0].iter().sum::<usize>(), cells);
    assert_eq!(assignments.len(), 2);
    assert!(
        traversals
            .iter()
            .all(|t| t.features.iter().all(|f| !f.name.is_empty()))
    );
    // The result survives a RON round trip inside the session.
    let mut saved = session.clone();
    saved.experiments[0].result = Some(result);
    let again = patchbench::session::parse(
        &patchbench::session::to_ron(&saved).expect("ron"),
        std::path::Path::new("mix.ron"),
    )
    .expect("parses back");
    assert_eq!(again, saved);
}

#[test]
fn the_tensor_backend_trains_the_agents_like_the_dense_engine() {
    // Three components, five categories and re-seeding every two epochs of
    // the second half: the fit reloads the re-seeded weights onto the device
    // and trains on.
    let (x, _) = gaussian_mixture(3, 40, 10, 1.0, 5);
    let base = MixVaeConfig {
        epochs: 8,
        revive_every: 2,
        ..small_config(2, 5)
    };
    // The per-category state prior and samples coupled (the defaults), then
    // the standard prior, probabilities coupled, a double softmax and a ReLU output.
    let variants = [
        base.clone(),
        MixVaeConfig {
            softmax: SoftmaxMode::Double { tau: 0.5 },
            coupling_input: CouplingInput::Probabilities,
            state_prior: StatePrior::Standard,
            output: Output::Relu,
            ..base.clone()
        },
        MixVaeConfig {
            with_originals: true,
            ..base
        },
    ];
    for config in variants {
        assert_the_tensor_backend_fits_like_the_dense_engine(&x, &config);
    }
}

/// Fits `config` on `x` on the dense engine and on the tensor backend (on
/// the CPU) and checks that the losses of every epoch and the category
/// probabilities agree within 1e-4 (relative), with the same categories,
/// consensus and re-seeding; the two paths are not bit for bit the same.
fn assert_the_tensor_backend_fits_like_the_dense_engine(x: &Array2<f32>, config: &MixVaeConfig) {
    let (dense, _) = fit_keeping_on(x, config, Engine::Dense, &mut Quiet).unwrap();
    let (tensor, _) = fit_keeping_on(x, config, Engine::TensorCpu, &mut Quiet).unwrap();
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1e-2),
            "{:?} {what}: dense {a}, tensor {b}",
            config.state_prior
        );
    };
    assert_eq!(dense.losses.len(), config.epochs);
    assert_eq!(dense.losses.len(), tensor.losses.len());
    for (epoch, (a, b)) in dense.losses.iter().zip(&tensor.losses).enumerate() {
        close(a.total, b.total, &format!("total at epoch {epoch}"));
        close(
            a.reconstruction,
            b.reconstruction,
            &format!("reconstruction at {epoch}"),
        );
        close(a.kl, b.kl, &format!("KL at {epoch}"));
        close(a.distance, b.distance, &format!("distance at {epoch}"));
        close(a.entropy, b.entropy, &format!("entropy at {epoch}"));
    }
    // Not the same path: the dense engine's results are not bit for bit the tensor backend's.
    assert_ne!(dense.losses, tensor.losses);
    assert!(dense.revived > 0, "nothing was re-seeded");
    assert_eq!(dense.revived, tensor.revived);
    assert_eq!(dense.consensus, tensor.consensus);
    assert_eq!(dense.agents.len(), tensor.agents.len());
    for (a, b) in dense.agents.iter().zip(&tensor.agents) {
        assert_eq!(a.category, b.category);
        for (p, q) in a.probabilities.iter().zip(&b.probabilities) {
            close(f64::from(*p), f64::from(*q), "a category probability");
        }
    }
}

#[test]
fn the_tensor_backend_trains_a_shared_network_like_the_dense_engine() {
    // Three agents on one network: each piece on the device repeats an
    // agent's forward pass before its backward pass and sums the three
    // agents' gradients before one Adam step, as the dense engine sums them;
    // re-seeding reloads the shared weights onto the device.
    let (x, _) = gaussian_mixture(3, 30, 10, 1.0, 7);
    let base = MixVaeConfig {
        shared: true,
        epochs: 6,
        revive_every: 2,
        ..small_config(3, 4)
    };
    let variants = [
        base.clone(),
        MixVaeConfig {
            state_prior: StatePrior::Standard,
            coupling_input: CouplingInput::Probabilities,
            ..base
        },
    ];
    for config in variants {
        assert_the_tensor_backend_fits_like_the_dense_engine(&x, &config);
    }
}
