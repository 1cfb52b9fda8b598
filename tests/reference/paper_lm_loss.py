"""Expected masked-LM losses on held-out text, by the paper's rule and by ours.

The paper's rule is `code/mlm/evaluate_mlm_loss.py` of
IngrojShrestha/bias_through_lens_of_desired_distributions (Shrestha & Srinivasan, EMNLP 2025), ported
faithfully for any local Hugging Face masked-LM folder:

* each passage lowercased, tokenized with the model's tokenizer (truncation to the model's length);
* `mask_tokens`: the special-tokens mask is `get_special_tokens_mask(ids, already_has_special_tokens=True)`
  (every special id, the unknown token included); max(1, floor(0.15 * non-special)) of the
  non-special tokens are masked; `labels` is the unmasked ids with -100 on the special tokens only,
  so every non-special token, masked or not, is scored;
* the passage's loss is `model(input_ids, labels=labels).loss` (the mean cross-entropy over all its
  labelled tokens); the total is sum(loss * masked count) / sum(masked count).

Our rule (`walf lm-loss` without --paper) on the same passages: the first and last tokens are never
masked, max(1, floor(0.15 * (len - 2))) of the others are, and the cross-entropy is averaged over
the masked tokens of all passages.

The one deliberate difference from the paper's script is where the masked positions come from: it
draws them with `torch.randperm`; here, so that the engine can be compared with this port token for
token, they come from the engine's own seeded shuffle (SplitMix64 Fisher-Yates over the candidate
positions, one generator for all passages, seeded 42), ported below. Passages are read as the
engine reads a TSV (the `text` column, split on tabs, trimmed, empty ones dropped).

Writes tests/fixtures/expected/lm_loss.json:
  {"passages": N, "file": "WikiText-103-test-en.tsv", "seed": 42, "mask_prob": 0.15,
   "models": {name: {"paper": {"loss", "tokens", "masked_tokens"}, "masked_tokens": {...}}}}

Usage (from the repository root): python3 tests/reference/paper_lm_loss.py [--passages 30]
Data: $WALF_REFERENCE_DIR, else ../shared/reference/desired-distributions.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

torch.set_num_threads(1)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paper_measure as pm  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = {
    "bert": ROOT / "tests" / "fixtures" / "models" / "bert",
    "distilbert": ROOT / "tests" / "fixtures" / "models" / "distilbert",
    "roberta": ROOT / "tests" / "fixtures" / "models" / "roberta",
    "minilm-brown": ROOT / "public" / "models" / "minilm-brown",
}
MASK = (1 << 64) - 1


class SplitMix64:
    """The engine's generator (src/rng.rs)."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.next_u64() % (i + 1)
            items[i], items[j] = items[j], items[i]


def read_passages(path, n):
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    column = lines[0].split("\t").index("text")
    out = []
    for line in lines[1:]:
        parts = line.split("\t")
        if len(parts) > column and parts[column].strip():
            out.append(parts[column].strip())
        if len(out) == n:
            break
    return out


def max_length(model):
    c = model.config
    offset = c.pad_token_id + 1 if c.model_type in ("roberta", "xlm-roberta", "camembert") else 0
    return c.max_position_embeddings - offset


def encode(tokenizer, model, text):
    return tokenizer(text.lower(), truncation=True, max_length=max_length(model))["input_ids"]


def paper_loss(model, tokenizer, passages, seed, mask_prob):
    rng = SplitMix64(seed)
    total_loss, total_masked, total_tokens = 0.0, 0, 0
    for text in passages:
        ids = encode(tokenizer, model, text)
        special = tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
        candidates = [i for i, s in enumerate(special) if not s]
        if not candidates:  # the paper's script would divide by zero here; the engine skips it
            continue
        n = max(1, math.floor(len(candidates) * mask_prob))
        drawn = list(candidates)
        rng.shuffle(drawn)
        inputs = torch.tensor([ids])
        labels = inputs.clone()
        inputs[0, drawn[:n]] = tokenizer.mask_token_id
        labels[0, torch.tensor(special, dtype=torch.bool)] = -100
        with torch.no_grad():
            loss = model(input_ids=inputs, labels=labels).loss.item()
        total_loss += loss * n
        total_masked += n
        total_tokens += len(candidates)
    return {"loss": total_loss / total_masked, "tokens": total_tokens, "masked_tokens": total_masked}


def masked_only_loss(model, tokenizer, passages, seed, mask_prob):
    rng = SplitMix64(seed)
    total, count, tokens = 0.0, 0, 0
    for text in passages:
        ids = encode(tokenizer, model, text)
        candidates = list(range(1, len(ids) - 1))
        if not candidates:
            continue
        n = max(1, math.floor(len(candidates) * mask_prob))
        rng.shuffle(candidates)
        chosen = candidates[:n]
        inputs = torch.tensor([ids])
        inputs[0, chosen] = tokenizer.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=inputs).logits[0]
        log_probs = F.log_softmax(logits.double(), dim=-1)
        total += -sum(float(log_probs[p, ids[p]]) for p in chosen)
        count += n
        tokens += len(candidates)
    return {"loss": total / count, "tokens": tokens, "masked_tokens": count}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passages", type=int, default=30)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--reference-dir", default=None)
    args = p.parse_args(argv)
    path = pm.reference_dir(args.reference_dir) / "WikiText-103-test-en.tsv"
    passages = read_passages(path, args.passages)
    out = {"passages": len(passages), "file": path.name, "seed": args.seed, "mask_prob": 0.15, "models": {}}
    for name, folder in MODELS.items():
        model, tokenizer = pm.load_model(folder)
        out["models"][name] = {
            "paper": paper_loss(model, tokenizer, passages, args.seed, 0.15),
            "masked_tokens": masked_only_loss(model, tokenizer, passages, args.seed, 0.15),
        }
        print(name, out["models"][name])
    target = ROOT / "tests" / "fixtures" / "expected" / "lm_loss.json"
    target.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
