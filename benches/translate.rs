//! Throughput of a translation to FHIR, in records per second: the IKNL example QuestionnaireResponse
//! read (parse, map, validate), then rendered as a transaction Bundle of IKNL PZP resources in FHIR
//! JSON. Separate measurements for the render alone and for FHIR XML show where the time goes.
//!
//! `cargo bench --bench translate`; criterion prints "thrpt" in elements/s, one element being one record.

use std::hint::black_box;

use acp_gateway::intake;
use acp_gateway::render::fhir::{bundle, to_json, to_xml, BundleKind};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/reference/iknl-pzp-r4/resources/QuestionnaireResponse-HendrikHartman-20201001.json"
);

fn translate(c: &mut Criterion) {
    let bytes = std::fs::read(EXAMPLE).unwrap_or_else(|e| panic!("{EXAMPLE}: {e} (keep ../shared beside the project)"));
    let record = intake::read(&bytes).record.expect("the IKNL example reads");

    let mut group = c.benchmark_group("translate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("questionnaire-response to fhir-json", |b| {
        b.iter(|| {
            let read = intake::read(black_box(&bytes));
            // An invalid record would not be translated; the example is valid, so this is the whole path.
            let record = read.record.expect("the IKNL example reads");
            to_json(&bundle(&record, BundleKind::Transaction))
        })
    });
    group.bench_function("record to fhir-json", |b| {
        b.iter(|| to_json(&bundle(black_box(&record), BundleKind::Transaction)))
    });
    group.bench_function("record to fhir-xml", |b| {
        b.iter(|| to_xml(&bundle(black_box(&record), BundleKind::Transaction)))
    });
    group.finish();
}

criterion_group!(benches, translate);
criterion_main!(benches);
