//! What every benchmark reports besides its own timings: the machine's load,
//! the process's CPU time (steadier than wall time on a shared machine), the
//! FLOPs of dense layers and the measured single-core GEMM peak.

use std::time::Instant;

/// `/proc/loadavg`'s first three fields, or "unknown".
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".into())
}

/// User plus system CPU seconds of this process so far (all threads), from
/// `/proc/self/stat` in clock ticks of 1/100 s; 0 where it cannot be read.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and
    // stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    fields.iter().sum::<f64>() / 100.0
}

/// Multiply-accumulates of one row through dense layers with these widths.
pub fn macs(widths: &[usize]) -> f64 {
    widths.windows(2).map(|w| (w[0] * w[1]) as f64).sum()
}

/// FLOPs of one training row through trained dense layers with these widths:
/// forward (2·MACs), weight gradients (2·MACs) and input gradients (2·MACs of
/// every layer, less the lowest one's unless `input_gradient`).
pub fn train_flops(widths: &[usize], input_gradient: bool) -> f64 {
    let all = macs(widths);
    let lowest = if input_gradient {
        0.0
    } else {
        (widths[0] * widths[1]) as f64
    };
    2.0 * all + 2.0 * all + 2.0 * (all - lowest)
}

/// The best GFLOP/s of a large single-threaded `f32` matrix product (faer,
/// the kernels the training uses): the practical peak of one core.
pub fn single_core_peak() -> f64 {
    let n = 1024;
    let a = faer::Mat::<f32>::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f32 / 11.0);
    let mut c = faer::Mat::<f32>::zeros(n, n);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        faer::linalg::matmul::matmul(
            c.as_mut(),
            faer::Accum::Replace,
            a.as_ref(),
            a.as_ref(),
            1.0f32,
            faer::Par::Seq,
        );
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (n as f64).powi(3) / best / 1e9
}
