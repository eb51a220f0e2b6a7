//! The weight-file target: a trained network saved beside a session
//! (safetensors, `SESSION.weights/EXPERIMENT/final.safetensors`) read back by
//! [`DenseNet::load`]. A loaded network must have consistent layer widths
//! and finite weights. The seeds are the files' JSON headers and data apart
//! ([`unframed`]), so that mutations of the header keep its length prefix
//! right and reach the loader's reading of the metadata.

use std::collections::BTreeMap;
use std::path::Path;

use patchbench::nn::dense::{Activation, DenseLayer, DenseNet};

use super::targets::{Encoding, Outcome, Target, rejected};

/// Networks of one and two layers, saved with the input names the sBNN stores.
pub fn target() -> Target {
    let folder = super::scratch_folder()
        .unwrap_or_else(|e| panic!("a folder for the weight target's seeds: {e}"));
    let layer = |inputs: usize, outputs: usize, activation| DenseLayer {
        inputs,
        outputs,
        weight: (0..inputs * outputs)
            .map(|i| i as f32 / 7.0 - 0.5)
            .collect(),
        bias: (0..outputs).map(|i| i as f32 * 0.1).collect(),
        activation,
        trainable: true,
        bias_l2: true,
    };
    let networks = [
        vec![
            layer(3, 2, Activation::Elu),
            layer(2, 1, Activation::Linear),
        ],
        vec![layer(2, 2, Activation::Linear)],
    ];
    let info = BTreeMap::from([("inputs".to_owned(), "Gad1,Vip,Sst".to_owned())]);
    let seeds = networks
        .into_iter()
        .enumerate()
        .map(|(i, layers)| {
            let path = folder.path().join(format!("seed{i}.safetensors"));
            DenseNet::new(layers)
                .and_then(|network| network.save(&path, &info))
                .unwrap_or_else(|e| panic!("saving a weight seed: {e}"));
            let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            unframed(&file)
        })
        .collect();
    Target::file(
        "weights_dense",
        "final.safetensors",
        seeds,
        Encoding::SafetensorsHeader,
        load_network,
    )
}

/// A safetensors file as its JSON header (keys sorted), a newline and its data.
fn unframed(file: &[u8]) -> Vec<u8> {
    let length = file
        .first_chunk::<8>()
        .map(|prefix| u64::from_le_bytes(*prefix))
        .and_then(|length| usize::try_from(length).ok())
        .filter(|&length| length <= file.len() - 8)
        .unwrap_or_else(|| panic!("a weight seed is not a safetensors file"));
    let (header, data) = file[8..].split_at(length);
    // The header's keys come from a hash map; sorted, the seeds are the same every run.
    let header: serde_json::Value = serde_json::from_slice(header)
        .unwrap_or_else(|e| panic!("a weight seed's header is not JSON: {e}"));
    let header = serde_json::to_vec(&header).unwrap_or_default();
    [&header[..], b"\n", data].concat()
}

/// The inverse of [`unframed`]: the header (up to the first newline) with its
/// length in front, then the data.
pub fn framed(bytes: &[u8]) -> Vec<u8> {
    let split = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let (header, data) = (&bytes[..split], bytes.get(split + 1..).unwrap_or_default());
    let length = u64::try_from(header.len()).unwrap_or(u64::MAX);
    [&length.to_le_bytes()[..], header, data].concat()
}

fn load_network(path: &Path) -> Outcome {
    let network = match DenseNet::load(path) {
        Ok((network, _)) => network,
        Err(error) => return rejected(&error),
    };
    let inconsistent = network.layers.iter().enumerate().find_map(|(i, layer)| {
        let shaped =
            layer.weight.len() == layer.inputs * layer.outputs && layer.bias.len() == layer.outputs;
        let finite = layer
            .weight
            .iter()
            .chain(&layer.bias)
            .all(|v| v.is_finite());
        (!shaped || !finite).then(|| format!("layer {i} loaded inconsistent or not finite"))
    });
    inconsistent.map_or(Outcome::Accepted, Outcome::Violated)
}
