//! Detecting replies that are stuck in a loop.
//!
//! Small models decoded greedily often repeat one sentence or list item until the token limit
//! ("The autumn is a time of great change." forty times). Such a reply can still pass an IFEval
//! instruction (no commas, all lower case, "at least 4 hashtags" from `#Tweet #Tweet ...`), so
//! the report shows how many replies loop and how many prompts pass without looping: a setting
//! that only makes the model loop more must not look like better instruction following.

/// Replies shorter than this many words are never called looping: a short reply has too few
/// trigrams for their variety to mean anything.
pub const MIN_WORDS: usize = 30;

/// A reply loops when fewer than this share of its word trigrams are distinct. Ordinary prose
/// of a few hundred words stays above 0.9; a sentence repeated to the token limit falls below
/// 0.1; a reply that starts well and then repeats itself lies in between.
pub const MAX_DISTINCT_TRIGRAM_SHARE: f64 = 0.3;

/// Share of distinct trigrams of whitespace-separated words, None below [`MIN_WORDS`] words.
pub fn distinct_trigram_share(text: &str) -> Option<f64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < MIN_WORDS {
        return None;
    }
    let trigrams: Vec<&[&str]> = words.windows(3).collect();
    let distinct: std::collections::HashSet<&[&str]> = trigrams.iter().copied().collect();
    Some(distinct.len() as f64 / trigrams.len() as f64)
}

/// Whether `text` is mostly one passage repeated (see [`MAX_DISTINCT_TRIGRAM_SHARE`]).
pub fn is_looping(text: &str) -> bool {
    distinct_trigram_share(text).is_some_and(|s| s < MAX_DISTINCT_TRIGRAM_SHARE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_sentence_loops() {
        let reply = "The autumn is a time of great change.\n\n".repeat(15);
        assert!(is_looping(&reply));
        assert!(is_looping(&"#Tweet ".repeat(60)));
    }

    #[test]
    fn prose_and_short_replies_do_not_loop() {
        let prose = "A bicycle turns the push of your legs into motion. The pedals drive a chain that \
                     turns the rear wheel, while the front wheel steers. Gears change how far the \
                     bike travels for each turn of the pedals, so climbing a hill takes less force \
                     and riding on flat roads can be fast. Brakes press pads against the rims.";
        assert!(distinct_trigram_share(prose).unwrap() > 0.95);
        assert!(!is_looping(prose));
        // Below the word minimum even pure repetition is not judged.
        assert_eq!(distinct_trigram_share(&"no no ".repeat(10)), None);
        assert!(!is_looping(&"no no ".repeat(10)));
    }

    #[test]
    fn a_good_start_followed_by_a_long_loop_loops() {
        let start = "Dear Alex, I hope this message finds you well and that the new job suits you. ";
        let reply = format!("{start}{}", "I am writing to ask you to vote. ".repeat(30));
        assert!(is_looping(&reply));
        let reply = format!("{start}{}", "I am writing to ask you to vote. ".repeat(2));
        assert!(!is_looping(&reply));
    }
}
