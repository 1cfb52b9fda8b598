//! The paper's measure of the current weights, shared with the helpers on the CPU backend.

use super::*;

fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// The measure with helpers computing batches too (`pool`); `None` when the weights are too
/// large to copy (or the helpers are taken, which jobs running one at a time should prevent).
async fn probe_shared(
    pool: &Pool,
    lm: &LanguageModel,
    current: &MaskedLm,
    generation: u64,
    files: &ModelBytes,
    input: MeasureInput<'_>,
    report: &mut dyn FnMut(Progress),
) -> Result<Option<(ProbeResult, usize)>, Error> {
    let Some(claim) = pool.claim() else {
        return Ok(None);
    };
    if pool.generation() != Some(generation) {
        // Tuned weights: the helpers get a copy (the loaded ones were sent at load).
        let weights = current.to_safetensors_f32().await?;
        if pool::helpers_for(&weights) < pool.size() {
            return Ok(None);
        }
        pool.load(generation, files.config.clone(), weights);
    }
    let plan = SentencePlan::new(&lm.tokenizer, input, lm.max_len())?;
    let batches = plan.batches(ProbeSettings::default().batch_size);
    let total = plan.sentences.len();
    let (log_probs, threads) = claim
        .log_probs(
            &plan,
            &batches,
            generation,
            current,
            lm.tokenizer.pad_id(),
            &mut |done| report(Progress { done, total }),
        )
        .await?;
    Ok(Some((log_probs.score(&plan, input)?, threads)))
}

pub(super) async fn probe(
    s: &Session,
    job: u64,
    split: walf_lab::data::Split,
    edits: &BenchmarkEdits,
) -> Result<(), Error> {
    let (lm, current, files) = loaded(s)?;
    let generation = s.model.borrow().as_ref().map_or(0, |m| m.generation);
    let bench = edits.benchmark()?;
    let data = bench.split(split);
    if data.professions.is_empty() {
        return Err(Error::Input(format!(
            "the {} split has no professions",
            split.label()
        )));
    }
    let started = now_seconds();
    mark("probe started");
    let mut report = |p: Progress| progress(Some(job), "measuring", p.done as u64, p.total as u64);
    let pool = s.on_cpu().then(|| s.pool.borrow().clone()).flatten();
    let shared = match pool.filter(|p| p.alive()) {
        Some(pool) => {
            let input = data.input();
            probe_shared(&pool, &lm, &current, generation, &files, input, &mut report).await?
        }
        None => None,
    };
    let (result, threads) = match shared {
        Some(shared) => shared,
        None => {
            let settings = ProbeSettings::default();
            let result = lm
                .probe_weights(&current, data.input(), settings, &mut report)
                .await?;
            (result, 1)
        }
    };
    let reply = ProbeReply {
        split,
        professions: result.professions.iter().map(ProfessionRow::from).collect(),
        scores: result
            .raw
            .iter()
            .map(|r| ScoreRow {
                template_id: r.template_id.clone(),
                profession: r.profession.clone(),
                word: r.gendered_word.clone(),
                gender: r.gender,
                score: r.score,
            })
            .collect(),
        forward_sentences: result.forward_sentences,
        seconds: now_seconds() - started,
        threads,
    };
    mark("probe finished");
    post(&Reply::Probed { job, result: reply });
    Ok(())
}
