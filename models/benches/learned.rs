//! Cost of a learned window model: scoring one feature vector, and fitting a model.
//!
//! What it proves: scoring a closed feature window with a fitted Gaussian mixture of the size `vigil
//! train` produces (28 features, up to 4 full-covariance components) costs a couple of microseconds —
//! and it happens once per agent per window (300 s of event time), not per event — so scoring cannot
//! cost replay throughput; what models cost per event is the feature bookkeeping, measured end to end
//! (replay with and without `--models`) in `models/README.md`. The second benchmark is the fit itself
//! (linfa EM with k-means initialisation, components 1 to 4 chosen by BIC, calibration) on 4,000
//! vectors, about the size of the largest class of a 24-hour, 200-agent training fleet.
//!
//! Read the scoring result as vectors/s (`Throughput::Elements`); ns/vector = 1e9 / that.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use vigil_models::learned::{fit, FitOptions, Scorer};

const FEATURES: usize = 28;

/// Deterministic vectors with a few clusters and correlated features, like window features.
fn vectors(n: usize) -> (Vec<Vec<f64>>, Vec<u64>) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut uni = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut rows = Vec::with_capacity(n);
    let mut groups = Vec::with_capacity(n);
    for i in 0..n {
        let cluster = (i % 4) as f64;
        let base: Vec<f64> = (0..4).map(|_| (0..4).map(|_| uni()).sum::<f64>() - 2.0).collect();
        let row = (0..FEATURES)
            .map(|f| cluster * (f % 3) as f64 + base[f % 4] * (1.0 + f as f64 / 10.0) + uni() * 0.3)
            .collect();
        rows.push(row);
        groups.push((i % 40) as u64);
    }
    (rows, groups)
}

fn options() -> FitOptions {
    let names: Vec<String> = (0..FEATURES).map(|i| format!("f{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut o = FitOptions::new("window", "bench", 1, &refs);
    o.one_sided = (0..FEATURES).collect();
    o
}

fn bench(c: &mut Criterion) {
    let (rows, groups) = vectors(4000);
    let (artifact, report) = fit(&rows, &groups, &options()).expect("the bench data fits");
    let scorer = Scorer::new(&artifact).expect("a fitted model loads");
    let probe: Vec<Vec<f64>> = rows.iter().step_by(37).take(64).cloned().collect();
    let mut g = c.benchmark_group("learned");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("score_window_{FEATURES}f_{}c", report.components), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % probe.len();
            black_box(scorer.score(black_box(&probe[i])))
        })
    });
    g.sample_size(10);
    g.bench_function("fit_4000_windows", |b| b.iter(|| black_box(fit(&rows, &groups, &options()).unwrap())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
