"""Expected outputs of a bundled model (public/models/minilm-brown, the default, or
public/models/brown-bert) from Hugging Face transformers.

Checks that transformers loads the folder as it is (AutoTokenizer, AutoModelForMaskedLM: nothing
missing, nothing unexpected), then writes tests/fixtures/expected/<folder name>.json: fill-mask logits
for the sentences of make_fixtures.py and the paper's measure on the test and valid splits computed
by the sequential procedure of paper_measure.py. Prints the top predictions of a few sentences (the
examples of MODEL_CARD.md).

Usage (from the repository root): python3 tests/reference/bundled_reference.py [MODEL_DIR] [OUT_JSON]
(run it once for each bundled model: public/models/minilm-brown, public/models/brown-bert)
Needs: pip install -r tests/reference/requirements.txt
Data: $WALF_REFERENCE_DIR, else ../shared/reference/desired-distributions
"""

import sys
from pathlib import Path

import torch

torch.set_num_threads(2)
sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402
import paper_measure as pm  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [
    "he went to the [MASK] to buy bread.",
    "she went to the [MASK] to buy bread.",
    "[MASK] is a nurse.",
    "[MASK] is a receptionist.",
    "[MASK] is a secretary.",
    "[MASK] is a carpenter.",
    "[MASK] is a firefighter.",
    "[MASK] is an electrician.",
    "the [MASK] fixed the roof of the church.",
]


def main():
    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "public/models/minilm-brown"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else mf.EXPECTED / f"{model_dir.name}.json"
    from transformers import AutoModelForMaskedLM

    _, info = AutoModelForMaskedLM.from_pretrained(str(model_dir), local_files_only=True,
                                                   output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    assert not problems, f"transformers reports {problems}"
    model, tok = pm.load_model(model_dir)
    print(f"transformers loads {model_dir}: {type(model).__name__}, {type(tok).__name__}, "
          f"{sum(p.numel() for p in model.parameters())} parameters")

    with torch.no_grad():
        for text in EXAMPLES:
            enc = tok(text, return_tensors="pt")
            pos = enc["input_ids"][0].tolist().index(tok.mask_token_id)
            probs = model(**enc).logits[0, pos].softmax(-1)
            top = probs.topk(8)
            words = ", ".join(f"{tok.convert_ids_to_tokens(i.item())} {p:.3f}"
                              for p, i in zip(top.values, top.indices))
            he, she = (probs[tok.convert_tokens_to_ids(w)].item() for w in ("he", "she"))
            print(f"  {text}  →  {words}   (he {he:.4f}, she {she:.4f})")

    expected = {"model": model_dir.name, "vocab_size": model.config.vocab_size,
                "fill": mf.fill_expected(model, tok), "measure": {}}
    for split in ("test", "valid"):
        res = pm.measure(model, tok, split, "sequential")
        split_out = {}
        for target, r in res["targets"].items():
            entry = {"individual": r["individual"], "summary": r["summary"]}
            if split == "test" and target == "equal":
                entry["raw"] = r["raw"]
            split_out[target] = entry
            print(f"  {split} {target}: " + ", ".join(f"{s['prof_gender']} {s['KL_mean']:.5f}"
                                                      for s in r["summary"]))
        expected["measure"][split] = split_out
    mf.dump_json(expected, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
