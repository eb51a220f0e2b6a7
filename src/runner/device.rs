//! The device an experiment runs on, checked before any training.

use super::RunError;
use crate::nn::{Device, DeviceChoice};
use crate::session::Experiment;

/// The device `experiment`'s networks will train on. The CPU is always
/// available; any other device is refused with an error naming the
/// experiment and the `protocol.device` setting: when it cannot be opened
/// here (a build without the `cuda` feature, a machine without a usable
/// GPU), and otherwise because every model trains on the CPU's dense engine
/// or linear algebra, which has no GPU backend yet. A run never falls back
/// to the CPU silently.
pub(super) fn resolve(experiment: &Experiment) -> Result<DeviceChoice, RunError> {
    let requested = experiment.protocol.device;
    if requested == DeviceChoice::Cpu {
        return Ok(requested);
    }
    let why = match Device::open(requested) {
        Err(error) => format!("which cannot be used: {error}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::mixvae::MixVaeConfig;
    use crate::models::srrr::SrrrConfig;
    use crate::session::{MixVaeSpec, ModelSpec, Protocol};

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
