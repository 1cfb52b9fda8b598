"""Re-create the project's benchmark data files (public/data/) from the paper's released data.

Source: Shrestha & Srinivasan, "LLM Bias Detection and Mitigation through the Lens of Desired
Distributions" (EMNLP 2025), data folder of the repository
IngrojShrestha/bias_through_lens_of_desired_distributions (commit 91e2271).

The article ("a"/"an") of each profession is decided here once, by the paper's own rule (the first
IPA symbol of `eng_to_ipa.convert(profession)` is one of its vowels), and compared with a rule that
also recognises the diphthongs the paper's single-character test cannot see (eɪ, aɪ, aʊ, oʊ, ɔɪ, ər).
The script fails if the two disagree, so a change of data cannot silently change a sentence.

Usage: python3 tests/reference/make_data.py [REFERENCE_DIR]
       (default: $WALF_REFERENCE_DIR, else ../shared/reference/desired-distributions)
Needs: pip install eng-to-ipa
"""

import csv
import os
import sys
from pathlib import Path

import eng_to_ipa as ipa

PAPER_VOWELS = ["ə", "eɪ", "ɑ", "æ", "ə", "ɔ", "aʊ", "aɪ", "ɛ", "ər", "ɪ", "oʊ", "ɔɪ", "u", "i"]


def first_sound(word):
    return ipa.convert(word).replace("ˈ", "").replace("ˌ", "")


def paper_article(word):
    # The paper compares only the first character with its list, as reproduced here.
    return "an" if first_sound(word)[0] in PAPER_VOWELS else "a"


def full_article(word):
    phoneme = first_sound(word)
    if "*" in phoneme.split()[0]:  # not in the CMU dictionary: fall back on the spelling
        return "an" if word[0] in "aeio" else "a"
    return "an" if any(phoneme.startswith(v) for v in PAPER_VOWELS) else "a"


def read_tsv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def main():
    default = os.environ.get("WALF_REFERENCE_DIR", "../shared/reference/desired-distributions")
    ref = Path(sys.argv[1] if len(sys.argv) > 1 else default)
    out = Path(__file__).resolve().parents[2] / "public" / "data"
    out.mkdir(parents=True, exist_ok=True)

    split_of, place_in_split = {}, {}
    for split in ("train", "valid", "test"):
        for i, row in enumerate(read_tsv(ref / f"professions_{split}.tsv")):
            split_of[row["profession"]] = split
            place_in_split[row["profession"]] = i

    # All files are sorted by share of women but break ties differently. Order by share, then by
    # the place in the split's own file, so that each split reads in the paper's order.
    rows = sorted(read_tsv(ref / "profession_dist.tsv"),
                  key=lambda r: (float(r["occupation_dist"]), place_in_split[r["profession"]]))
    disagreements = []
    with open(out / "professions.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["bls_title", "profession", "article", "female_share", "male_share", "group", "split"])
        for row in rows:
            name = row["profession"]
            article = paper_article(name)
            if article != full_article(name):
                disagreements.append(name)
            w.writerow([row["professions_original"], name, article, row["female_dist"], row["male_dist"],
                        row["prof_gender"], split_of[name]])
    if disagreements:
        sys.exit(f"paper's article rule disagrees with the full rule for: {disagreements}")

    templates = read_tsv(ref / "templates_all.tsv")
    train_ids = {r["template_id"] for r in read_tsv(ref / "templates_train.tsv")}
    with open(out / "templates.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "template", "split"])
        for row in templates:
            w.writerow([row["template_id"], row["template"], "train" if row["template_id"] in train_ids else "test"])

    with open(out / "gendered_phrases.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["phrase", "gender"])
        for gender in ("male", "female"):
            for line in open(ref / f"{gender}_gendered_words.txt", encoding="utf-8"):
                if line.strip():
                    w.writerow([line.strip(), gender])
    print(f"wrote {len(rows)} professions, {len(templates)} templates to {out}")


if __name__ == "__main__":
    main()
