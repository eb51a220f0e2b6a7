//! The device an experiment runs on, checked before any training.

use super::RunError;
use crate::nn::{Device, DeviceChoice};
use crate::progress::{Event, Sink};
use crate::session::{Experiment, ModelSpec};

/// The device `experiment`'s networks will train on: the protocol's
/// `device` when the model trains on [`crate::nn`] and that device can be
/// opened here, the CPU for models without a GPU path (said on `sink`), and a
/// clear error naming the setting when the device is unavailable (a build
/// without the `cuda` feature, or a machine without a usable GPU).
pub(super) fn resolve(
    experiment: &Experiment,
    sink: &mut dyn Sink,
) -> Result<DeviceChoice, RunError> {
    let requested = experiment.protocol.device;
    if requested == DeviceChoice::Cpu {
        return Ok(requested);
    }
    match &experiment.model {
        ModelSpec::Cae { .. } | ModelSpec::MixVae(_) => match Device::open(requested) {
            Ok(_) => Ok(requested),
            Err(error) => Err(RunError::Unsuitable {
                experiment: experiment.name.clone(),
                message: format!(
                    "the device setting `protocol.device` (or `--device`) asks for {requested}, \
                     which cannot be used: {error}; set `device: Cpu` or pass `--device cpu`"
                ),
            }),
        },
        ModelSpec::Srrr(_) | ModelSpec::Sbnn(_) | ModelSpec::PcCca { .. } => {
            sink.event(Event::Message(format!(
                "{} has no GPU path: it runs on the CPU although the device setting asks for {requested}",
                experiment.model.kind()
            )));
            Ok(DeviceChoice::Cpu)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::mixvae::MixVaeConfig;
    use crate::models::srrr::SrrrConfig;
    use crate::session::{MixVaeSpec, Protocol};

    struct Messages(Vec<String>);

    impl Sink for Messages {
        fn event(&mut self, event: Event) {
            if let Event::Message(text) = event {
                self.0.push(text);
            }
        }
    }

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
        let mut sink = Messages(Vec::new());
        let device = resolve(&experiment(mixvae(), DeviceChoice::Cpu), &mut sink).unwrap();
        assert_eq!(device, DeviceChoice::Cpu);
        assert!(sink.0.is_empty());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_names_the_setting() {
        let mut sink = Messages(Vec::new());
        let err = resolve(&experiment(mixvae(), DeviceChoice::Cuda(0)), &mut sink).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("experiment `exp`"), "{text}");
        assert!(text.contains("protocol.device"), "{text}");
        assert!(text.contains("cuda:0"), "{text}");
        assert!(text.contains("without the `cuda` feature"), "{text}");
    }

    #[test]
    fn models_without_a_gpu_path_run_on_the_cpu_and_say_so() {
        let mut sink = Messages(Vec::new());
        let srrr = ModelSpec::Srrr(SrrrConfig::default());
        let device = resolve(&experiment(srrr, DeviceChoice::Cuda(1)), &mut sink).unwrap();
        assert_eq!(device, DeviceChoice::Cpu);
        assert_eq!(sink.0.len(), 1);
        assert!(sink.0[0].contains("srrr has no GPU path"), "{:?}", sink.0);
        assert!(sink.0[0].contains("cuda:1"), "{:?}", sink.0);
    }
}
