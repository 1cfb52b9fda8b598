"""Reference WALF fine-tuning (one epoch) for benchmarks, and the WALF pieces walf_step.py reuses.

Reproduces the training loop of `code/mlm/debias_mlm.py` of
IngrojShrestha/bias_through_lens_of_desired_distributions (Shrestha & Srinivasan, "LLM Bias Detection
and Mitigation through the Lens of Desired Distributions", EMNLP 2025) for any local Hugging Face
masked LM folder (config.json, tokenizer.json, model.safetensors), with the sentence building, word
tokenisation rule and find_mask_token of tests/reference/paper_measure.py:

* differentiable scores: P(A | AM), P(A | TAM) are float32 tensor products of softmax probabilities
  (every subword id of A at every masked attribute position, the paper's loop order), score =
  log(P_AM / P_TAM); per profession exp(score) summed per gender and divided by the total
  (compute_normalized_scores_by_profession);
* KL: mean over the batch's professions of F.kl_div(log(clamp(p, 1e-8, 1)), target, 'batchmean') on
  the float32 [male, female] pair (compute_kl_divergence); target (0.5, 0.5) or (male_dist,
  female_dist) from profession_dist.tsv;
* equal target: loss = mean KL;
* real_world target: the MLM loss of get_mlm_loss (every token of the filled-in sentence except the
  first and last, i.e. the model's own [CLS]/[SEP] or <s>/</s>, masked in turn: one row per token;
  outputs.loss averaged per sentence; batch MLM = sum(loss_s * n_s) / sum(n_s)); the paper's KLTracker
  (fed loss.detach()), normalised = KL / (kl_mean + alpha), lambda = adjust_lambda, loss = lambda *
  normalised + gamma * MLM;
* AdamW(model.parameters(), lr, weight_decay) with torch defaults (betas 0.9/0.999, eps 1e-8), one
  optimizer step per training batch (zero_grad, backward, step);
* batching: the paper's create_batches (professions grouped by prof_gender in order of first
  appearance, shuffled within each group and then the batch order shuffled, with Python's `random`
  seeded by set_seed; validation batches unshuffled).

Two modes, the same mathematics:
* "sequential": the paper's code structure, two forward passes per (template, profession, phrase) and,
  for real_world, one MLM forward per filled-in sentence (a batch of its seq_len - 2 masked copies);
* "batched": all AM / TAM sentences of the training batch in right-padded batches of --batch-size
  sentences (with attention masks) and all MLM rows of the training batch in right-padded batches of
  --mlm-batch-size rows (no deduplication); one backward per training batch in both modes.

Usage (prints one JSON line):
  python3 tests/reference/walf_epoch.py --model DIR --target equal|real_world --mode sequential|batched \
      [--threads N] [--max-batches N] [--seed 42]
The epoch runs in train mode (dropout on, as the paper), lr 2e-5, weight decay 0.01, gamma 0.1,
momentum (beta) 0.95, train batch size 8; then the validation KL (valid split, batch size 3, eval
mode, no grad). "seconds" is the training time of the epoch (from batch creation to the last optimizer
step; model loading and validation excluded), "valid_seconds" the validation time.
Data: $WALF_REFERENCE_DIR, else ../shared/reference/desired-distributions (relative to the repo root).
"""

import argparse
import json
import random
import resource
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paper_measure as pm  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

EPSILON = 1e-8
ALPHA = {"male_dominated": 1e-6, "balanced": 1e-5, "female_dominated": 1e-5}
LAMBDA = {"male_dominated": (0.95, 0.8, 1.5), "balanced": (1.2, 1.0, 1.5), "female_dominated": (1.2, 1.0, 1.5)}


# ----------------------------------------------------------------------------------------------
# data


def load_real_dist(ref=None):
    """The paper's real_dist: profession -> {'female_dist', 'male_dist'} from profession_dist.tsv."""
    df = pd.read_csv(pm.reference_dir(ref) / "profession_dist.tsv", sep="\t")
    return df.set_index("profession")[["female_dist", "male_dist"]].T.to_dict()


def load_train_data(ref=None):
    """Templates T1-T3, the 22 phrases, and the train / valid professions with their groups."""
    train = pm.load_split("train", ref)
    valid = pm.load_split("valid", ref)
    return {
        "templates": train["templates"],
        "gender_dict": train["gender_dict"],
        "train": (train["professions"], train["df_true"]["prof_gender"].values.tolist()),
        "valid": (valid["professions"], valid["df_true"]["prof_gender"].values.tolist()),
        "real_dist": load_real_dist(ref),
    }


def set_seed(seed):
    """The paper's set_seed (CPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def create_batches(professions, labels, batch_size, is_training):
    """The paper's create_batches (verbatim logic)."""
    grouped = defaultdict(list)
    for prof, lab in zip(professions, labels):
        grouped[lab].append(prof)
    all_batches = []
    all_batches_labels = []
    for label, items in grouped.items():
        if is_training:
            random.shuffle(items)
        num_batches = (len(items) + batch_size - 1) // batch_size
        for batch_idx in range(num_batches):
            start_idx = batch_idx * batch_size
            end_idx = min((batch_idx + 1) * batch_size, len(items))
            all_batches.append(items[start_idx:end_idx])
            all_batches_labels.append(label)
    if is_training:
        combined = list(zip(all_batches, all_batches_labels))
        random.shuffle(combined)
        all_batches, all_batches_labels = zip(*combined)
    return list(all_batches), list(all_batches_labels)


def batch_items(tokenizer, templates, gender_dict, professions):
    """paper_measure.build_items for these professions (paper's loop order), plus the filled-in
    sentence the paper's MLM loss uses (`original_sentence`: [AAA] -> phrase word, [TTT] -> profession)."""
    data = {"templates": templates, "gender_dict": gender_dict, "professions": list(professions)}
    items = pm.build_items(tokenizer, data)
    for it in items:
        attribute_mask = " ".join(tokenizer.mask_token for _ in range(it["attribute_num"]))
        assert it["sentence_AM"].count(attribute_mask) == 1, it["sentence_AM"]
        it["sentence"] = it["sentence_AM"].replace(attribute_mask, it["gendered_word"])
    return items


# ----------------------------------------------------------------------------------------------
# scores (differentiable)


def product_score_tensor(attribute_ids, probs_AM, probs_TAM):
    """The paper's float32 tensor products: for every subword id, every AM position, then every TAM
    position. probs_*: list of 1-D softmax vectors (one per masked position)."""
    attr_logit = torch.tensor(1.0)
    attr_prior_logit = torch.tensor(1.0)
    for token_id in attribute_ids:
        for logit in probs_AM:
            attr_logit = attr_logit * logit[token_id]
        for prior_logit in probs_TAM:
            attr_prior_logit = attr_prior_logit * prior_logit[token_id]
    return torch.log(attr_logit / attr_prior_logit)


def normalized_score_sequential(model, tokenizer, it):
    """The paper's get_normalized_score: one sentence per forward pass, graph kept."""
    target_prob = model(**tokenizer(it["sentence_AM"], return_tensors="pt"))[0]
    prior_prob = model(**tokenizer(it["sentence_TAM"], return_tensors="pt"))[0]
    masked_tokens = pm.find_mask_token(tokenizer, it["sentence_AM"], it["attribute_num"])
    masked_tokens_prior = pm.find_mask_token(tokenizer, it["sentence_TAM"], it["attribute_num"])
    logits = [torch.softmax(target_prob[0][m], dim=0) for m in masked_tokens]
    prior_logits = [torch.softmax(prior_prob[0][m], dim=0) for m in masked_tokens_prior]
    return product_score_tensor(it["attribute_ids"], logits, prior_logits)


def mlm_loss_sequential(model, tokenizer, sentence):
    """The paper's get_mlm_loss: the encoded sentence repeated seq_len - 2 times, row i masking token
    i + 1 (never the first or last token); outputs.loss = mean cross-entropy over those tokens."""
    tensor_input = tokenizer.encode(sentence, return_tensors="pt")
    seq_len = tensor_input.size(-1)
    repeat_input = tensor_input.repeat(seq_len - 2, 1)
    mask = torch.ones(seq_len - 1).diag(1)[:-2]
    masked_input = repeat_input.masked_fill(mask == 1, tokenizer.mask_token_id)
    labels = repeat_input.masked_fill(masked_input != tokenizer.mask_token_id, -100)
    outputs = model(masked_input, labels=labels)
    return outputs.loss, labels.ne(-100).sum()


def scores_sequential(model, tokenizer, items, with_mlm):
    """Per item: score tensor; and (with_mlm) per item the MLM loss tensor and its token count."""
    scores, mlm_losses, mlm_counts = [], [], []
    for it in items:
        scores.append(normalized_score_sequential(model, tokenizer, it))
        if with_mlm:
            loss, n = mlm_loss_sequential(model, tokenizer, it["sentence"])
            mlm_losses.append(loss)
            mlm_counts.append(n)
    return scores, mlm_losses, mlm_counts


def scores_batched(model, tokenizer, items, with_mlm, batch_size=64, mlm_batch_size=256):
    """The same quantities from right-padded batches (AM and TAM sentences in the paper's order)."""
    mask_id = tokenizer.mask_token_id
    sentences = []
    for idx, it in enumerate(items):
        sentences.append((idx, "AM", it["sentence_AM"]))
        sentences.append((idx, "TAM", it["sentence_TAM"]))
    probs = {}
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start:start + batch_size]
        enc = tokenizer([s for _, _, s in chunk], return_tensors="pt", padding=True)
        logits = model(**enc)[0]
        ids = enc["input_ids"]
        for row, (idx, kind, _s) in enumerate(chunk):
            first = int((ids[row] == mask_id).nonzero()[0, 0])
            positions = list(range(first, first + items[idx]["attribute_num"]))
            sm = torch.softmax(logits[row, positions], dim=-1)
            probs[idx, kind] = [sm[k] for k in range(len(positions))]
    scores = [product_score_tensor(it["attribute_ids"], probs[idx, "AM"], probs[idx, "TAM"])
              for idx, it in enumerate(items)]
    if not with_mlm:
        return scores, [], []

    # MLM rows: for every filled-in sentence, one row per token except the first and last
    rows, counts = [], []
    for it in items:
        ids = tokenizer.encode(it["sentence"])
        counts.append(len(ids) - 2)
        for pos in range(1, len(ids) - 1):
            r = list(ids)
            r[pos] = mask_id
            rows.append((r, pos, ids[pos]))
    pad_id = tokenizer.pad_token_id
    ces = []
    for start in range(0, len(rows), mlm_batch_size):
        chunk = rows[start:start + mlm_batch_size]
        width = max(len(r) for r, _, _ in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, (r, _, _) in enumerate(chunk):
            input_ids[i, :len(r)] = torch.tensor(r)
            attention_mask[i, :len(r)] = 1
        logits = model(input_ids=input_ids, attention_mask=attention_mask)[0]
        pos = torch.tensor([p for _, p, _ in chunk])
        labels = torch.tensor([t for _, _, t in chunk])
        ces.append(F.cross_entropy(logits[torch.arange(len(chunk)), pos], labels, reduction="none"))
    ce = torch.cat(ces)
    mlm_losses = [c.mean() for c in ce.split(counts)]  # outputs.loss of each sentence
    mlm_counts = [torch.tensor(n) for n in counts]
    return scores, mlm_losses, mlm_counts


# ----------------------------------------------------------------------------------------------
# loss (the paper's functions)


def compute_normalized_scores_by_profession(norm_scores):
    normalized_scores = {}
    for profession, scores in norm_scores.items():
        male_scores = torch.exp(torch.stack(scores["male"]))
        female_scores = torch.exp(torch.stack(scores["female"]))
        sum_male = torch.sum(male_scores)
        sum_female = torch.sum(female_scores)
        total_sum = sum_male + sum_female
        normalized_scores[profession] = {"male": sum_male / total_sum, "female": sum_female / total_sum}
    return normalized_scores


def kl_per_profession(normalized_scores, target, real_dist):
    """The terms of the paper's compute_kl_divergence (batchmean), one per profession."""
    kls = {}
    for profession, scores in normalized_scores.items():
        if target == "equal":
            t = torch.tensor([0.5, 0.5], dtype=torch.float32)
        elif target == "real_world":
            t = torch.tensor([real_dist[profession]["male_dist"], real_dist[profession]["female_dist"]],
                             dtype=torch.float32)
        else:
            raise ValueError(f"unknown target {target!r}")
        profession_scores = torch.stack([scores["male"], scores["female"]])
        profession_scores = torch.clamp(profession_scores, min=EPSILON, max=1.0)
        kls[profession] = F.kl_div(torch.log(profession_scores), t, reduction="batchmean")
    return kls


def compute_kl_divergence(normalized_scores, target, real_dist):
    return torch.mean(torch.stack(list(kl_per_profession(normalized_scores, target, real_dist).values())))


class KLTracker:
    """The paper's KLTracker (history lists left out). Quirk kept: kl_counts[category] is a tensor
    updated in place (`+=`), and `previous_count` is the same tensor object, so from the second update
    on previous_count already equals total_count: var = (total*old_var + (x - new_mean)(x - old_mean))
    / total = old_var + (x - new_mean)(x - old_mean) / total. (On a group's first EMA update old_var is
    0, so both readings agree there.)"""

    def __init__(self, beta=0.95):
        self.beta = beta
        self.kl_means = {}
        self.kl_vars = {}
        self.kl_counts = {}

    def update(self, category, new_kl, batch_size):
        if category not in self.kl_means:
            self.kl_means[category] = new_kl.clone()
            self.kl_vars[category] = torch.tensor(0.0, device=new_kl.device, dtype=new_kl.dtype)
            self.kl_counts[category] = torch.tensor(batch_size, device=new_kl.device, dtype=new_kl.dtype)
        else:
            old_mean = self.kl_means[category]
            old_var = self.kl_vars[category]
            previous_count = self.kl_counts[category]
            self.kl_counts[category] += batch_size  # in place: previous_count changes too
            total_count = self.kl_counts[category]
            new_mean = self.beta * old_mean + (1 - self.beta) * new_kl
            self.kl_means[category] = new_mean
            self.kl_vars[category] = (previous_count * old_var + (new_kl - new_mean) * (new_kl - old_mean)) / total_count
        return self.kl_means[category], self.kl_vars[category]


def adjust_lambda(category, kl_means, kl_vars):
    kl_var_factor = 1 / (1 + kl_vars[category])
    c, lo, hi = LAMBDA[category]
    return torch.clamp(c * kl_means[category] * kl_var_factor, lo, hi)


def batch_forward(model, tokenizer, data, professions, target, mode, batch_size=64, mlm_batch_size=256,
                  with_mlm=None):
    """The paper's get_gender_profession_distribution: returns (normalized_scores, mlm_loss, mlm_tokens)
    (mlm_* None without the MLM)."""
    if with_mlm is None:
        with_mlm = target == "real_world"
    items = batch_items(tokenizer, data["templates"], data["gender_dict"], professions)
    if mode == "sequential":
        scores, mlm_losses, mlm_counts = scores_sequential(model, tokenizer, items, with_mlm)
    elif mode == "batched":
        scores, mlm_losses, mlm_counts = scores_batched(model, tokenizer, items, with_mlm, batch_size, mlm_batch_size)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    norm_scores = {p: {"male": [], "female": []} for p in professions}
    for it, s in zip(items, scores):
        norm_scores[it["profession"]][it["gender"]].append(s)
    normalized = compute_normalized_scores_by_profession(norm_scores)
    if not with_mlm:
        return normalized, None, None
    losses = torch.stack(mlm_losses)
    counts = torch.stack(mlm_counts)
    batch_token_count = counts.sum()
    batch_mlm_loss = (losses * counts).sum() / batch_token_count
    return normalized, batch_mlm_loss, batch_token_count


def walf_loss(normalized, mlm_loss, mlm_tokens, professions, category, target, real_dist, tracker, gamma):
    """The paper's training loss for one batch. Returns (loss to back-propagate, info dict of tensors)."""
    kl = compute_kl_divergence(normalized, target, real_dist)
    info = {"kl": kl}
    if target == "equal":
        return kl, info
    kl_mean, kl_var = tracker.update(category, kl.detach(), len(professions))
    normalized_loss = kl / (kl_mean + ALPHA[category])
    lambda_x = adjust_lambda(category, tracker.kl_means, tracker.kl_vars)
    weighted_kl_loss = lambda_x * normalized_loss
    total = weighted_kl_loss + gamma * mlm_loss
    info.update({"kl_mean": kl_mean, "kl_var": kl_var, "normalized_loss": normalized_loss, "lambda": lambda_x,
                 "mlm_loss": mlm_loss, "mlm_tokens": mlm_tokens, "total_loss": total})
    return total, info


# ----------------------------------------------------------------------------------------------
# epoch


def validation_kl(model, tokenizer, data, target, mode, batch_size, mlm_batch_size, valid_batch_size=3,
                  valid_mlm=False):
    """The paper's validation loss: model.eval(), no grad, batches of 3 (unshuffled), KL weighted by
    batch size. The paper also computes (and discards) the MLM loss there for real_world: valid_mlm."""
    professions, groups = data["valid"]
    batches, _ = create_batches(professions, groups, valid_batch_size, is_training=False)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for b in batches:
            normalized, _, _ = batch_forward(model, tokenizer, data, b, target, mode, batch_size, mlm_batch_size,
                                             with_mlm=valid_mlm and target == "real_world")
            total += compute_kl_divergence(normalized, target, data["real_dist"]).item() * len(b)
            count += len(b)
    return total / count


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="local folder with config.json, tokenizer.json, model.safetensors")
    p.add_argument("--target", required=True, choices=pm.TARGETS)
    p.add_argument("--mode", default="sequential", choices=("sequential", "batched"))
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument("--max-batches", type=int, default=None, help="stop the epoch after N training batches")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.95, help="KLTracker beta")
    p.add_argument("--train-batch-size", type=int, default=8)
    p.add_argument("--valid-batch-size", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64, help="batched mode: AM/TAM sentences per forward")
    p.add_argument("--mlm-batch-size", type=int, default=256, help="batched mode: MLM rows per forward")
    p.add_argument("--valid-mlm", action="store_true",
                   help="real_world: also compute (and discard) the MLM loss in validation, as the paper's code")
    p.add_argument("--skip-valid", action="store_true", help="no validation pass (benchmarks of training only)")
    p.add_argument("--reference-dir", default=None,
                   help=f"paper data (default $WALF_REFERENCE_DIR, else {pm.DEFAULT_REFERENCE_DIR})")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    data = load_train_data(args.reference_dir)
    model, tokenizer = pm.load_model(args.model)
    for param in model.parameters():
        param.requires_grad = True
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    tracker = KLTracker(beta=args.momentum)

    t0 = time.perf_counter()
    train_batches, train_groups = create_batches(*data["train"], args.train_batch_size, is_training=True)
    model.train()
    done = 0
    professions_done = 0
    for professions, category in zip(train_batches, train_groups):
        if args.max_batches is not None and done >= args.max_batches:
            break
        normalized, mlm_loss, mlm_tokens = batch_forward(model, tokenizer, data, professions, args.target, args.mode,
                                                         args.batch_size, args.mlm_batch_size)
        loss, _info = walf_loss(normalized, mlm_loss, mlm_tokens, professions, category, args.target,
                                data["real_dist"], tracker, args.gamma)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done += 1
        professions_done += len(professions)
    seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    valid_kl = None if args.skip_valid else validation_kl(
        model, tokenizer, data, args.target, args.mode, args.batch_size, args.mlm_batch_size,
        args.valid_batch_size, args.valid_mlm)
    valid_seconds = time.perf_counter() - t1
    print(json.dumps({
        "mode": args.mode,
        "target": args.target,
        "seconds": seconds,
        "valid_seconds": valid_seconds,
        "batches": done,
        "professions": professions_done,
        "valid_kl": valid_kl,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    sys.exit(main())
