//! Training text: documents made of sentences, read from the Brown corpus's tagged files or from
//! plain text, and the fixed rule that holds documents out for evaluation.

/// One document of a corpus: its name (a file name) and its sentences, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub name: String,
    pub sentences: Vec<String>,
}

/// Rebuilds the sentences of a Brown corpus file (form C: one sentence per line, tokens written
/// `word/tag`). Tags are stripped at the last `/` (words such as `1/2/cd` keep their slashes),
/// the corpus's `` and '' quotes become `"`, and tokens are joined by spaces: the BERT
/// pre-tokeniser splits punctuation off again, so spacing before it does not matter.
pub fn brown_sentences(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line
                .split_whitespace()
                .filter_map(|token| {
                    let (word, tag) = token.rsplit_once('/')?;
                    (!word.is_empty() && !tag.is_empty()).then_some(word)
                })
                .map(|word| match word {
                    "``" | "''" => "\"",
                    w => w,
                })
                .collect();
            (!words.is_empty()).then(|| words.join(" "))
        })
        .collect()
}

/// Whether `text` looks like a Brown file: most of its tokens are `word/tag`.
pub fn looks_tagged(text: &str) -> bool {
    let tokens: Vec<&str> = text.split_whitespace().take(200).collect();
    let tagged = tokens
        .iter()
        .filter(|t| {
            t.rsplit_once('/')
                .is_some_and(|(w, g)| !w.is_empty() && !g.is_empty())
        })
        .count();
    !tokens.is_empty() && tagged * 10 >= tokens.len() * 9
}

/// Sentences of plain text: one per non-empty line, with runs of white space collapsed. Plain
/// corpora come in every layout; a line is the unit a writer of such a folder controls.
pub fn plain_sentences(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect()
}

/// A document from a file's text, in whichever of the two formats it is written.
pub fn document(name: &str, text: &str) -> Document {
    let sentences = if looks_tagged(text) {
        brown_sentences(text)
    } else {
        plain_sentences(text)
    };
    Document {
        name: name.to_string(),
        sentences,
    }
}

/// Splits documents (in the order given; callers sort them by name) into training and held-out
/// sets: every twentieth document, starting with the eleventh, is held out (5%). A fixed rule
/// rather than a seeded draw, so the held-out set never depends on settings; with the Brown
/// corpus's 500 files in name order it takes documents from every genre. A corpus of 2 to 10
/// documents holds out its last one.
pub fn hold_out(documents: Vec<Document>) -> (Vec<Document>, Vec<Document>) {
    let n = documents.len();
    let mut train = Vec::new();
    let mut held_out = Vec::new();
    for (i, doc) in documents.into_iter().enumerate() {
        if i % 20 == 10 || ((2..=10).contains(&n) && i == n - 1) {
            held_out.push(doc);
        } else {
            train.push(doc);
        }
    }
    (train, held_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written for this test in the corpus's format (tab-indented lines, blank lines between).
    const SAMPLE: &str = "\n\n\tThe/at nurse/nn said/vbd ``/`` she/pps would/md come/vb ''/'' ./.\n\n\n\tHe/pps paid/vbd 1/2/cd of/in it/ppo ,/, and/cc left/vbd ./.\n\n";

    #[test]
    fn brown_reader_strips_tags_and_rebuilds_sentences() {
        assert_eq!(
            brown_sentences(SAMPLE),
            vec![
                "The nurse said \" she would come \" .".to_string(),
                "He paid 1/2 of it , and left .".to_string(),
            ]
        );
    }

    #[test]
    fn formats_are_told_apart() {
        assert!(looks_tagged(SAMPLE));
        assert!(!looks_tagged("The nurse said she would come.\nHe left."));
        assert!(!looks_tagged(""));
        let plain = document("a.txt", "  The nurse   came.\n\nHe left.\n");
        assert_eq!(plain.sentences, vec!["The nurse came.", "He left."]);
        assert_eq!(document("ca01", SAMPLE).sentences.len(), 2);
    }

    fn docs_named(n: usize) -> Vec<Document> {
        (0..n)
            .map(|i| Document {
                name: format!("d{i:03}"),
                sentences: vec![],
            })
            .collect()
    }

    #[test]
    fn one_document_in_twenty_is_held_out() {
        let docs = docs_named(500);
        let (train, held_out) = hold_out(docs);
        assert_eq!(held_out.len(), 25);
        assert_eq!(train.len(), 475);
        assert_eq!(held_out[0].name, "d010");
        assert_eq!(held_out[1].name, "d030");
        let few: Vec<Document> = docs_named(3);
        let (train, held_out) = hold_out(few);
        assert_eq!((train.len(), held_out[0].name.as_str()), (2, "d002"));
    }
}
