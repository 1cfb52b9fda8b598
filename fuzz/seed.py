#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/ from the project's real files
(fixture models, the bundled model, the benchmark data) and from links and requests written the
way the app writes them. The corpora are generated, never committed."""

import base64
import json
import shutil
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
MODELS = [ROOT / "tests/fixtures/models" / m for m in ("bert", "bert-legacy", "distilbert", "roberta")]
BUNDLED = ROOT / "public/models/brown-bert"


def put(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def link(result):
    """A share link as the app writes it: JSON, raw deflate, base64url, version prefix."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = packer.compress(json.dumps(result).encode()) + packer.flush()
    return "v1." + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    for folder in MODELS + [BUNDLED]:
        put("config_json", folder.name, (folder / "config.json").read_bytes())
        put("tokenizer_json", folder.name, (folder / "tokenizer.json").read_bytes())
    # the tiny models only: libFuzzer's inputs stay small
    for folder in MODELS:
        put("safetensors", folder.name, (folder / "model.safetensors").read_bytes())

    data = ROOT / "public/data"
    tsv = [(data / f).read_bytes() for f in ("professions.tsv", "templates.tsv", "gendered_phrases.tsv")]
    put("benchmark_tsv", "bundled", b"\xff".join(tsv))
    head = [b"\n".join(t.splitlines()[:4]) for t in tsv]
    put("benchmark_tsv", "short", b"\xff".join(head))

    professions = [
        {"name": "nurse", "group": "female_dominated", "female_share": 0.87, "p_female": 0.61},
        {"name": "carpenter", "group": "male_dominated", "female_share": 0.03, "p_female": 0.2},
        {"name": "baker", "group": "balanced", "female_share": 0.5, "p_female": 0.4},
    ]
    plain = {"model": "bert-base-uncased", "split": "test", "professions": professions}
    put("share_link", "plain", link(plain))
    tuned = dict(plain)
    tuned["professions"] = [dict(p, p_female_after=0.5) for p in professions]
    tuned["tuning"] = {
        "target": "equal", "lr": 2e-5, "gamma": 0.1, "beta": 0.95, "batch_size": 8, "epochs": 3,
        "curve": [{"step": i, "kl": 0.1 / (i + 1), "mlm_loss": 2.0} for i in range(20)],
    }
    put("share_link", "tuned", link(tuned))

    edits = {"professions_tsv": None, "templates_tsv": None, "phrases_tsv": None}
    requests = {
        "load": {"kind": "load", "source": {"kind": "bundled", "base": "models/brown-bert"}, "backend": "auto"},
        "hub": {"kind": "load", "source": {"kind": "hub", "id": "bert-base-uncased", "base": "https://huggingface.co"}, "backend": "cpu"},
        "probe": {"kind": "probe", "job": 2, "split": "test", "benchmark": edits},
        "fill": {"kind": "fill", "job": 3, "text": "[MASK] is a nurse.", "top": 10},
        "tune": {"kind": "tune_start", "job": 4, "benchmark": edits, "settings": {
            "target": "real-world", "gamma": 0.1, "beta": 0.95, "lr": 2e-5, "batch_size": 8,
            "max_epochs": 50, "patience": 5, "max_steps": None, "dropout": True}},
        "lm_loss": {"kind": "lm_loss", "job": 5, "text": "the nurse said that she would come."},
        "pause": {"kind": "tune_pause"},
    }
    for name, request in requests.items():
        put("engine_request", name, json.dumps(request))


if __name__ == "__main__":
    main()
