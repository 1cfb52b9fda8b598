//! Counterfactual data augmentation's word swap: general text with each gendered word replaced by
//! its counterpart, the text a CDA baseline fine-tunes on. The pairs are the benchmark's own
//! (its i-th male phrase beside its i-th female one: he/she, this man/this woman, my brother/my
//! sister …), plus the pronouns whose counterpart depends on how they are used: "his book" →
//! "her book" but "it is his" → "it is hers", "saw her" → "saw him" but "her book" → "his
//! book". Case is kept ("He" → "She"), and a plural noun swaps as its singular does.
//!
//! Plain text in, plain text out: no model, so it is tested on sentences written for the test.

use std::collections::HashMap;

use crate::data::{Benchmark, Gender};

/// Words after which "her" is an object ("saw her in town" → "him") and "his" stands alone
/// ("it is his and …" → "hers"); before any other word they are determiners.
const NOT_A_NOUN: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "an", "and", "any", "are", "as", "at", "be",
    "because", "before", "but", "by", "did", "do", "does", "down", "for", "from", "had", "has",
    "have", "her", "here", "him", "his", "how", "if", "in", "into", "is", "it", "just", "me",
    "more", "no", "not", "now", "of", "off", "on", "once", "or", "out", "over", "so", "some",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "why", "will", "with", "would", "you",
];

#[derive(Debug, Clone)]
pub struct Swapper {
    /// Word sequences and their counterparts of the same length, longest first.
    phrases: Vec<(Vec<String>, Vec<String>)>,
    /// Single words (lower case) and their counterparts.
    words: HashMap<String, String>,
}

impl Swapper {
    /// The benchmark's phrase pairs (the i-th male phrase with the i-th female one, as many as
    /// both genders have) and the pronouns.
    pub fn from_benchmark(benchmark: &Benchmark) -> Self {
        let of = |g: Gender| -> Vec<Vec<String>> {
            benchmark
                .phrases
                .iter()
                .filter(|p| p.gender == g)
                .map(|p| p.phrase.split_whitespace().map(str::to_lowercase).collect())
                .collect()
        };
        let (male, female) = (of(Gender::Male), of(Gender::Female));
        let mut phrases = Vec::new();
        let mut words = HashMap::new();
        for (m, f) in male.into_iter().zip(female) {
            // the head words swap alone too ("the man" as well as "this man"), and so do their
            // plurals
            if let (Some(hm), Some(hf)) = (m.last(), f.last())
                && hm != "he"
            {
                words.insert(hm.clone(), hf.clone());
                words.insert(hf.clone(), hm.clone());
                words.insert(format!("{hm}s"), format!("{hf}s"));
                words.insert(format!("{hf}s"), format!("{hm}s"));
            }
            // a phrase swaps word for word (an edited list may pair "my dear uncle" with "my
            // aunt": then only the head words swap)
            if m.len() > 1 && m.len() == f.len() {
                phrases.push((m.clone(), f.clone()));
                phrases.push((f, m));
            }
        }
        for (a, b) in [
            ("he", "she"),
            ("himself", "herself"),
            ("man", "woman"),
            ("men", "women"),
        ] {
            words.insert(a.into(), b.into());
            words.insert(b.into(), a.into());
        }
        words.insert("hers".into(), "his".into());
        phrases.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        Self { phrases, words }
    }

    /// `text` with every gendered word swapped for its counterpart.
    pub fn swap(&self, text: &str) -> String {
        let pieces = split(text);
        // indices of the word pieces, to look ahead past spaces and punctuation
        let words: Vec<usize> = (0..pieces.len()).filter(|&i| is_word(pieces[i])).collect();
        let lower: Vec<String> = words.iter().map(|&i| pieces[i].to_lowercase()).collect();
        let mut out: Vec<String> = pieces.iter().map(|p| p.to_string()).collect();
        let mut w = 0;
        while w < words.len() {
            if let Some((from, to)) = self.phrases.iter().find(|(from, _)| {
                lower
                    .get(w..w + from.len())
                    .is_some_and(|run| run == from.as_slice())
                    && adjacent(&pieces, &words[w..w + from.len()])
            }) {
                for (k, &i) in words[w..w + from.len()].iter().enumerate() {
                    out[i] = with_case(pieces[i], &to[k]);
                }
                w += from.len();
                continue;
            }
            let word = lower[w].as_str();
            // the next word, if nothing but spaces stands between
            let next = (w + 1 < words.len() && adjacent(&pieces, &words[w..w + 2]))
                .then(|| lower[w + 1].as_str());
            let determiner = next.is_some_and(|n| !NOT_A_NOUN.contains(&n));
            let swapped = match word {
                "her" => Some(if determiner { "his" } else { "him" }),
                "his" => Some(if determiner { "her" } else { "hers" }),
                "him" => Some("her"),
                _ => self.words.get(word).map(String::as_str),
            };
            if let Some(s) = swapped {
                out[words[w]] = with_case(pieces[words[w]], s);
            }
            w += 1;
        }
        out.concat()
    }
}

/// Words (letters, digits, apostrophes inside) and everything between them, in order.
fn split(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        let word_char = c.is_alphanumeric();
        if i > start && word_char != in_word {
            pieces.push(&text[start..i]);
            start = i;
        }
        in_word = word_char;
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

fn is_word(piece: &str) -> bool {
    piece.chars().next().is_some_and(char::is_alphanumeric)
}

/// Whether the word pieces at `indices` follow each other with only spaces between.
fn adjacent(pieces: &[&str], indices: &[usize]) -> bool {
    indices.windows(2).all(|pair| {
        pieces[pair[0] + 1..pair[1]]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c == ' '))
    })
}

/// `word` written with the case of `like`: all capitals, a capital first, or as it is.
fn with_case(like: &str, word: &str) -> String {
    let letters: Vec<char> = like.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        return word.to_uppercase();
    }
    if letters.first().is_some_and(|c| c.is_uppercase()) {
        let mut chars = word.chars();
        return chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swapper() -> Swapper {
        Swapper::from_benchmark(&Benchmark::bundled())
    }

    #[test]
    fn possessive_and_object_pronouns_swap_by_how_they_are_used() {
        let s = swapper();
        assert_eq!(
            s.swap("He lent his book to her."),
            "She lent her book to him."
        );
        assert_eq!(s.swap("It is his, not hers."), "It is hers, not his.");
        assert_eq!(
            s.swap("She saw him and his dog."),
            "He saw her and her dog."
        );
        assert_eq!(
            s.swap("I met her in town with her sister."),
            "I met him in town with his brother."
        );
        assert_eq!(s.swap("He did it himself"), "She did it herself");
    }

    #[test]
    fn case_is_kept_and_other_words_are_left_as_they_are() {
        let s = swapper();
        assert_eq!(s.swap("HE SAID SHE WOULD."), "SHE SAID HE WOULD.");
        assert_eq!(
            s.swap("His father, the mayor, arrived."),
            "Her mother, the mayor, arrived."
        );
        assert_eq!(s.swap("The weather is fine."), "The weather is fine.");
        // a word containing a gendered word is not one
        assert_eq!(s.swap("Hemp and shepherds."), "Hemp and shepherds.");
    }

    #[test]
    fn the_benchmarks_phrases_and_plurals_swap_whole() {
        let s = swapper();
        assert_eq!(
            s.swap("This man and my girlfriend."),
            "This woman and my boyfriend."
        );
        assert_eq!(
            s.swap("my grandpa met my grandmother"),
            "my grandma met my grandfather"
        );
        assert_eq!(
            s.swap("Two brothers and three aunts."),
            "Two sisters and three uncles."
        );
        assert_eq!(s.swap("Men and women"), "Women and men");
        // a pair whose words differ before the head word swaps as a whole
        let edited = Benchmark::from_tsv(
            crate::data::PROFESSIONS_TSV,
            crate::data::TEMPLATES_TSV,
            "phrase\tgender\nhe\tmale\nmr smith\tmale\nshe\tfemale\nmrs smith\tfemale\n",
        )
        .unwrap();
        let e = Swapper::from_benchmark(&edited);
        assert_eq!(e.swap("Mr Smith and Mrs Smith."), "Mrs Smith and Mr Smith.");
        assert_eq!(
            e.swap("Mr, Smith"),
            "Mr, Smith",
            "not as a phrase across a comma"
        );
        // swapping twice gives the sentence back where no pronoun is ambiguous
        let text = "My uncle told my daughter that this woman is a nurse.";
        assert_eq!(s.swap(&s.swap(text)), text);
    }
}
