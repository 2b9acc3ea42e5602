//! A multi-turn instruction-following set built from IFEval (the paper's MT-IFEval is not public):
//! turn 1 is an IFEval prompt whose single instruction can hold for any reply (lower case, no
//! commas, an end phrase, a P.S., …) plus one sentence asking to keep it for the whole
//! conversation; turns 2.. are new tasks that say nothing about it. Every reply is checked against
//! the turn-1 instruction, so the compliance curve over turns shows how far the instruction
//! carries. Only the generator is committed: the set is rebuilt from the IFEval file, a count and
//! a seed.

pub mod report;

use super::data::EvalItem;
use super::ifeval::{self, IfevalError, IfevalPrompt};
use super::key::Key;
use super::repetition::is_looping;
use super::rng::SplitMix64;
use super::subset::seeded_subset;
use crate::spotlight::markup::Highlighted;

/// Instructions whose check reads any reply on its own terms (not the turn-1 task's), so they can
/// be asked to hold for every reply. Other IFEval instructions depend on the task (word counts of
/// an essay, sections of a proposal, repeating the prompt) and are left out.
pub const PERSISTENT_INSTRUCTIONS: &[&str] = &[
    "change_case:english_capital",
    "change_case:english_lowercase",
    "detectable_content:postscript",
    "detectable_format:title",
    "keywords:forbidden_words",
    "language:response_language",
    "punctuation:no_comma",
    "startend:end_checker",
    "startend:quotation",
];

/// Appended to turn 1 (and highlighted with the instruction): the instruction is meant to last.
pub const KEEP_SENTENCE: &str = "Keep to this rule in every reply of this conversation, not only in this one.";

/// The later turns' tasks: short, neutral, and silent on case, punctuation, format and language,
/// so that a reply follows the turn-1 rule only if the model still keeps it.
pub const FOLLOW_UP_TASKS: &[&str] = &[
    "Now describe a busy train station at rush hour.",
    "Next, explain how a bicycle gear system works.",
    "Give me some advice for someone starting to learn the guitar.",
    "Write a short story about a lost umbrella.",
    "What are the main differences between a lake and a sea?",
    "Describe your ideal weekend breakfast.",
    "Explain why the sky looks blue during the day.",
    "Write a product description for a reusable water bottle.",
    "Summarize the plot of a fairy tale you know well.",
    "Give three tips for keeping houseplants healthy.",
    "Describe a thunderstorm from the point of view of a cat.",
    "Explain what a budget is to a ten-year-old.",
    "Write a short thank-you note to a neighbour who watered your garden.",
    "What makes a good team meeting?",
    "Describe the sounds of a city at night.",
    "Explain how bread rises.",
];

/// One conversation of the set.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub key: Key,
    /// The turn-1 IFEval record (one instruction): what every reply is checked against.
    pub instruction: IfevalPrompt,
    /// The user turns, in order; turn 1 carries the highlights (the annotator's span of the
    /// instruction and the keep sentence), later turns none.
    pub turns: Vec<Highlighted>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("a conversation needs 2 to {max} user turns (turn 1 and up to {tasks} follow-up tasks), got {0}", max = FOLLOW_UP_TASKS.len() + 1, tasks = FOLLOW_UP_TASKS.len())]
    Turns(usize),
    #[error("the data has no IFEval record with a single instruction of the persistent kinds ({})", PERSISTENT_INSTRUCTIONS.join(", "))]
    NoCandidates,
}

/// The IFEval records usable as turn 1: exactly one instruction, of a persistent kind, with a
/// highlight from the data or the annotator.
pub fn candidates(items: &[EvalItem]) -> Vec<&EvalItem> {
    items
        .iter()
        .filter(|item| {
            item.ifeval.as_ref().is_some_and(|p| {
                p.instruction_id_list.len() == 1 && PERSISTENT_INSTRUCTIONS.contains(&p.instruction_id_list[0].as_str())
            }) && !item.spans.is_empty()
        })
        .collect()
}

/// `n` conversations of `turns` user turns (a seeded subset of the candidates, kept in data
/// order; all of them when `n` is at least their number), follow-up tasks drawn per conversation
/// without repetition from splitmix64(seed, key).
pub fn build_set(items: &[EvalItem], n: usize, turns: usize, seed: u64) -> Result<Vec<Conversation>, SetError> {
    if !(2..=FOLLOW_UP_TASKS.len() + 1).contains(&turns) {
        return Err(SetError::Turns(turns));
    }
    let pool = candidates(items);
    if pool.is_empty() {
        return Err(SetError::NoCandidates);
    }
    let chosen = seeded_subset(pool, n, seed);
    Ok(chosen
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let instruction = item.ifeval.clone().expect("candidates are IFEval records");
            let mut rng = SplitMix64(seed ^ (0xA5A5_0000_0000_0000 | i as u64));
            let mut tasks: Vec<usize> = (0..FOLLOW_UP_TASKS.len()).collect();
            for k in 0..turns - 1 {
                let j = k + rng.below(tasks.len() - k);
                tasks.swap(k, j);
            }
            let mut first = Highlighted {
                text: format!("{}\n\n{KEEP_SENTENCE}", item.prompt),
                spans: item.spans.clone(),
            };
            let keep_start = first.text.len() - KEEP_SENTENCE.len();
            first.spans.push(keep_start..first.text.len());
            let mut all = vec![first];
            all.extend(tasks[..turns - 1].iter().map(|&t| Highlighted {
                text: FOLLOW_UP_TASKS[t].to_string(),
                spans: Vec::new(),
            }));
            Conversation {
                key: item.key.clone(),
                instruction,
                turns: all,
            }
        })
        .collect())
}

/// The verdicts for one reply against the conversation's turn-1 instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TurnVerdict {
    pub strict: bool,
    pub loose: bool,
    pub looping: bool,
    pub words: usize,
}

pub fn check_reply(conversation: &Conversation, reply: &str) -> Result<TurnVerdict, IfevalError> {
    let s = ifeval::score(&conversation.instruction, reply)?;
    Ok(TurnVerdict {
        strict: s.prompt_strict,
        loose: s.prompt_loose,
        looping: is_looping(reply),
        words: reply.split_whitespace().count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(key: i64, prompt: &str, ids: &[&str], span: std::ops::Range<usize>) -> EvalItem {
        EvalItem {
            key: Key::from_json(&json!(key)).unwrap(),
            prompt: prompt.into(),
            spans: vec![span],
            ifeval: Some(IfevalPrompt {
                key: Key::from_json(&json!(key)).unwrap(),
                prompt: prompt.into(),
                instruction_id_list: ids.iter().map(|s| s.to_string()).collect(),
                kwargs: ids.iter().map(|_| serde_json::Map::new()).collect(),
            }),
            highlight_source: "markup",
            clause_spans: None,
        }
    }

    fn data() -> Vec<EvalItem> {
        vec![
            item(1, "Write a poem. Use no commas.", &["punctuation:no_comma"], 14..28),
            item(
                2,
                "Write an essay of 300 words.",
                &["length_constraints:number_words"],
                0..5,
            ),
            item(
                3,
                "Describe Rome. All lowercase.",
                &["change_case:english_lowercase"],
                15..29,
            ),
            item(
                4,
                "Two rules. No commas. Lowercase.",
                &["punctuation:no_comma", "change_case:english_lowercase"],
                0..3,
            ),
        ]
    }

    #[test]
    fn only_single_persistent_instructions_become_conversations() {
        let d = data();
        let keys: Vec<String> = candidates(&d).iter().map(|i| i.key.to_string()).collect();
        assert_eq!(keys, ["1", "3"]);
    }

    #[test]
    fn turn_one_highlights_instruction_and_keep_sentence_later_turns_are_plain() {
        let set = build_set(&data(), 10, 4, 7).unwrap();
        assert_eq!(set.len(), 2);
        let c = &set[0];
        assert_eq!(c.turns.len(), 4);
        let first = &c.turns[0];
        assert_eq!(&first.text[first.spans[0].clone()], "Use no commas.");
        assert_eq!(&first.text[first.spans[1].clone()], KEEP_SENTENCE);
        let later: Vec<&str> = c.turns[1..].iter().map(|t| t.text.as_str()).collect();
        assert!(c.turns[1..].iter().all(|t| t.spans.is_empty()));
        let mut distinct = later.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "no task twice in a conversation: {later:?}");
        assert!(later.iter().all(|t| FOLLOW_UP_TASKS.contains(t)));
        // the same seed gives the same set; another seed other tasks
        let again = build_set(&data(), 10, 4, 7).unwrap();
        assert_eq!(again[0].turns[1].text, c.turns[1].text);
        let other: Vec<String> = (0..20)
            .map(|s| build_set(&data(), 10, 4, s).unwrap()[0].turns[1].text.clone())
            .collect();
        assert!(other.iter().any(|t| t != &other[0]));
    }

    #[test]
    fn bad_turn_counts_and_empty_pools_are_errors() {
        assert!(matches!(build_set(&data(), 5, 1, 0), Err(SetError::Turns(1))));
        assert!(matches!(build_set(&data(), 5, 99, 0), Err(SetError::Turns(99))));
        let none = vec![data().remove(1)];
        assert!(matches!(build_set(&none, 5, 3, 0), Err(SetError::NoCandidates)));
    }

    #[test]
    fn replies_are_checked_against_the_turn_one_instruction() {
        let set = build_set(&data(), 10, 2, 0).unwrap();
        let commas = &set[0];
        assert!(check_reply(commas, "a calm sea and a grey sky").unwrap().loose);
        assert!(!check_reply(commas, "a calm sea, a grey sky").unwrap().loose);
        let lower = &set[1];
        // (IFEval's lowercase check also wants the reply to be English, by langdetect)
        let calm = "the streets are quiet tonight and the shops have closed their doors";
        assert!(check_reply(lower, calm).unwrap().strict);
        assert!(
            !check_reply(lower, &calm.replace("the streets", "The streets"))
                .unwrap()
                .strict
        );
        assert_eq!(check_reply(lower, "one two three").unwrap().words, 3);
    }
}
