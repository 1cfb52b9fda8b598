//! `BertForMaskedLM`, with the tensor names of its checkpoints. RoBERTa reuses the encoder and
//! embeddings under its own prefix.

use super::{Embeddings, EncoderLayer, LmHead, Loader, MaskedLm, SelfAttention};
use crate::config::{Architecture, ModelConfig};
use crate::error::Result;

pub(super) fn embeddings(config: &ModelConfig, loader: &Loader, base: &str) -> Result<Embeddings> {
    let h = config.hidden_size;
    let prefix = format!("{base}.embeddings");
    Ok(Embeddings {
        word: loader.matrix(
            &format!("{prefix}.word_embeddings.weight"),
            config.vocab_size,
            h,
        )?,
        position: loader.matrix(
            &format!("{prefix}.position_embeddings.weight"),
            config.max_position_embeddings,
            h,
        )?,
        token_type: Some(loader.matrix(
            &format!("{prefix}.token_type_embeddings.weight"),
            config.type_vocab_size.max(1),
            h,
        )?),
        norm: loader.layer_norm(&format!("{prefix}.LayerNorm"), h, config.layer_norm_eps)?,
        dropout: super::dropout(config.hidden_dropout),
        position_offset: config.position_offset(),
    })
}

pub(super) fn encoder(
    config: &ModelConfig,
    loader: &Loader,
    base: &str,
) -> Result<Vec<EncoderLayer>> {
    let (h, i, eps) = (
        config.hidden_size,
        config.intermediate_size,
        config.layer_norm_eps,
    );
    (0..config.num_hidden_layers)
        .map(|n| {
            let p = format!("{base}.encoder.layer.{n}");
            Ok(EncoderLayer {
                attention: SelfAttention {
                    query: loader.linear(&format!("{p}.attention.self.query"), h, h)?,
                    key: loader.linear(&format!("{p}.attention.self.key"), h, h)?,
                    value: loader.linear(&format!("{p}.attention.self.value"), h, h)?,
                    output: loader.linear(&format!("{p}.attention.output.dense"), h, h)?,
                    dropout: super::dropout(config.attention_dropout),
                    heads: config.num_attention_heads,
                },
                attention_norm: loader.layer_norm(
                    &format!("{p}.attention.output.LayerNorm"),
                    h,
                    eps,
                )?,
                intermediate: loader.linear(&format!("{p}.intermediate.dense"), h, i)?,
                output: loader.linear(&format!("{p}.output.dense"), i, h)?,
                output_norm: loader.layer_norm(&format!("{p}.output.LayerNorm"), h, eps)?,
                dropout: super::dropout(config.hidden_dropout),
                activation: config.hidden_act,
            })
        })
        .collect()
}

/// The decoder matrix when it is not tied, and the output bias, which checkpoints store under
/// either `<head>.bias` or `<head>.decoder.bias`.
pub(super) fn decoder_and_bias(
    config: &ModelConfig,
    loader: &Loader,
    head: &str,
) -> Result<(
    Option<burn::module::Param<burn::tensor::Tensor<2>>>,
    burn::module::Param<burn::tensor::Tensor<1>>,
)> {
    let decoder = if config.tie_word_embeddings {
        None
    } else {
        Some(loader.matrix(
            &format!("{head}.decoder.weight"),
            config.vocab_size,
            config.hidden_size,
        )?)
    };
    let bias_name = if loader.weights.contains(&format!("{head}.bias")) {
        format!("{head}.bias")
    } else {
        format!("{head}.decoder.bias")
    };
    Ok((decoder, loader.vector(&bias_name, config.vocab_size)?))
}

pub(super) fn load(config: &ModelConfig, loader: &Loader) -> Result<MaskedLm> {
    let h = config.hidden_size;
    let (decoder, bias) = decoder_and_bias(config, loader, "cls.predictions")?;
    Ok(MaskedLm {
        embeddings: embeddings(config, loader, "bert")?,
        layers: encoder(config, loader, "bert")?,
        head: LmHead {
            dense: loader.linear("cls.predictions.transform.dense", h, h)?,
            norm: loader.layer_norm(
                "cls.predictions.transform.LayerNorm",
                h,
                config.layer_norm_eps,
            )?,
            decoder,
            bias,
            activation: config.hidden_act,
        },
        architecture: Architecture::Bert,
        checkpoint: loader.checkpoint(),
    })
}
