//! The current weights as a Hugging Face folder's three files.

use super::*;

pub(super) async fn export(s: &Session, job: u64) -> Result<(), Error> {
    let (lm, current, files) = loaded(s)?;
    progress(Some(job), "exporting", 0, 1);
    let exported = lm.export(&current).await?;
    post_with_files(
        &Reply::Exported {
            job,
            name: files.name.clone(),
        },
        &[
            &exported.config_json,
            &exported.tokenizer_json,
            &exported.safetensors,
        ],
    );
    Ok(())
}
