//! `DistilBertForMaskedLM`: no token types, its own tensor names, the same post-LN block.

use super::{Embeddings, EncoderLayer, LmHead, Loader, MaskedLm, SelfAttention};
use crate::config::{Architecture, ModelConfig};
use crate::error::Result;

pub(super) fn load(config: &ModelConfig, loader: &Loader) -> Result<MaskedLm> {
    let (h, i, eps) = (
        config.hidden_size,
        config.intermediate_size,
        config.layer_norm_eps,
    );
    let embeddings = Embeddings {
        word: loader.matrix(
            "distilbert.embeddings.word_embeddings.weight",
            config.vocab_size,
            h,
        )?,
        position: loader.matrix(
            "distilbert.embeddings.position_embeddings.weight",
            config.max_position_embeddings,
            h,
        )?,
        token_type: None,
        norm: loader.layer_norm("distilbert.embeddings.LayerNorm", h, eps)?,
        dropout: super::dropout(config.hidden_dropout),
        position_offset: 0,
    };
    let layers = (0..config.num_hidden_layers)
        .map(|n| {
            let p = format!("distilbert.transformer.layer.{n}");
            Ok(EncoderLayer {
                attention: SelfAttention {
                    query: loader.linear(&format!("{p}.attention.q_lin"), h, h)?,
                    key: loader.linear(&format!("{p}.attention.k_lin"), h, h)?,
                    value: loader.linear(&format!("{p}.attention.v_lin"), h, h)?,
                    output: loader.linear(&format!("{p}.attention.out_lin"), h, h)?,
                    dropout: super::dropout(config.attention_dropout),
                    heads: config.num_attention_heads,
                },
                attention_norm: loader.layer_norm(&format!("{p}.sa_layer_norm"), h, eps)?,
                intermediate: loader.linear(&format!("{p}.ffn.lin1"), h, i)?,
                output: loader.linear(&format!("{p}.ffn.lin2"), i, h)?,
                output_norm: loader.layer_norm(&format!("{p}.output_layer_norm"), h, eps)?,
                dropout: super::dropout(config.hidden_dropout),
                activation: config.hidden_act,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let decoder = if config.tie_word_embeddings {
        None
    } else {
        Some(loader.matrix("vocab_projector.weight", config.vocab_size, h)?)
    };
    Ok(MaskedLm {
        embeddings,
        layers,
        head: LmHead {
            dense: loader.linear("vocab_transform", h, h)?,
            norm: loader.layer_norm("vocab_layer_norm", h, eps)?,
            decoder,
            bias: loader.vector("vocab_projector.bias", config.vocab_size)?,
            activation: config.hidden_act,
        },
        architecture: Architecture::DistilBert,
        checkpoint: loader.checkpoint(),
    })
}
