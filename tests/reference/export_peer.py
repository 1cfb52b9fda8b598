"""Exports a masked LM for the browser peer benchmark (tests/e2e/peer-bench.mjs): transformers.js's
layout, and the probe's distinct masked sentences with PyTorch's answers for them.

  python3 tests/reference/export_peer.py --model DIR --out OUT [--split test]

OUT receives:
* config.json and tokenizer.json, copied; tokenizer_config.json, written by transformers (the
  tokenizer.json stays the model's own, byte for byte);
* onnx/model.onnx: AutoModelForMaskedLM in float32, inputs input_ids, attention_mask (and
  token_type_ids where the model has them), output logits, batch and length dynamic: the file
  transformers.js loads for `dtype: 'fp32'`;
* sentences.json: the split's masked sentences of the paper's procedure (paper_measure.build_items:
  each AM and TAM sentence), each distinct (text, masked positions) once, in the order of first use,
  as walf-lab's probe runs them; for each, the positions read (from the first mask on) and, for
  every candidate id (the subword ids of the gendered words), PyTorch's log-softmax at each of
  those positions. The benchmark checks the peer's numbers against these before timing it.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paper_measure  # noqa: E402


def distinct_sentences(tokenizer, split):
    items = paper_measure.build_items(tokenizer, paper_measure.load_split(split))
    seen = {}
    for it in items:
        for text in (it["sentence_AM"], it["sentence_TAM"]):
            seen.setdefault((text, it["attribute_num"]), None)
    candidates = sorted({i for it in items for i in it["attribute_ids"]})
    return [{"text": t, "n": n} for t, n in seen], candidates, len(items) * 2


@torch.no_grad()
def reference_log_probs(model, tokenizer, sentences, candidates, batch_size=32):
    mask_id = tokenizer.mask_token_id
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start:start + batch_size]
        enc = tokenizer([s["text"] for s in chunk], return_tensors="pt", padding=True)
        logits = model(**enc).logits
        for row, s in enumerate(chunk):
            first = int((enc["input_ids"][row] == mask_id).nonzero()[0, 0])
            positions = list(range(first, first + s["n"]))
            lp = torch.log_softmax(logits[row, positions], dim=-1)[:, candidates]
            s["log_probs"] = lp.tolist()


def export_onnx(model, tokenizer, path):
    enc = tokenizer(["a [MASK] sentence.".replace("[MASK]", tokenizer.mask_token), "two"],
                    return_tensors="pt", padding=True)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in enc]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch", 1: "sequence"}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, tuple(enc[n] for n in names), str(path), input_names=names,
                      output_names=["logits"], dynamic_axes=axes, opset_version=17, dynamo=False)
    return names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="local folder with config.json, tokenizer.json, model.safetensors")
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="test", choices=paper_measure.SPLITS)
    args = p.parse_args(argv)

    model_dir, out = Path(args.model), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = paper_measure.load_model(model_dir)
    # the model's inputs, in the order of its forward(): the export passes them positionally
    model.config.return_dict = True
    tokenizer.save_pretrained(str(out))
    for name in ("config.json", "tokenizer.json"):
        shutil.copyfile(model_dir / name, out / name)
    for extra in ("special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt"):
        (out / extra).unlink(missing_ok=True)
    inputs = export_onnx(model, tokenizer, out / "onnx" / "model.onnx")

    sentences, candidates, paper_sentences = distinct_sentences(tokenizer, args.split)
    reference_log_probs(model, tokenizer, sentences, candidates)
    (out / "sentences.json").write_text(json.dumps({
        "split": args.split,
        "model": model_dir.name,
        "inputs": inputs,
        "mask_token": tokenizer.mask_token,
        "paper_sentences": paper_sentences,
        "candidate_ids": candidates,
        "sentences": sentences,
    }), encoding="utf-8")
    print(f"{out}: onnx/model.onnx ({(out / 'onnx' / 'model.onnx').stat().st_size / 1e6:.1f} MB), "
          f"{len(sentences)} distinct sentences of {paper_sentences}, inputs {', '.join(inputs)}")


if __name__ == "__main__":
    sys.exit(main())
