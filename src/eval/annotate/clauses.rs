//! Clause scope: the part of a chosen sentence that states the constraint.
//!
//! A sentence often states several things at once: "Your response should be in English, all capital letters,
//! contain no commas, and be fewer than 16 sentences." In sentence scope each of its instructions highlights all of
//! it, so the highlight is as much task and boilerplate as constraint. In clause scope the chosen sentence is cut
//! into clauses — at `,` `;` `:` followed by whitespace and at a dash between spaces, never inside a quotation — and
//! each clause is scored *alone* by the instruction's own rule (the same `choose` as for sentences). The instruction
//! then highlights the stretch from the first to the last clause its rule accepts, so a keyword list cut by its
//! commas stays one highlight. A sentence of one clause, or one where no clause is accepted alone (the cue
//! straddles a cut), stays whole.

use super::rules::choose;
use super::scoring::{Kw, Sent};
use super::sentences::quote_pairs;
use std::ops::Range;

/// Which part of a prompt an instruction highlights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// The whole sentence(s) that state the instruction (rules v1).
    #[default]
    Sentence,
    /// Only the clauses of those sentences that state it (see the module documentation).
    Clause,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Sentence => "sentence",
            Scope::Clause => "clause",
        })
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sentence" => Ok(Scope::Sentence),
            "clause" => Ok(Scope::Clause),
            _ => Err(format!("unknown highlight scope `{s}` (use sentence or clause)")),
        }
    }
}

/// The clauses of `prompt[sentence]`: trimmed, non-empty byte ranges in order, without the cutting punctuation.
pub(super) fn split_clauses(prompt: &str, sentence: &Range<usize>) -> Vec<Range<usize>> {
    let quotes = quote_pairs(prompt);
    let inside = |pos: usize| quotes.iter().any(|q| q.start < pos && pos < q.end);
    let chars: Vec<(usize, char)> = prompt[sentence.clone()]
        .char_indices()
        .map(|(i, c)| (i + sentence.start, c))
        .collect();
    let mut out = Vec::new();
    let mut push = |from: usize, to: usize| {
        let piece = &prompt[from..to];
        let lead = piece.len() - piece.trim_start().len();
        let trimmed = piece.trim();
        if !trimmed.is_empty() {
            out.push(from + lead..from + lead + trimmed.len());
        }
    };
    let mut start = sentence.start;
    for (k, &(pos, c)) in chars.iter().enumerate() {
        let next_ws = chars.get(k + 1).is_some_and(|n| n.1.is_whitespace());
        let prev_ws = k > 0 && chars[k - 1].1.is_whitespace();
        let cut = match c {
            ',' | ';' | ':' => next_ws,
            '-' | '–' | '—' => prev_ws && next_ws,
            _ => false,
        };
        if cut && !inside(pos) {
            push(start, pos);
            start = pos + c.len_utf8();
        }
    }
    push(start, sentence.end);
    out
}

/// The part of `sentence` (chosen for instruction `id`) that clause scope highlights: from the first to the last
/// clause the rule accepts alone, and the letterless clauses right after it.
pub(super) fn tighten(id: &str, kw: &Kw, prompt: &str, sentence: &Range<usize>) -> Range<usize> {
    let clauses = split_clauses(prompt, sentence);
    if clauses.len() < 2 {
        return sentence.clone();
    }
    let accepted: Vec<usize> = (0..clauses.len())
        .filter(|&i| !choose(id, kw, prompt, &[Sent::new(prompt, clauses[i].clone())]).is_empty())
        .collect();
    let (Some(&first), Some(&last)) = (accepted.first(), accepted.last()) else {
        return sentence.clone();
    };
    // What follows without letters is the thing the clause introduces: "…with the markdown divider: ***".
    let mut end = last;
    while end + 1 < clauses.len() && !prompt[clauses[end + 1].clone()].chars().any(char::is_alphabetic) {
        end += 1;
    }
    clauses[first].start..clauses[end].end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clauses(text: &str) -> Vec<&str> {
        split_clauses(text, &(0..text.len()))
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn cuts_at_clause_punctuation_but_not_inside_quotes_or_numbers() {
        assert_eq!(
            clauses("Be brief, use no commas; end with: \"Thanks, bye.\" - really"),
            ["Be brief", "use no commas", "end with", "\"Thanks, bye.\"", "really"]
        );
        assert_eq!(
            clauses("Write 1,000 words about well-being."),
            ["Write 1,000 words about well-being."]
        );
        assert_eq!(clauses("Trailing comma, "), ["Trailing comma"]);
    }

    #[test]
    fn scope_names_parse_back() {
        for s in [Scope::Sentence, Scope::Clause] {
            assert_eq!(s.to_string().parse::<Scope>().unwrap(), s);
        }
        assert!("word".parse::<Scope>().unwrap_err().contains("sentence or clause"));
    }
}
