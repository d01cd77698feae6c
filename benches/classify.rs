//! In-process costs: classifying each recorded page (per provider, with bytes/s), loading the
//! specs, and serialising an outcome report.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pairing_worker::engine::classify::classify;
use pairing_worker::kit::fixtures;
use pairing_worker::outcome::{Outcome, TwoFactor};
use pairing_worker::provider::{PortalHosts, Registry};

fn classification(c: &mut Criterion) {
    let registry = Registry::from_source_tree().expect("specs load");
    let real = PortalHosts::real();
    for spec in registry.supported() {
        let pages = fixtures::load(&pairing_worker::kit::fixtures::source_tree(), &spec.id)
            .expect("fixtures load");
        let total: usize = pages.iter().map(|p| p.html.len()).sum();
        let mut group = c.benchmark_group(format!("classify/{}", spec.id));
        // Every page of the provider once: the per-provider cost and its bytes/s.
        group.throughput(Throughput::Bytes(total as u64));
        group.bench_function("all_pages", |b| {
            b.iter(|| {
                for page in &pages {
                    let _ =
                        std::hint::black_box(classify(spec, &page.expected.url, &page.html, &real));
                }
            })
        });
        for page in pages
            .iter()
            .filter(|p| {
                ["login", "dashboard", "home"]
                    .iter()
                    .any(|k| p.case.contains(k))
            })
            .take(3)
        {
            group.throughput(Throughput::Bytes(page.html.len() as u64));
            group.bench_with_input(BenchmarkId::new("page", &page.case), page, |b, page| {
                b.iter(|| classify(spec, &page.expected.url, &page.html, &real))
            });
        }
        group.finish();
    }
}

fn spec_loading(c: &mut Criterion) {
    c.bench_function("load_all_specs", |b| {
        b.iter(|| Registry::from_source_tree().expect("specs load"))
    });
}

fn outcome_serialisation(c: &mut Criterion) {
    let outcome = Outcome::TwoFactor(TwoFactor::CodeRequired);
    c.bench_function("outcome_to_json", |b| {
        b.iter(|| serde_json::to_string(&std::hint::black_box(outcome)).expect("serialises"))
    });
}

criterion_group!(benches, classification, spec_loading, outcome_serialisation);
criterion_main!(benches);
