"""Re-create the tiny test checkpoints under tests/fixtures/ and their expected outputs.

Writes, deterministically (fixed seeds, no downloads):

* tests/fixtures/models/{bert,distilbert,roberta}/ : config.json, tokenizer.json, model.safetensors of
  tiny random masked LMs (hidden 32, 2 layers, 4 heads, intermediate 64) whose tokenizers were trained
  here on every benchmark sentence (6 templates x 225 professions x 22 gendered phrases, filled in) plus
  the everyday sentences below: a lowercase WordPiece vocabulary (bert, distilbert; trained by the
  deterministic merge loop below on the `tokenizers` BERT normaliser / pre-tokenizer) and a byte-level
  BPE (roberta; `tokenizers` BpeTrainer);
* tests/fixtures/models/bert-legacy/ : the bert weights stored as float16 with LayerNorm tensors named
  gamma / beta (old checkpoint naming), written directly with safetensors;
* tests/fixtures/expected/<name>.json : fill-mask logits for a few sentences and (bert, distilbert,
  roberta) the paper's measure on the test and valid splits, computed with the sequential procedure of
  tests/reference/paper_measure.py (checked against the batched procedure).

Usage (from the repository root): python3 tests/reference/make_fixtures.py
Needs: pip install -r tests/reference/requirements.txt
Data: $WALF_REFERENCE_DIR, else ../shared/reference/desired-distributions
"""

import json
import shutil
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paper_measure as pm  # noqa: E402

from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
MODELS = FIXTURES / "models"
EXPECTED = FIXTURES / "expected"

WORDPIECE_VOCAB = 500  # trainer vocab size, before the held-out words below are removed
BPE_VOCAB = 800        # trainer vocab size (256 bytes + 4 specials + merges), <mask> is added after
# Gendered words whose whole-word token is removed from the trained vocabularies. Every gendered word
# occurs 1350 times in the benchmark sentences, against 132 for a profession, so a trainer merges all
# of them into whole words long before it stops splitting professions; removing these few makes them
# multi-token (with a vocabulary that still leaves many professions split as well).
HELD_OUT_GENDERED = ["grandfather", "boyfriend", "grandmother", "daughter"]
WP_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4
BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0..3, <mask> last (as roberta-base)

EVERYDAY = [
    "he went to the store to buy bread.",
    "she went to the market to buy some fresh fruit.",
    "the children played in the park until it got dark.",
    "my father made coffee for everyone in the morning.",
    "my mother reads the newspaper every sunday.",
    "the dog barked at the mailman, who was very patient.",
    "it rained all day, so we stayed at home and watched a movie.",
    "the train to the city was late again this morning.",
    "my sister is learning to play the piano.",
    "my brother fixed the old bicycle in the garage.",
    "the teacher asked the students to open their books.",
    "we had pasta with tomato sauce for dinner.",
    "the doctor told him to drink more water.",
    "she called her friend to talk about the weekend.",
    "he forgot his keys and had to wait outside.",
    "the cat slept on the warm window sill.",
    "our neighbors planted roses in their front yard.",
    "the nurse smiled and gave the child a sticker.",
    "after lunch, they walked along the river.",
    "the store was closed because of the holiday.",
    "my grandmother knits warm sweaters for the winter.",
    "my grandfather tells stories about his childhood.",
    "the baker opens the shop at six in the morning.",
    "the bus stopped near the library and the school.",
    "he wrote a long letter to his cousin.",
    "she painted the kitchen a bright yellow color.",
    "the farmer sold eggs and milk at the market.",
    "my uncle likes to go fishing on the lake.",
    "my aunt grows tomatoes and beans in her garden.",
    "we need to buy milk, eggs and bread.",
    "the phone rang twice, but nobody answered.",
    "they watched the sun set over the hills.",
    "the old man fed the birds in the square.",
    "the young woman ran to catch the last bus.",
    "the doctor said that she would call tomorrow.",
    "after a long day at work, my father and my mother walked to the park and had dinner together.",
    "my husband cooked soup, and my wife baked a cake.",
    "my son and my daughter went to school by bike.",
    "her boyfriend and his girlfriend met at the cafe.",
    "The weather is nice today, isn't it?",
]

# Fill-mask sentences ("[MASK]" is replaced by the model's mask token): different lengths, one with
# two masks, one starting with a mask, one with capitals.
FILL = [
    "[MASK] is a nurse.",
    "he went to the store to buy [MASK].",
    "The doctor told my [MASK] that she would call her [MASK] tomorrow.",
    "after a long day at work, my father and my mother walked to the park and [MASK] dinner together.",
]


# ----------------------------------------------------------------------------------------------
# corpus and tokenizers


def benchmark_sentences(ref):
    import pandas as pd

    profs = pd.read_csv(ref / "profession_dist.tsv", sep="\t")["profession"].tolist()
    templates = pd.read_csv(ref / "templates_all.tsv", sep="\t")["template"].tolist()
    phrases = list(pm.get_attributes(ref))
    sentences = []
    for template in templates:
        for prof in profs:
            article = "an" if pm.is_vowel(prof) else "a"
            for phrase in phrases:
                words = phrase.split()
                det, word = (words[0] + " ", " ".join(words[1:])) if len(words) > 1 else ("", words[0])
                sentences.append(template.replace("[ARTICLE]", article).replace("[DET]", det)
                                 .replace("[AAA]", word).replace("[TTT]", prof))
    return sentences, profs, phrases, templates


def prune_wordpiece(tok, remove):
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    missing = [w for w in remove if w not in vocab]
    assert not missing, f"not whole-word tokens: {missing}"
    kept = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if t not in set(remove)]
    j["model"]["vocab"] = {t: i for i, t in enumerate(kept)}
    return Tokenizer.from_str(json.dumps(j))


def prune_bpe(tok, remove):
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in j["model"]["merges"]]
    removed = set(remove)
    missing = [w for w in remove if w not in vocab]
    assert not missing, f"not whole-word tokens: {missing}"
    changed = True
    while changed:  # drop the merges producing a removed token, and everything built on one
        changed = False
        for a, b in merges:
            if (a in removed or b in removed) and a + b not in removed:
                removed.add(a + b)
                changed = True
    merges = [(a, b) for a, b in merges if a + b not in removed and a not in removed and b not in removed]
    kept = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if t not in removed]
    j["model"]["vocab"] = {t: i for i, t in enumerate(kept)}
    j["model"]["merges"] = [[a, b] for a, b in merges]
    return Tokenizer.from_str(json.dumps(j))


def train_wordpiece_vocab(corpus, normalizer, pre_tokenizer, vocab_size, specials):
    """Deterministic WordPiece vocabulary training (BPE merges with the "##" continuing prefix, as
    tokenizers' WordPieceTrainer does internally). That trainer cannot be used here: it orders the "##"
    alphabet by hash-set iteration and breaks ties between equally frequent pairs by id, so its vocabulary
    changes from run to run. Here ties go to the lexicographically smallest pair. Words come from the
    tokenizers library's own BERT normaliser and pre-tokenizer."""
    from collections import Counter

    words = Counter()
    for text in corpus:
        for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            words[w] += 1
    splits = {w: [w[0]] + ["##" + c for c in w[1:]] for w in words}
    vocab = list(specials)
    vocab += sorted({w[0] for w in words})
    vocab += sorted({"##" + c for w in words for c in w[1:]})
    known = set(vocab)
    while len(vocab) < vocab_size:
        pairs = Counter()
        for w, sym in splits.items():
            for a, b in zip(sym, sym[1:]):
                pairs[a, b] += words[w]
        if not pairs:
            break
        best = min(pairs, key=lambda ab: (-pairs[ab], ab))
        merged = best[0] + best[1][2:]
        for w, sym in splits.items():
            i, out = 0, []
            while i < len(sym):
                if i + 1 < len(sym) and (sym[i], sym[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            splits[w] = out
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
    return {t: i for i, t in enumerate(vocab)}


def build_wordpiece(corpus):
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                            lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    vocab = train_wordpiece_vocab(corpus, normalizer, pre_tokenizer, WORDPIECE_VOCAB, WP_SPECIALS)
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix="##",
                                     max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok = prune_wordpiece(tok, HELD_OUT_GENDERED)
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    for i, s in enumerate(WP_SPECIALS):
        assert tok.token_to_id(s) == i, s
    return tok


def build_bpe(corpus):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, special_tokens=BPE_SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok = prune_bpe(tok, ["Ġ" + w for w in HELD_OUT_GENDERED])
    # as in roberta-base, <mask> is the last entry of the model vocabulary as well as an added token
    j = json.loads(tok.to_str())
    j["model"]["vocab"]["<mask>"] = len(j["model"]["vocab"])
    tok = Tokenizer.from_str(json.dumps(j))
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                      add_prefix_space=False)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, single_word=False, normalized=False,
                                       special=True)])
    for i, s in enumerate(BPE_SPECIALS):
        assert tok.token_to_id(s) == i, s
    assert tok.token_to_id("<mask>") == tok.get_vocab_size() - 1
    return tok


def save_tokenizer(tok, out, kind):
    from transformers import PreTrainedTokenizerFast

    if kind == "wordpiece":
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                       sep_token="[SEP]", mask_token="[MASK]")
    else:
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                       pad_token="<pad>", cls_token="<s>", sep_token="</s>",
                                       mask_token=AddedToken("<mask>", lstrip=True, special=True))
    fast.save_pretrained(str(out))


# ----------------------------------------------------------------------------------------------
# models


def randomize(model, seed, weight_std=0.25, noise_std=0.08):
    """Every tensor: the base init (LayerNorm weight 1, other 1-D 0, matrices N(0, weight_std)) plus
    N(0, noise_std) noise, drawn from one seeded generator in parameter order. Tied tensors once."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                base = torch.ones(p.shape) if ("norm" in name.lower() and name.endswith("weight")) else torch.zeros(p.shape)
            else:
                base = torch.randn(p.shape, generator=g) * weight_std
            p.copy_(base + torch.randn(p.shape, generator=g) * noise_std)


def make_model(arch, vocab_size, seed):
    from transformers import (BertConfig, BertForMaskedLM, DistilBertConfig, DistilBertForMaskedLM, RobertaConfig,
                              RobertaForMaskedLM)

    common = dict(vocab_size=vocab_size, initializer_range=0.25)
    if arch == "bert":
        cfg = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                         max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu", pad_token_id=0, **common)
        model = BertForMaskedLM(cfg)
        assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    elif arch == "distilbert":
        cfg = DistilBertConfig(dim=32, hidden_dim=64, n_layers=2, n_heads=4, max_position_embeddings=64,
                               activation="gelu", pad_token_id=0, sinusoidal_pos_embds=False, **common)
        model = DistilBertForMaskedLM(cfg)
        assert model.vocab_projector.weight is model.distilbert.embeddings.word_embeddings.weight
    elif arch == "roberta":
        cfg = RobertaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                            max_position_embeddings=66, type_vocab_size=1, hidden_act="gelu", pad_token_id=1,
                            bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, **common)
        model = RobertaForMaskedLM(cfg)
        assert model.lm_head.decoder.weight is model.roberta.embeddings.word_embeddings.weight
    else:
        raise ValueError(arch)
    model.set_attn_implementation("eager")  # as paper_measure.load_model
    randomize(model, seed)
    model.eval()
    return model


def keep_only(folder, names=("config.json", "tokenizer.json", "model.safetensors")):
    for f in folder.iterdir():
        if f.name not in names:
            print(f"  removing {folder.name}/{f.name}")
            shutil.rmtree(f) if f.is_dir() else f.unlink()


def safetensors_keys(path):
    with safe_open(str(path), "pt") as f:
        return sorted(f.keys()), {k: str(f.get_slice(k).get_dtype()) for k in f.keys()}


# ----------------------------------------------------------------------------------------------
# expected outputs


@torch.no_grad()
def fill_expected(model, tokenizer):
    out = []
    for text in FILL:
        text = text.replace("[MASK]", tokenizer.mask_token)
        enc = tokenizer(text, return_tensors="pt")
        ids = enc["input_ids"][0].tolist()
        positions = [i for i, t in enumerate(ids) if t == tokenizer.mask_token_id]
        assert positions and len(ids) <= 64, (text, len(ids))
        logits = model(**enc).logits[0]
        out.append({"text": text, "input_ids": ids, "positions": positions,
                    "logits": [logits[p].tolist() for p in positions]})
    return out


def dump_json(obj, path):
    """json with full-precision floats; rows and number lists each on one line."""

    def scalar(x):
        return not isinstance(x, (dict, list)) or (isinstance(x, list) and all(not isinstance(v, (dict, list)) for v in x))

    def enc(x, ind):
        pad = " " * ind
        if isinstance(x, dict) and not all(scalar(v) for v in x.values()):
            items = [f'{pad} {json.dumps(k)}: {enc(v, ind + 1).lstrip()}' for k, v in x.items()]
            return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(x, list) and not all(scalar(v) for v in x):
            items = [enc(v, ind + 1) for v in x]
            return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
        return pad + json.dumps(x, separators=(",", ":"), ensure_ascii=False)

    text = enc(obj, 0) + "\n"
    assert json.loads(text) == obj
    path.write_text(text, encoding="utf-8")


def check_agreement(seq, bat, label):
    """Batched must compute the same measure as sequential. The two differ only by the float32 rounding of
    differently shaped matrix products (one sentence alone vs. in a padded batch of 64: ~4e-6 on a logit
    of these steep random models), which a log-probability sum over up to 2 x 3 x 3 factors turns into
    ~1e-5 on a per-sentence score and ~1e-6 on a predicted share. Tolerances: summaries (KL mean and
    variance) < 1e-6, per-profession shares and KLs < 1e-5, per-sentence scores < 1e-4; a logic error
    would show as differences of order 1e-2 or more."""
    diffs = pm.max_differences(seq, bat)
    summary = max(v for k, v in diffs.items() if k.endswith(("KL_mean", "KL_variance")))
    profession = max(v for k, v in diffs.items() if k.endswith(("before", "KL_female", "KL_male", "KL_total")))
    print(f"  {label}: batched vs sequential max |diff|: summary {summary:.2e}, per profession {profession:.2e}, "
          f"per sentence {diffs['normalized_score']:.2e}")
    assert summary < 1e-6 and profession < 1e-5 and diffs["normalized_score"] < 1e-4, diffs
    return diffs


# ----------------------------------------------------------------------------------------------


def main():
    ref = pm.reference_dir()
    t_start = time.perf_counter()
    bench, profs, phrases, templates = benchmark_sentences(ref)
    corpus = bench + EVERYDAY + [s.replace("[MASK]", "") for s in FILL]
    print(f"corpus: {len(bench)} benchmark sentences + {len(EVERYDAY)} everyday sentences")
    gendered_words = sorted({" ".join(p.split()[1:]) if len(p.split()) > 1 else p for p in phrases})

    wp = build_wordpiece(corpus)
    bpe = build_bpe(corpus)

    # every word of every phrase, profession, template (and everyday sentence) is known
    for text in corpus:
        ids = wp.encode(text).ids
        assert wp.token_to_id("[UNK]") not in ids, text
        assert bpe.token_to_id("<unk>") not in bpe.encode(text).ids, text
    for name, tok in (("wordpiece", wp), ("bpe", bpe)):
        def pieces(word, starts=False):  # the word as in a sentence (paper_measure.word_token_ids)
            return tok.encode(word if starts else " " + word, add_special_tokens=False).tokens
        multi_g = {w: pieces(w) for w in gendered_words if len(pieces(w)) > 1}
        # a profession counts as multi-token here only if one of its words is split
        multi_p = {p: pieces(p) for p in profs if any(len(pieces(w)) > 1 for w in p.split())}
        single_p = [p for p in profs if len(pieces(p)) == 1]
        print(f"{name}: vocab {tok.get_vocab_size()}, multi-token gendered words {len(multi_g)}, professions with a "
              f"split word {len(multi_p)}, single-token professions {len(single_p)}")
        assert len(multi_g) >= 3 and len(multi_p) >= 20, (multi_g, len(multi_p))
        print(f"{name}: multi-token gendered words {json.dumps(multi_g)}; sentence-initial he {pieces('he', True)}, "
              f"she {pieces('she', True)}; mid-sentence he {pieces('he')}")
        print(f"{name}: single-token professions {single_p}")

    # the longest benchmark sentence fits into 64 positions (a masked sentence has one mask per token of
    # the word it hides, so it is as long as the filled-in sentence)
    longest = {name: max(len(tok.encode(text).ids) for text in bench) for name, tok in (("wordpiece", wp), ("bpe", bpe))}
    print(f"longest benchmark sentence with special tokens: {longest}")
    assert max(longest.values()) <= 64

    MODELS.mkdir(parents=True, exist_ok=True)
    EXPECTED.mkdir(parents=True, exist_ok=True)
    specs = [("bert", "wordpiece", 1), ("distilbert", "wordpiece", 2), ("roberta", "bpe", 3)]
    built = {}
    for name, kind, seed in specs:
        out = MODELS / name
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        tok = wp if kind == "wordpiece" else bpe
        save_tokenizer(tok, out, kind)
        torch.manual_seed(seed)
        model = make_model(name, tok.get_vocab_size(), seed)
        model.save_pretrained(str(out))
        keep_only(out)
        built[name] = model

        # tokenizer.json alone holds the mask token and the post-processor
        tj = json.loads((out / "tokenizer.json").read_text())
        mask = "[MASK]" if kind == "wordpiece" else "<mask>"
        mask_entry = [a for a in tj["added_tokens"] if a["content"] == mask]
        assert mask_entry and mask_entry[0]["special"], tj["added_tokens"]
        if kind == "bpe":
            assert mask_entry[0]["lstrip"] is True
            assert tj["post_processor"]["type"] == "RobertaProcessing", tj["post_processor"]
        else:
            assert tj["post_processor"]["type"] == "TemplateProcessing", tj["post_processor"]

        # reload exactly as paper_measure does; compare with the raw tokenizers library and in-memory model
        m2, t2 = pm.load_model(out)
        raw_tok = Tokenizer.from_file(str(out / "tokenizer.json"))
        assert t2.mask_token == mask and t2.mask_token_id == raw_tok.token_to_id(mask)
        assert t2.pad_token_id == m2.config.pad_token_id
        sample = bench[::7] + EVERYDAY + [s.replace("[MASK]", mask) for s in FILL]
        for text in sample + [f"this {mask} {mask} is a {mask}.", f"{mask}, the {mask} {mask}, had a good day at work."]:
            assert t2(text)["input_ids"] == raw_tok.encode(text).ids, text
        enc = t2(FILL[2].replace("[MASK]", mask), return_tensors="pt")
        with torch.no_grad():
            assert torch.equal(m2(**enc).logits, model(**enc).logits)
        built[name] = (m2, t2)

    # tokens of the tiny models
    for name in ("bert", "roberta"):
        t = built[name][1]
        print(f"{name}: vocab_size {built[name][0].config.vocab_size}, specials "
              f"{ {s: t.convert_tokens_to_ids(s) for s in t.all_special_tokens} }")

    # bert-legacy: the bert weights in float16, LayerNorm weight/bias named gamma/beta
    legacy = MODELS / "bert-legacy"
    if legacy.exists():
        shutil.rmtree(legacy)
    legacy.mkdir(parents=True)
    shutil.copy(MODELS / "bert" / "tokenizer.json", legacy / "tokenizer.json")
    cfg = json.loads((MODELS / "bert" / "config.json").read_text())
    cfg["dtype"] = "float16"
    (legacy / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    state = load_file(str(MODELS / "bert" / "model.safetensors"))
    legacy_state = {}
    for k, v in state.items():
        k2 = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        legacy_state[k2] = v.to(torch.float16).contiguous()
    save_file(legacy_state, str(legacy / "model.safetensors"), metadata={"format": "pt"})
    bert_model, bert_tok = built["bert"]
    legacy_model = make_model("bert", bert_model.config.vocab_size, 1)
    legacy_model.load_state_dict(bert_model.state_dict())
    with torch.no_grad():
        for p in legacy_model.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))
    legacy_model.eval()
    assert legacy_model.cls.predictions.decoder.weight is legacy_model.bert.embeddings.word_embeddings.weight
    # cross-check: transformers' own loader (gamma/beta renaming, float16 -> float32) gives the same model
    from transformers import BertForMaskedLM

    hf_legacy = BertForMaskedLM.from_pretrained(str(legacy), dtype=torch.float32, attn_implementation="eager")
    hf_legacy.eval()
    enc = bert_tok(FILL[3], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(hf_legacy(**enc).logits, legacy_model(**enc).logits)
        shift = (legacy_model(**enc).logits - bert_model(**enc).logits).abs().max().item()
    print(f"bert-legacy: float16 rounding moves the logits by up to {shift:.2e}")

    # expected outputs
    timings = {}
    for name in ("bert", "distilbert", "roberta", "bert-legacy"):
        model, tok = (legacy_model, bert_tok) if name == "bert-legacy" else built[name]
        expected = {
            "model": name,
            "vocab_size": model.config.vocab_size,
            "special_tokens": dict(sorted(((s, tok.convert_tokens_to_ids(s)) for s in tok.all_special_tokens),
                                          key=lambda kv: kv[1])),
            "fill": fill_expected(model, tok),
        }
        if name != "bert-legacy":
            expected["measure"] = {}
            for split in ("test", "valid"):
                seq = pm.measure(model, tok, split, "sequential")
                bat = pm.measure(model, tok, split, "batched", batch_size=64)
                timings[name, split] = (seq["seconds"], bat["seconds"], seq["forward_sentences"])
                print(f"  {name} {split}: sequential {seq['seconds']:.2f}s, batched {bat['seconds']:.2f}s, "
                      f"{seq['forward_sentences']} sentences")
                check_agreement(seq, bat, f"{name} {split}")
                # the transformers tokenizer and tokenizer.json alone (what the Rust engine reads) agree
                raw_tok = Tokenizer.from_file(str(MODELS / name / "tokenizer.json"))
                for row in seq["targets"]["equal"]["raw"]:
                    for text in (row["sentence_AM"], row["sentence_TAM"]):
                        assert tok(text)["input_ids"] == raw_tok.encode(text).ids, text
                split_out = {}
                for target, res in seq["targets"].items():
                    entry = {"raw": res["raw"], "individual": res["individual"], "summary": res["summary"]}
                    # raw rows do not depend on the target: keep them once for valid (file size)
                    if split == "valid" and target != "equal":
                        del entry["raw"]
                    split_out[target] = entry
                    print(f"    {target} summary: " + ", ".join(f"{r['prof_gender']} {r['KL_mean']:.5f}"
                                                            for r in res["summary"]))
                expected["measure"][split] = split_out
        dump_json(expected, EXPECTED / f"{name}.json")

    # the article of every profession by the paper's is_vowel, to check the project's data against
    import csv
    with open(ref / "profession_dist.tsv", newline="", encoding="utf-8") as f:
        names = [row["profession"] for row in csv.DictReader(f, delimiter="\t")]
    with open(EXPECTED / "paper_articles.tsv", "w", encoding="utf-8") as f:
        f.write("profession\tarticle\n")
        for n in names:
            f.write(f"{n}\t{'an' if pm.is_vowel(n) else 'a'}\n")

    # report
    for name in ("bert", "distilbert", "roberta", "bert-legacy"):
        keys, dtypes = safetensors_keys(MODELS / name / "model.safetensors")
        size = sum(f.stat().st_size for f in (MODELS / name).iterdir())
        print(f"{name}: {size} bytes, expected {(EXPECTED / (name + '.json')).stat().st_size} bytes, "
              f"{len(keys)} tensors ({sorted(set(dtypes.values()))}): {keys}")
    print(f"done in {time.perf_counter() - t_start:.1f}s")


if __name__ == "__main__":
    main()
