//! Benchmark rows as a user edits them in the page: professions, templates and phrases (three
//! TSV texts, split from the input at 0xff bytes). Never a panic; accepted data splits cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walf_lab::data::{Benchmark, Split};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xff).map(String::from_utf8_lossy);
    let (Some(p), Some(t), Some(g)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    if let Ok(bench) = Benchmark::from_tsv(&p, &t, &g) {
        for split in [Split::Train, Split::Valid, Split::Test, Split::All] {
            let data = bench.split(split);
            assert!(data.professions.iter().all(|x| x.female_share.is_finite()));
        }
    }
});
