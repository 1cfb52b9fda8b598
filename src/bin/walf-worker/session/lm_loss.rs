//! Masked-LM loss on held-out text under the loaded and the current weights.

use super::*;

pub(super) async fn lm_loss(
    s: &Session,
    job: u64,
    text: &str,
    rule: LossRule,
) -> Result<(), Error> {
    let (lm, current, _) = loaded(s)?;
    let passages = passages(text);
    let mut report = |p: walf_lab::measure::Progress| {
        progress(Some(job), "masked-LM loss", p.done as u64, p.total as u64)
    };
    let settings = LmLossSettings {
        rule,
        ..LmLossSettings::default()
    };
    let before = lm
        .lm_loss_weights(&lm.model, &passages, settings, &mut report)
        .await?;
    let after = lm
        .lm_loss_weights(&current, &passages, settings, &mut report)
        .await?;
    post(&Reply::LmLoss {
        job,
        before: before.loss,
        after: after.loss,
        tokens: before.masked_tokens,
        rule,
    });
    Ok(())
}
