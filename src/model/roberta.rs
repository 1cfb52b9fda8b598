//! `RobertaForMaskedLM`: BERT's encoder under the `roberta.` prefix, positions numbered from
//! `padding_idx + 1` (see `ModelConfig::position_offset`), and the `lm_head` naming.

use super::{LmHead, Loader, MaskedLm, bert};
use crate::config::{Architecture, ModelConfig};
use crate::error::Result;

pub(super) fn load(config: &ModelConfig, loader: &Loader) -> Result<MaskedLm> {
    let h = config.hidden_size;
    let (decoder, bias) = bert::decoder_and_bias(config, loader, "lm_head")?;
    Ok(MaskedLm {
        embeddings: bert::embeddings(config, loader, "roberta")?,
        layers: bert::encoder(config, loader, "roberta")?,
        head: LmHead {
            dense: loader.linear("lm_head.dense", h, h)?,
            norm: loader.layer_norm("lm_head.layer_norm", h, config.layer_norm_eps)?,
            decoder,
            bias,
            activation: config.hidden_act,
        },
        architecture: Architecture::Roberta,
        checkpoint: loader.checkpoint(),
    })
}
