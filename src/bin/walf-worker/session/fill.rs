//! Fill-mask with the current weights, and the benchmark's gendered words at each mask.

use super::*;

pub(super) async fn fill(s: &Session, job: u64, text: &str, top: usize) -> Result<(), Error> {
    let (lm, current, _) = loaded(s)?;
    let predictions = lm
        .fill_mask_weights(&current, text, top.clamp(1, 50))
        .await?;
    // The benchmark's words, as `walf fill` prints them; a word of several pieces has no one
    // probability at a mask.
    let words = lm.single_token_words(Benchmark::bundled().gendered_words());
    let masks = predictions
        .into_iter()
        .map(|p| MaskFill {
            position: p.position,
            gender_words: words
                .iter()
                .map(|(word, gender, id)| GenderedWord {
                    word: word.clone(),
                    gender: *gender,
                    probability: p.probabilities.get(*id as usize).copied().unwrap_or(0.0) as f64,
                })
                .collect(),
            top: p
                .top
                .into_iter()
                .map(|t| TokenProbability {
                    token: t.token,
                    id: t.id,
                    probability: t.probability,
                })
                .collect(),
        })
        .collect();
    post(&Reply::Filled { job, masks });
    Ok(())
}
