//! The device an experiment runs on, checked before any training.

use super::RunError;
use crate::nn::{Device, DeviceChoice};
use crate::session::{Experiment, ModelSpec};

/// The device `experiment`'s networks will train on. The CPU is always
/// available; a GPU is accepted for a model with a GPU backend
/// ([`trains_on_the_gpu`]) when it can be opened. Otherwise the device is
/// refused with an error naming the experiment and the `protocol.device`
/// setting: when it cannot be opened here (a build without the `cuda`
/// feature, a machine without a usable GPU), or when the model trains only
/// on the CPU's linear algebra. A run never falls back to the CPU silently.
pub(super) fn resolve(experiment: &Experiment) -> Result<DeviceChoice, RunError> {
    let requested = experiment.protocol.device;
    if requested == DeviceChoice::Cpu {
        return Ok(requested);
    }
    let why = match Device::open(requested) {
        Err(error) => format!("which cannot be used: {error}"),
        Ok(_) if trains_on_the_gpu(&experiment.model) => return Ok(requested),
        Ok(_) => format!(
            "but {} trains only on the CPU (its engine has no GPU backend yet)",
            experiment.model.kind()
        ),
    };
    Err(RunError::Unsuitable {
        experiment: experiment.name.clone(),
        message: format!(
            "the device setting `protocol.device` (or `--device`) asks for {requested}, \
             {why}; set `device: Cpu` or pass `--device cpu`"
        ),
    })
}

/// Whether `model` has a GPU backend: the sBNN, the k-CAE and the mixture
/// VAE (one network per agent or one shared by all) train on the dense
/// engine's tensor backend ([`crate::nn::dense::Engine::Cuda`]); the other
/// models train only on the CPU.
fn trains_on_the_gpu(model: &ModelSpec) -> bool {
    matches!(
        model,
        ModelSpec::Sbnn(_) | ModelSpec::Cae { .. } | ModelSpec::MixVae(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::mixvae::MixVaeConfig;
    use crate::models::sbnn::SbnnConfig;
    use crate::models::srrr::SrrrConfig;
    use crate::session::{MixVaeSpec, Protocol};

    fn experiment(model: ModelSpec, device: DeviceChoice) -> Experiment {
        Experiment {
            name: "exp".into(),
            dataset: "toy".into(),
            modalities: vec!["T".into()],
            model,
            protocol: Protocol {
                device,
                ..Protocol::default()
            },
            result: None,
        }
    }

    fn mixvae() -> ModelSpec {
        ModelSpec::MixVae(MixVaeSpec {
            labels: None,
            seeds: vec![],
            model: MixVaeConfig::default(),
        })
    }

    #[test]
    fn the_cpu_is_always_available() {
        let device = resolve(&experiment(mixvae(), DeviceChoice::Cpu)).unwrap();
        assert_eq!(device, DeviceChoice::Cpu);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_names_the_setting() {
        let err = resolve(&experiment(mixvae(), DeviceChoice::Cuda(0))).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("experiment `exp`"), "{text}");
        assert!(text.contains("protocol.device"), "{text}");
        assert!(text.contains("cuda:0"), "{text}");
        assert!(text.contains("without the `cuda` feature"), "{text}");
    }

    #[test]
    fn the_sbnn_the_cae_and_the_mixvae_have_a_gpu_backend() {
        assert!(trains_on_the_gpu(&ModelSpec::Sbnn(SbnnConfig::default())));
        let cae = ModelSpec::Cae {
            model: Default::default(),
            analysis: Default::default(),
        };
        assert!(trains_on_the_gpu(&cae));
        assert!(trains_on_the_gpu(&mixvae()));
        assert!(!trains_on_the_gpu(&ModelSpec::Srrr(SrrrConfig::default())));
    }

    #[test]
    fn a_shared_mixvae_network_has_the_gpu_backend() {
        let shared = ModelSpec::MixVae(MixVaeSpec {
            labels: None,
            seeds: vec![],
            model: MixVaeConfig {
                shared: true,
                ..MixVaeConfig::default()
            },
        });
        assert!(trains_on_the_gpu(&shared));
        // Refused here only when the GPU cannot be opened, never for `shared`.
        if let Err(err) = resolve(&experiment(shared, DeviceChoice::Cuda(0))) {
            let text = err.to_string();
            assert!(text.contains("which cannot be used"), "{text}");
            assert!(!text.contains("shared"), "{text}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn the_sbnn_on_cuda_without_the_feature_is_refused_with_the_reason() {
        let sbnn = ModelSpec::Sbnn(SbnnConfig::default());
        let text = resolve(&experiment(sbnn, DeviceChoice::Cuda(0)))
            .unwrap_err()
            .to_string();
        assert!(text.contains("protocol.device"), "{text}");
        assert!(text.contains("without the `cuda` feature"), "{text}");
    }

    #[test]
    fn no_model_falls_back_to_the_cpu_silently() {
        let srrr = ModelSpec::Srrr(SrrrConfig::default());
        for model in [srrr, mixvae()] {
            let kind = model.kind();
            let text = resolve(&experiment(model, DeviceChoice::Cuda(1)))
                .unwrap_err()
                .to_string();
            assert!(text.contains("experiment `exp`"), "{kind}: {text}");
            assert!(text.contains("protocol.device"), "{kind}: {text}");
            assert!(text.contains("cuda:1"), "{kind}: {text}");
        }
    }
}
