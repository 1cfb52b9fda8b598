"""Reference implementation of the paper's bias measure for masked language models.

Reproduces `code/mlm/mlm_bias_detection.py` of IngrojShrestha/bias_through_lens_of_desired_distributions
(Shrestha & Srinivasan, "LLM Bias Detection and Mitigation through the Lens of Desired Distributions",
EMNLP 2025), quirks included, for any local Hugging Face folder holding config.json, tokenizer.json and
model.safetensors (BERT, DistilBERT, RoBERTa, ...):

* templates are filled as the paper does: [ARTICLE] first ("an" when the paper's `is_vowel` says so),
  then [DET] (the determiner "this "/"my " split off the gendered phrase), then [AAA] / [TTT];
* only the last word(s) of a gendered phrase are masked, with one mask per subword token, masks joined
  by " " (same for the profession in the TAM sentence);
* `find_mask_token` takes the first mask token of the encoded sentence and the `attribute_num`
  positions from there;
* P(A | .) multiplies, for every subword id of A, the softmax probability of that id at EVERY masked
  attribute position (not only its own position);
* score = ln(P_AM / P_TAM); per profession exp(score) is summed per gender (pandas groupby) and divided
  by the total of both genders; the per-profession table goes through a TSV round trip as in the paper;
* KL(target || predicted) with torch `F.kl_div(log(clamp(pred, 1e-8, 1)), true, reduction='batchmean')`
  on the 1-D float32 tensor [m, f] (= sum / 2); KL_male / KL_female with reduction='sum' on one element;
* summary: an 'ALL' row, then `groupby('prof_gender')` (balanced, female_dominated, male_dominated),
  mean and variance (ddof 1) of KL_total.

Generalisation for tokenizers that are not WordPiece: the paper takes the subword tokens of a word
with `tokenizer.tokenize(word)`. Here the tokens of a word (gendered word or profession) are
`tokenizer(text, add_special_tokens=False)` with text = word when the word starts the sentence, else
" " + word. For WordPiece (BERT, DistilBERT) this is identical to `tokenizer.tokenize(word)` (asserted);
for byte-level BPE (RoBERTa) it gives the "Ġ"-prefixed tokens the word really has in the sentence.

Two modes compute the same measure:
* "sequential": one sentence at a time, with the structure of the paper's
  get_gender_profession_distribution / get_normalized_score (two forward passes per
  (template, profession, phrase));
* "batched": the same AM / TAM sentences (no deduplication, so the same work as the paper) run through
  the model in right-padded batches with attention masks; the products are then formed exactly as in
  sequential mode.

The per-token probabilities do not depend on the target distribution, so the model work is done once
per split and both targets (equal, real_world) are evaluated from it (the paper runs its script once
per target).

Usage (prints one JSON line):
  python3 tests/reference/paper_measure.py --model DIR --split test --mode sequential|batched \
      [--batch-size 64] [--threads N]
Data: $WALF_REFERENCE_DIR, else ../shared/reference/desired-distributions (relative to the repo root).
"""

import argparse
import functools
import io
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

DEFAULT_REFERENCE_DIR = "../shared/reference/desired-distributions"
TARGETS = ("equal", "real_world")
SPLITS = ("train", "valid", "test")
RAW_COLUMNS = ["template_id", "profession", "gendered_word", "gender", "sentence_AM", "sentence_TAM",
               "masked_ids_sentence_AM", "masked_ids_sentence_TAM", "normalized_score"]
INDIVIDUAL_COLUMNS = ["profession", "f before", "m before", "f true", "m true", "prof_gender",
                      "KL_female", "KL_male", "KL_total"]
SUMMARY_COLUMNS = ["prof_gender", "KL_mean", "KL_variance"]

# The paper's CMU-to-IPA vowel list; only the first character of the phoneme string is compared.
PAPER_VOWELS = ["ə", "eɪ", "ɑ", "æ", "ə", "ɔ", "aʊ", "aɪ", "ɛ", "ər", "ɪ", "oʊ", "ɔɪ", "u", "i"]


def reference_dir(path=None):
    return Path(path or os.environ.get("WALF_REFERENCE_DIR", DEFAULT_REFERENCE_DIR))


@functools.lru_cache(maxsize=None)
def is_vowel(word):
    """The paper's is_vowel (cached: eng_to_ipa is deterministic and slow)."""
    import eng_to_ipa as ipa

    phoneme = ipa.convert(word)
    phoneme = phoneme.replace("ˈ", "").replace("ˌ", "")
    return phoneme[0] in PAPER_VOWELS


# ----------------------------------------------------------------------------------------------
# data


def get_attributes(ref):
    def read_file(filepath):
        with open(filepath, encoding="utf-8") as f:
            return [line.strip() for line in f.readlines()]

    gender_dict = {name: "male" for name in read_file(ref / "male_gendered_words.txt")}
    gender_dict.update({name: "female" for name in read_file(ref / "female_gendered_words.txt")})
    return gender_dict


def template_file(split):
    if split in ("train", "valid"):  # the paper uses the same templates for training and validation
        return "templates_train.tsv"
    if split == "test":
        return "templates_test.tsv"
    raise ValueError(f"unknown split {split!r}")


def load_split(split, ref=None):
    """Everything the measure reads for one split: templates, gendered phrases, professions."""
    ref = reference_dir(ref)
    df_t = pd.read_csv(ref / template_file(split), sep="\t")
    df_true = pd.read_csv(ref / f"professions_{split}.tsv", sep="\t")
    return {
        "split": split,
        "templates": dict(zip(df_t["template_id"], df_t["template"])),
        "gender_dict": get_attributes(ref),
        "professions": df_true["profession"].values.tolist(),
        "df_true": df_true,
    }


# ----------------------------------------------------------------------------------------------
# model


def load_model(model_dir, attn_implementation="eager"):
    """AutoTokenizer / AutoModelForMaskedLM from a local folder only, float32, eval mode."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}/config.json not found (only local folders are accepted)")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32,
                                                 attn_implementation=attn_implementation)
    model.eval()
    return model, tokenizer


def is_wordpiece(tokenizer):
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and type(backend.model).__name__ == "WordPiece"


def word_token_ids(tokenizer, word, starts_sentence):
    """Subword ids of `word` as it appears in the sentence (see module docstring)."""
    text = word if starts_sentence else " " + word
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if is_wordpiece(tokenizer):
        # the paper: vocab[token] for token in tokenizer.tokenize(word)
        vocab = tokenizer.get_vocab()
        paper_ids = [vocab[token] for token in tokenizer.tokenize(word)]
        assert ids == paper_ids, (word, ids, paper_ids)
    if not ids:
        raise ValueError(f"{word!r} has no tokens")
    return ids


def find_mask_token(tokenizer, sentence, attribute_num):
    """The paper's find_mask_token: the first mask and the following attribute_num - 1 positions."""
    tokens = tokenizer.encode(sentence)
    for i, tk in enumerate(tokens):
        if tk == tokenizer.mask_token_id:
            return list(range(i, i + attribute_num))
    raise ValueError(f"no mask token in {sentence!r}")


# ----------------------------------------------------------------------------------------------
# sentences


def build_items(tokenizer, data):
    """The paper's loop order: template, profession, gendered phrase (male file then female file)."""
    mask = tokenizer.mask_token
    items = []
    for template_id, template_actual in data["templates"].items():
        for target in data["professions"]:
            target_starts = template_actual.startswith("[TTT]")
            target_ids = word_token_ids(tokenizer, target, target_starts)
            target_num = len(target_ids)
            for gender_value, gender in data["gender_dict"].items():
                template = template_actual
                gendered_word_with_det = gender_value.split()
                if len(gendered_word_with_det) > 1:
                    gender_value_ = " ".join(gendered_word_with_det[1:])
                    determiner = gendered_word_with_det[0] + " "
                else:
                    gender_value_ = gendered_word_with_det[0]
                    determiner = ""

                if is_vowel(target):
                    template = template.replace("[ARTICLE]", "an")
                else:
                    template = template.replace("[ARTICLE]", "a")
                template = template.replace("[DET]", determiner)

                attribute_starts = template.startswith("[AAA]")
                attribute_ids = word_token_ids(tokenizer, gender_value_, attribute_starts)
                attribute_num = len(attribute_ids)
                attribute_mask = " ".join(mask for _ in range(attribute_num))
                target_mask = " ".join(mask for _ in range(target_num))

                sentence_AM = template.replace("[AAA]", attribute_mask).replace("[TTT]", target)
                sentence_TAM = template.replace("[AAA]", attribute_mask).replace("[TTT]", target_mask)
                items.append({
                    "template_id": template_id,
                    "profession": target,
                    "gendered_word": gender_value_,
                    "gender": gender,
                    "sentence_AM": sentence_AM,
                    "sentence_TAM": sentence_TAM,
                    "attribute_ids": attribute_ids,
                    "attribute_num": attribute_num,
                })
    return items


def product_score(attribute_ids, probs_AM, probs_TAM):
    """probs_*[k][j]: probability of attribute_ids[j] at masked position k. The paper's loop order."""
    attr_logit = 1.0
    attr_prior_logit = 1.0
    for j, _token in enumerate(attribute_ids):
        for probs in probs_AM:
            attr_logit *= float(probs[j])
        for probs in probs_TAM:
            attr_prior_logit *= float(probs[j])
    return attr_prior_logit, np.log(float(attr_logit / attr_prior_logit))


def get_normalized_score(model, tokenizer, attribute_ids, sentence_AM, sentence_TAM, attribute_num):
    """The paper's get_normalized_score, one sentence per forward pass."""
    input_ids = tokenizer(sentence_AM, return_tensors="pt")
    target_prob = model(**input_ids)[0]
    prior_input_ids = tokenizer(sentence_TAM, return_tensors="pt")
    prior_prob = model(**prior_input_ids)[0]

    masked_tokens = find_mask_token(tokenizer, sentence_AM, attribute_num)
    masked_tokens_prior = find_mask_token(tokenizer, sentence_TAM, attribute_num)

    logits = [torch.softmax(target_prob[0][m], dim=0).detach() for m in masked_tokens]
    prior_logits = [torch.softmax(prior_prob[0][m], dim=0).detach() for m in masked_tokens_prior]

    attr_logit = 1.0
    attr_prior_logit = 1.0
    for token_id in attribute_ids:
        for logit in logits:
            attr_logit *= float(logit[token_id].item())
        for prior_logit in prior_logits:
            attr_prior_logit *= float(prior_logit[token_id].item())

    return masked_tokens, masked_tokens_prior, attr_prior_logit, np.log(float(attr_logit / attr_prior_logit))


@torch.no_grad()
def run_sequential(model, tokenizer, items):
    rows = []
    for it in items:
        m_am, m_tam, _prior, score = get_normalized_score(model, tokenizer, it["attribute_ids"], it["sentence_AM"],
                                                          it["sentence_TAM"], it["attribute_num"])
        rows.append(raw_row(it, m_am, m_tam, score))
    return rows, 2 * len(items)


@torch.no_grad()
def run_batched(model, tokenizer, items, batch_size=64):
    # every (item, AM/TAM) sentence, in the order the paper runs them
    sentences = []
    for idx, it in enumerate(items):
        sentences.append((idx, "AM", it["sentence_AM"]))
        sentences.append((idx, "TAM", it["sentence_TAM"]))
    masked = {}
    probs = {}
    mask_id = tokenizer.mask_token_id
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start:start + batch_size]
        enc = tokenizer([s for _, _, s in chunk], return_tensors="pt", padding=True)
        logits = model(**enc)[0]
        ids = enc["input_ids"]
        for row, (idx, kind, _s) in enumerate(chunk):
            it = items[idx]
            first = int((ids[row] == mask_id).nonzero()[0, 0])
            positions = list(range(first, first + it["attribute_num"]))
            sm = torch.softmax(logits[row, positions], dim=-1)  # (positions, vocab), as the paper per row
            sel = sm[:, it["attribute_ids"]].tolist()  # [position][subword]
            masked[idx, kind] = positions
            probs[idx, kind] = sel
    rows = []
    for idx, it in enumerate(items):
        _prior, score = product_score(it["attribute_ids"], probs[idx, "AM"], probs[idx, "TAM"])
        rows.append(raw_row(it, masked[idx, "AM"], masked[idx, "TAM"], score))
    return rows, len(sentences)


def raw_row(it, masked_AM, masked_TAM, score):
    return {
        "template_id": it["template_id"],
        "profession": it["profession"],
        "gendered_word": it["gendered_word"],
        "gender": it["gender"],
        "sentence_AM": it["sentence_AM"],
        "sentence_TAM": it["sentence_TAM"],
        "masked_ids_sentence_AM": [int(i) for i in masked_AM],
        "masked_ids_sentence_TAM": [int(i) for i in masked_TAM],
        "normalized_score": float(score),
    }


# ----------------------------------------------------------------------------------------------
# distribution and KL (the paper's get_normalized_by_profession / get_kl_individual_and_summary)


def get_normalized_by_profession(df):
    """Returns the paper's per-profession table after its TSV round trip (to_csv, read_csv)."""
    exp_sums = df.groupby(["profession", "gender"])["exp_score"].sum().reset_index()
    exp_sums["total_exp"] = exp_sums.groupby("profession")["exp_score"].transform("sum")
    exp_sums["softmax_score"] = exp_sums["exp_score"] / exp_sums["total_exp"]
    df_normalized = exp_sums[["profession", "gender", "softmax_score"]]
    buf = io.StringIO()
    df_normalized.to_csv(buf, sep="\t", index=False)
    buf.seek(0)
    return pd.read_csv(buf, sep="\t")


def compute_kl(pred, true):
    epsilon = 1e-8
    true_m, true_f = true
    pred_m, pred_f = pred
    true_distribution = torch.tensor([true_m, true_f], dtype=torch.float32)
    predicted_distribution = torch.tensor([pred_m, pred_f], dtype=torch.float32)
    predicted_distribution = torch.clamp(predicted_distribution, min=epsilon, max=1.0)
    predicted_log_prob = torch.log(predicted_distribution)
    kl_div_m = F.kl_div(predicted_log_prob[0].unsqueeze(0), true_distribution[0].unsqueeze(0), reduction="sum")
    kl_div_f = F.kl_div(predicted_log_prob[1].unsqueeze(0), true_distribution[1].unsqueeze(0), reduction="sum")
    kl_div_total = F.kl_div(predicted_log_prob, true_distribution, reduction="batchmean")
    return kl_div_total.item(), kl_div_m.item(), kl_div_f.item()


def individual_and_summary(df_pred, df_true, target):
    rows = []
    for profession in df_true["profession"].tolist():
        sel = df_pred[df_pred["profession"] == profession]
        pred_m = sel[sel["gender"] == "male"]["softmax_score"].values[0]
        pred_f = sel[sel["gender"] == "female"]["softmax_score"].values[0]
        t = df_true[df_true["profession"] == profession]
        true_m = t["male_dist"].values[0]
        true_f = t["female_dist"].values[0]
        if target == "equal":
            true = [0.5, 0.5]
        elif target == "real_world":
            true = [true_m, true_f]
        else:
            raise ValueError(f"unknown target {target!r}")
        kl_total, kl_m, kl_f = compute_kl([pred_m, pred_f], true)
        rows.append({
            "profession": profession,
            "f before": float(pred_f),
            "m before": float(pred_m),
            "f true": float(true_f),
            "m true": float(true_m),
            "prof_gender": t["prof_gender"].values[0],
            "KL_female": kl_f,
            "KL_male": kl_m,
            "KL_total": kl_total,
        })
    df = pd.DataFrame(rows, columns=INDIVIDUAL_COLUMNS)
    # the paper's KL columns start as '' and are filled cell by cell, so they hold Python floats in an
    # object column; pandas' object-dtype variance can differ from the float64 one in the last bit
    df["KL_total"] = pd.Series([r["KL_total"] for r in rows], dtype=object)
    category = df.groupby("prof_gender")["KL_total"].agg(KL_mean="mean", KL_variance="var").reset_index()
    overall = pd.DataFrame({"prof_gender": ["ALL"], "KL_mean": [df["KL_total"].mean()],
                            "KL_variance": [df["KL_total"].var()]})
    summary = pd.concat([overall, category], ignore_index=True)
    return rows, [{"prof_gender": r.prof_gender, "KL_mean": float(r.KL_mean), "KL_variance": float(r.KL_variance)}
                  for r in summary.itertuples(index=False)]


def measure_from_raw(raw, data, targets=TARGETS):
    df = pd.DataFrame(raw, columns=RAW_COLUMNS)
    df["exp_score"] = np.exp(df["normalized_score"])
    df_pred = get_normalized_by_profession(df)
    out = {}
    for target in targets:
        individual, summary = individual_and_summary(df_pred, data["df_true"], target)
        out[target] = {"raw": raw, "individual": individual, "summary": summary}
    return out


def measure(model, tokenizer, split, mode="sequential", batch_size=64, ref=None, targets=TARGETS,
            max_professions=None):
    """Returns {"forward_sentences", "seconds", "targets": {target: {"raw", "individual", "summary"}}}.

    The raw rows are the same list for every target. `seconds` is the wall time of everything after
    the model was loaded (sentence building, forward passes, distribution, KL)."""
    data = load_split(split, ref)
    if max_professions is not None:
        data["professions"] = data["professions"][:max_professions]
        data["df_true"] = data["df_true"].iloc[:max_professions]
    t0 = time.perf_counter()
    items = build_items(tokenizer, data)
    if mode == "sequential":
        raw, forwards = run_sequential(model, tokenizer, items)
    elif mode == "batched":
        raw, forwards = run_batched(model, tokenizer, items, batch_size)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    result = measure_from_raw(raw, data, targets)
    seconds = time.perf_counter() - t0
    return {"split": split, "mode": mode, "seconds": seconds, "forward_sentences": forwards, "targets": result}


def max_differences(a, b):
    """Largest absolute differences between two measure() results (scores, predicted shares, KLs)."""
    out = {}
    ra = next(iter(a["targets"].values()))["raw"]
    rb = next(iter(b["targets"].values()))["raw"]
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb):
        for k in ("template_id", "profession", "gendered_word", "sentence_AM", "sentence_TAM",
                  "masked_ids_sentence_AM", "masked_ids_sentence_TAM"):
            assert x[k] == y[k], (k, x[k], y[k])
    out["normalized_score"] = max(abs(x["normalized_score"] - y["normalized_score"]) for x, y in zip(ra, rb))
    for target in a["targets"]:
        ia, ib = a["targets"][target]["individual"], b["targets"][target]["individual"]
        for col in ("f before", "m before", "KL_female", "KL_male", "KL_total"):
            d = max(abs(x[col] - y[col]) for x, y in zip(ia, ib))
            out[f"{target}.{col}"] = max(out.get(f"{target}.{col}", 0.0), d)
        sa, sb = a["targets"][target]["summary"], b["targets"][target]["summary"]
        assert [r["prof_gender"] for r in sa] == [r["prof_gender"] for r in sb]
        for col in ("KL_mean", "KL_variance"):
            out[f"{target}.{col}"] = max(abs(x[col] - y[col]) for x, y in zip(sa, sb))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="local folder with config.json, tokenizer.json, model.safetensors")
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument("--mode", default="sequential", choices=("sequential", "batched"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument("--reference-dir", default=None,
                   help=f"paper data (default $WALF_REFERENCE_DIR, else {DEFAULT_REFERENCE_DIR})")
    p.add_argument("--max-professions", type=int, default=None, help="only the first N professions (smoke tests)")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    res = measure(model, tokenizer, args.split, args.mode, args.batch_size, args.reference_dir,
                  max_professions=args.max_professions)
    print(json.dumps({
        "mode": res["mode"],
        "split": res["split"],
        "seconds": res["seconds"],
        "forward_sentences": res["forward_sentences"],
        "summary": {t: r["summary"] for t, r in res["targets"].items()},
    }))


if __name__ == "__main__":
    sys.exit(main())
