//! One rule per IFEval instruction id: which sentences state the instruction (the table in the
//! module documentation of `annotate`).

use super::languages::language_names;
use super::patterns::*;
use super::scoring::{best, bonus, neighbour, Kw, Sent};
use regex::Regex;
use std::ops::Range;

/// Dispatch one instruction to its rule; returns the chosen sentence indices.
pub(super) fn choose(id: &str, kw: &Kw, prompt: &str, sents: &[Sent]) -> Vec<usize> {
    let one = |score: &dyn Fn(&Sent) -> i32| best(sents, score).into_iter().collect::<Vec<_>>();
    match id {
        "punctuation:no_comma" => one(&|s| bonus(s.has(re(&COMMA)), 10)),
        "change_case:english_lowercase" => one(&|s| {
            if s.has(re(&LOWER)) {
                10
            } else {
                bonus(s.has(re(&CAPITAL_ANY)) && s.has(re(&NEGATED_CAPITAL)), 6)
            }
        }),
        "change_case:english_capital" => one(&|s| {
            if !s.has(re(&CAPITAL)) {
                return 0;
            }
            10 - bonus(s.has(re(&NEGATED_CAPITAL)), 8) - bonus(s.has(re(&CAPITAL_WORDS)), 5)
        }),
        "change_case:capital_word_frequency" => one(&|s| {
            if !s.has(re(&CAPITAL_WORDS)) {
                return 0;
            }
            10 + bonus(s.mentions_number(kw.num("capital_frequency")), 3) + bonus(s.has(re(&RELATION)), 1)
        }),
        "keywords:existence" => {
            let res: Vec<Regex> = kw.strs("keywords").iter().filter_map(|k| word_re(k)).collect();
            one(&|s| {
                let m = res.iter().filter(|r| s.has(r)).count() as i32;
                if m == 0 {
                    return 0;
                }
                5 * m + bonus(m as usize == res.len(), 3) + bonus(s.has(re(&EXIST_CUE)), 2)
            })
        }
        "keywords:frequency" => {
            let Some(r) = kw.str("keyword").and_then(word_re) else {
                return vec![];
            };
            let n = kw.num("frequency");
            one(&|s| {
                let counted = s.mentions_number(n) && s.has(re(&FREQ_CUE));
                if s.has(&r) {
                    6 + bonus(counted, 4) + bonus(s.has(re(&FREQ_CUE)), 2)
                } else {
                    // "...company named \"grid\". Can you write one that includes the name of the company at least
                    // five times?" : the count refers back to the keyword.
                    bonus(counted && s.has(re(&NAME_OR_WORD)), 7)
                }
            })
        }
        "keywords:forbidden_words" => {
            let res: Vec<Regex> = kw.strs("forbidden_words").iter().filter_map(|k| word_re(k)).collect();
            one(&|s| {
                let m = res.iter().filter(|r| s.has(r)).count() as i32;
                if m == 0 {
                    return 0;
                }
                5 * m + bonus(s.has(re(&FORBID_CUE)), 3)
            })
        }
        "keywords:letter_frequency" => letter_frequency(kw, sents),
        "language:response_language" => {
            let Some(names) = kw.str("language").and_then(language_names) else {
                return vec![];
            };
            let res: Vec<Regex> = names.iter().filter_map(|n| word_re(n)).collect();
            one(&|s| {
                if !res.iter().any(|r| s.has(r)) {
                    return 0;
                }
                10 + bonus(s.has(re(&LANG_CUE)), 2) + bonus(s.has(re(&LANG_ONLY)), 2) + bonus(s.has(re(&LANG_RESP)), 1)
            })
        }
        "length_constraints:number_sentences" => one(&|s| {
            let base = if s.number_before(&["sentence", "sentences"], 3).is_some() {
                10
            } else if s.has(re(&SENTENCES)) && s.any_number() {
                6
            } else {
                return 0;
            };
            base + bonus(s.mentions_number(kw.num("num_sentences")), 3)
        }),
        "length_constraints:number_paragraphs" => number_paragraphs(kw.num("num_paragraphs"), sents, true),
        "length_constraints:number_words" => one(&|s| {
            let base = if s.number_before(&["word", "words"], 3).is_some() {
                10
            } else if s.has(re(&WORDS)) && s.has(re(&RELATION)) {
                5
            } else {
                return 0;
            };
            base + bonus(s.mentions_number(kw.num("num_words")), 3) - bonus(s.has(re(&CAPITAL_ANY)), 6)
        }),
        "length_constraints:nth_paragraph_first_word" => {
            let Some(r) = kw.str("first_word").and_then(word_re) else {
                return vec![];
            };
            let mut out: Vec<usize> = one(&|s| {
                if !s.has(&r) {
                    return 0;
                }
                8 + bonus(s.has(re(&START_CUE)), 2) + bonus(s.has(re(&PARAGRAPH)), 2)
            });
            if !out.is_empty() {
                // The checker also counts paragraphs, so the sentence giving the count belongs to the constraint.
                out.extend(number_paragraphs(kw.num("num_paragraphs"), sents, false));
            }
            out
        }
        "detectable_content:number_placeholders" => one(&|s| {
            let base = if s.has(re(&PLACEHOLDER)) {
                10
            } else if s.has(re(&SQUARE)) {
                8
            } else {
                return 0;
            };
            base + bonus(s.mentions_number(kw.num("num_placeholders")), 2)
        }),
        "detectable_content:postscript" => {
            let marker = kw.str("postscript_marker").and_then(|m| {
                let m = m.trim().trim_end_matches('.');
                Regex::new(&format!(r"(?:^|[^\w.]){}(?:\.|\b|$)", regex::escape(m))).ok()
            });
            one(&|s| bonus(marker.as_ref().is_some_and(|m| s.has(m)), 8) + bonus(s.has(re(&POSTSCRIPT)), 8))
        }
        "detectable_format:number_bullet_lists" => one(&|s| {
            if !s.has(re(&BULLET)) {
                return 0;
            }
            10 + bonus(s.mentions_number(kw.num("num_bullets")), 3) + bonus(s.has(re(&MARKDOWN)), 1)
        }),
        "detectable_format:constrained_response" => {
            let mut out: Vec<usize> = one(&|s| bonus(s.has(re(&CONSTRAINED)), 8) + bonus(s.has(re(&MY_ANSWER)), 6));
            if let Some(&b) = out.first() {
                // Options listed one per line after the instruction are part of it.
                let mut i = b + 1;
                while i < sents.len() && sents[i].has(re(&MY_ANSWER)) && !sents[i].has(re(&CONSTRAINED)) {
                    out.push(i);
                    i += 1;
                }
            }
            out
        }
        "detectable_format:number_highlighted_sections" => one(&|s| {
            let base = if s.has(re(&HIGHLIGHT)) {
                10
            } else if s.has(re(&STARRED)) {
                4
            } else {
                return 0;
            };
            base + bonus(s.mentions_number(kw.num("num_highlights")), 3) + bonus(s.has(re(&MARKDOWN)), 1)
                - bonus(s.has(re(&CAPITAL_ANY)), 5)
        }),
        "detectable_format:multiple_sections" => multiple_sections(kw, sents),
        "detectable_format:json_format" => one(&|s| {
            if !s.has(re(&JSON)) {
                return 0;
            }
            10 + bonus(s.has(re(&JSON_CUE)), 2)
        }),
        "detectable_format:title" => one(&|s| {
            let base = bonus(s.has(re(&ANGLE_TITLE)) || s.has(re(&ANGLE_WORDS)), 10);
            if base == 0 {
                return 0;
            }
            base + bonus(s.has(re(&TITLE)), 2)
        }),
        "combination:two_responses" => {
            let stars = |s: &Sent| s.has(re(&SIX_STARS));
            let two = |s: &Sent| s.has(re(&TWO_THINGS));
            let mut out: Vec<usize> = one(&|s| bonus(stars(s), 8) + bonus(two(s), 8));
            if let Some(&b) = out.first() {
                // "Give two different responses. Separate them with ******." states one constraint in two sentences.
                let want: &dyn Fn(&Sent) -> bool = if !stars(&sents[b]) { &stars } else { &two };
                if !(stars(&sents[b]) && two(&sents[b])) {
                    out.extend(neighbour(sents, b, |s| want(s)));
                }
            }
            out
        }
        "combination:repeat_prompt" => repeat_prompt(kw, prompt, sents),
        "startend:end_checker" => end_checker(kw, prompt, sents),
        "startend:quotation" => one(&|s| {
            if !s.has(re(&QUOTATION)) {
                return 0;
            }
            10 + bonus(s.has(re(&QUOTATION_CUE)), 2)
        }),
        _ => vec![],
    }
}

fn letter_frequency(kw: &Kw, sents: &[Sent]) -> Vec<usize> {
    let Some(letter) = kw.str("letter").map(str::trim) else {
        return vec![];
    };
    let esc = regex::escape(letter);
    let cue = if letter.chars().all(char::is_alphabetic) {
        // "the letter q", "letter \"l\"", "letter 'a'".
        format!(r#"(?i)\bletters?\s+["'“‘]?{esc}["'”’]?(?:[^\w]|$)"#)
    } else {
        let alias = match letter {
            "#" => r"|(?i:\bhashtags?\b)",
            "!" => r"|(?i:\bexclamation)",
            _ => "",
        };
        format!("{esc}{alias}")
    };
    let Ok(cue) = Regex::new(&cue) else {
        return vec![];
    };
    best(sents, |s| {
        if !s.has(&cue) {
            return 0;
        }
        10 + bonus(s.mentions_number(kw.num("let_frequency")), 3) + bonus(s.has(re(&RELATION)), 1)
    })
    .into_iter()
    .collect()
}

/// `number_paragraphs`, also used for the count sentence of `nth_paragraph_first_word` (then without the
/// divider-only and format cues, and without the neighbour).
fn number_paragraphs(num: Option<u64>, sents: &[Sent], full: bool) -> Vec<usize> {
    let count = |s: &Sent| s.number_before(&PARA_NOUNS, 3).is_some();
    let divider = |s: &Sent| s.has(re(&DIVIDER));
    let score = |s: &Sent| {
        let mut v = bonus(count(s), 8) + bonus(s.mentions_number(num) && count(s), 3);
        if full {
            v += bonus(divider(s), 6) + bonus(v == 0 && s.has(re(&FORMAT_BELOW)), 3);
        } else if !s.mentions_number(num) {
            return 0;
        }
        if v > 0 {
            v -= bonus(s.has(re(&HIGHLIGHT_WORDS)), 6);
        }
        v
    };
    let mut out: Vec<usize> = best(sents, score).into_iter().collect();
    if full {
        if let Some(&b) = out.first() {
            // "Write exactly 4 paragraphs. Separate them with ***." : the count and the divider go together.
            let (c, d) = (count(&sents[b]), divider(&sents[b]));
            if c != d {
                out.extend(neighbour(sents, b, |s| {
                    !s.has(re(&HIGHLIGHT_WORDS)) && if c { divider(s) } else { count(s) }
                }));
            }
        }
    }
    out
}

fn multiple_sections(kw: &Kw, sents: &[Sent]) -> Vec<usize> {
    let Some(splitter) = kw.str("section_spliter").map(str::trim) else {
        return vec![];
    };
    let esc = regex::escape(splitter);
    // The checker is case-sensitive about the splitter, and so is this cue.
    let (Ok(marked), Ok(word)) = (
        Regex::new(&format!(r"\b{esc}\s+(?:X|\d+|[IVX]+)\b")),
        Regex::new(&format!(r"(?i)\b{esc}\b")),
    ) else {
        return vec![];
    };
    let num = kw.num("num_sections");
    let count = |s: &Sent| s.number_before(&["sections", "section", "parts"], 3).is_some() && s.mentions_number(num);
    let mut out: Vec<usize> = best(sents, |s| {
        let base = if s.has(&marked) {
            10
        } else if s.has(&word) {
            5
        } else {
            return 0;
        };
        base + bonus(s.has(re(&SECTIONS)), 2) + bonus(s.mentions_number(num), 2)
    })
    .into_iter()
    .collect();
    if let Some(&b) = out.first() {
        if !count(&sents[b]) {
            out.extend(neighbour(sents, b, count));
        }
    }
    out
}

fn repeat_prompt(kw: &Kw, prompt: &str, sents: &[Sent]) -> Vec<usize> {
    let cue = |s: &Sent| s.has(re(&REPEAT_CUE));
    // The request to repeat is itself part of the prompt; the instruction is everything around it.
    if let Some(p) = kw.str("prompt_to_repeat").map(str::trim) {
        if let Some(at) = prompt.find(p) {
            let req = at..at + p.len();
            let out: Vec<usize> = sents
                .iter()
                .enumerate()
                .filter(|(_, s)| (s.range.end <= req.start || s.range.start >= req.end) && s.has_letters && cue(s))
                .map(|(i, _)| i)
                .collect();
            if !out.is_empty() {
                return out;
            }
        }
    }
    best(sents, |s| bonus(s.has(re(&REPEAT_CUE)), 10)).into_iter().collect()
}

fn end_checker(kw: &Kw, prompt: &str, sents: &[Sent]) -> Vec<usize> {
    let phrase = kw.str("end_phrase").and_then(|p| {
        let body = regex::escape(p.trim()).replace(' ', r"\s+");
        Regex::new(&format!("(?i){body}")).ok()
    });
    let matches: Vec<Range<usize>> = phrase
        .as_ref()
        .map(|r| r.find_iter(prompt).map(|m| m.range()).collect())
        .unwrap_or_default();
    let overlaps = |s: &Sent, m: &Range<usize>| s.range.start < m.end && m.start < s.range.end;
    let b = best(sents, |s| {
        if matches.iter().any(|m| overlaps(s, m)) {
            10 + bonus(s.has(re(&END_CUE)), 3)
        } else {
            bonus(s.has(re(&END_WITH)), 5)
        }
    });
    let Some(b) = b else { return vec![] };
    let mut out = vec![b];
    // A phrase that was split over several sentences ("Let me know how it works. I can give you ...").
    for m in matches.iter().filter(|m| overlaps(&sents[b], m)) {
        out.extend((0..sents.len()).filter(|&i| i != b && overlaps(&sents[i], m)));
    }
    // "Finish the song with:\n\nPeace!\n\nNo additional words should follow \"Peace!\"" : the instruction is a line
    // or two before the phrase; take it and what lies between.
    if !sents[b].has(re(&END_CUE)) {
        if let Some(k) = (b.saturating_sub(2)..b).rev().find(|&k| sents[k].has(re(&END_WITH))) {
            out.extend(k..b);
        }
    }
    // "No other words should follow this phrase." restates the constraint.
    if b + 1 < sents.len() && sents[b + 1].has(re(&NOTHING_AFTER)) {
        out.push(b + 1);
    }
    out
}

#[cfg(test)]
mod tests;
