//! The rules' built-in regular expressions, compiled on first use, and whole-word patterns for
//! words taken from an instruction's kwargs.

use regex::Regex;

/// A lazily compiled built-in pattern.
pub(super) struct Pat {
    src: &'static str,
    cell: std::sync::OnceLock<Regex>,
}

macro_rules! pat {
    ($name:ident, $src:expr) => {
        pub(super) static $name: Pat = Pat {
            src: $src,
            cell: std::sync::OnceLock::new(),
        };
    };
}

pub(super) fn re(p: &'static Pat) -> &'static Regex {
    // The patterns are constants exercised by the unit tests, so a failure here is a programming error.
    p.cell
        .get_or_init(|| Regex::new(p.src).expect("built-in pattern compiles"))
}

/// `word` as a whole word, case-insensitively; edges that are not word characters need no `\b`.
pub(super) fn word_re(word: &str) -> Option<Regex> {
    let w = word.trim();
    let first = w.chars().next()?;
    let last = w.chars().next_back()?;
    let lb = if first.is_alphanumeric() || first == '_' {
        r"\b"
    } else {
        ""
    };
    let rb = if last.is_alphanumeric() || last == '_' {
        r"\b"
    } else {
        ""
    };
    let body = regex::escape(w).replace(' ', r"\s+");
    Regex::new(&format!("(?i){lb}{body}{rb}")).ok()
}

pat!(PS_NO_DOT, r"\bP\.(?:P\.)?S[ \t]+\p{Lu}");
pat!(
    INSTRUCTION,
    r"(?i)\b(?:your|response|answer|reply|output|entire|must|should|please|make sure)\b"
);
pat!(COMMA, r"(?i)\bcommas?\b");
pat!(LOWER, r"(?i)lower[\s-]?case|lowercased|\blowercases\b");
pat!(
    CAPITAL_ANY,
    r"(?i)\bcapital|\bcapitali[sz]|\bupper[\s-]?case|\ball[\s-]?caps\b"
);
pat!(
    NEGATED_CAPITAL,
    r"(?i)\b(?:no|not|without|never)\b(?:\s+\w+){0,8}\s+(?:capital|capitali[sz]|upper)"
);
pat!(
    CAPITAL,
    r"(?i)\ball\s+(?:capital|caps|upper[\s-]?case)|\bcapital\s+letters?\b|\bcapitali[sz]e\b|\bcapitali[sz]ed\b|\bupper[\s-]?case\b|\ball[\s-]caps\b|\bin\s+caps\b"
);
pat!(
    CAPITAL_WORDS,
    r"(?i)\b(?:words?|phrases?)\b.{0,40}?(?:capital|\bcaps\b|all-caps|upper[\s-]?case)|(?:capitali[sz]ed|all[\s-]caps|capital)\s+words\b|\bcapitali[sz]e\s+(?:a\s+few\s+|some\s+|\w+\s+)?words\b|\bstress\s+words\b"
);
pat!(
    RELATION,
    r"(?i)\b(?:at least|at most|less than|more than|fewer than|or more|or less|or fewer|times|limit|under|exactly)\b"
);
pat!(
    EXIST_CUE,
    r"(?i)\b(?:include|includes|including|contain|containing|use|mention|keywords?|words?|phrase|line|items|has|have)\b"
);
pat!(NAME_OR_WORD, r"(?i)\b(?:name|word|keyword|term)\b");
pat!(
    FREQ_CUE,
    r"(?i)\b(?:times?|at least|at most|less than|more than|fewer|once|twice|appears?|appearing|mention|use)\b"
);
pat!(
    FORBID_CUE,
    r"(?i)\b(?:not|never|don't|doesn't|cannot|can't)\b(?:\s+\w+){0,3}?\s+(?:use|using|include|including|mention|mentioning|say|saying|contain|containing|appear|be|add|have)\b|\b(?:avoid|exclude|without|refrain)\b|\bmust not\b"
);
pat!(LANG_CUE, r"(?i)\blanguage\b");
pat!(
    LANG_ONLY,
    r"(?i)\b(?:only|entirely|completely|no other language|outside of)\b"
);
pat!(LANG_RESP, r"(?i)\b(?:respond|response|answer|reply|written|write)\b");
pat!(SENTENCES, r"(?i)\bsentences\b");
pat!(WORDS, r"(?i)\bwords\b");
pat!(DIVIDER, r"(?i)\*\*\*|\bdivider\b");
pat!(
    FORMAT_BELOW,
    r"(?i)\bformat\s+below\b|\bfollowing\s+(?:exact\s+)?format\b|\bexact\s+format\b"
);
pat!(HIGHLIGHT_WORDS, r"(?i)\bhighlight|\bitalic|\bbullet");
pat!(PLACEHOLDER, r"(?i)\bplaceholders?\b");
pat!(SQUARE, r"(?i)\bsquare\s+brackets?\b");
pat!(POSTSCRIPT, r"(?i)\bpost[\s-]?script\b");
pat!(BULLET, r"(?i)\bbullet");
pat!(MARKDOWN, r"(?i)\bmarkdown\b");
pat!(
    CONSTRAINED,
    r"(?i)\bone\s+of\s+the\s+following\b|\bfollowing\s+(?:phrases|options)\b|\bchoose\s+from\b|\banswer\s+with\s+(?:exactly\s+)?one\s+of\b"
);
pat!(MY_ANSWER, r"(?i)\bmy\s+answer\s+is\b");
pat!(HIGHLIGHT, r"(?i)\bhighlight|\bitalic|\bitali[cs]i[sz]e");
pat!(STARRED, r"\*[^*\s][^*\n]*\*");
pat!(SECTIONS, r"(?i)\bsections?\b");
pat!(JSON, r"(?i)\bjson\b");
pat!(JSON_CUE, r"(?i)\b(?:format|wrap|wrapped|entire|output|block)\b");
pat!(ANGLE_TITLE, r"<<[^<>\n]*>>");
pat!(ANGLE_WORDS, r"(?i)\bangul[ao]r\s+brackets?\b|\bangle\s+brackets?\b");
pat!(TITLE, r"(?i)\btitle\b");
pat!(SIX_STARS, r"\*{6}|(?i:\b(?:six|6)\s+asterisks?\b)");
pat!(
    TWO_THINGS,
    r"(?i)\b(?:two|2)\s+(?:\w+\s+){0,2}?(?:responses|answers|versions|alternatives|jokes|limericks|poems|critiques|options|movies|letters|parts|scenes|descriptions)\b"
);
pat!(
    REPEAT_CUE,
    r"(?i)\brepe?l?eat|\bword\s+(?:for|by)\s+word\b|\bwithout\s+(?:any\s+)?chang|\bdo\s+not\s+change\b|\bbefore\s+repeating\b|\bis\s+repeated\b|\bsay\s+any|\bsay\s+anything\b|\boutput\s+any\b|\badd\s+any\s+word|\bfirst\s+line\b|\bentire\s+response\s+should\s+start\b|\brespond\s+to\s+the\s+request\b"
);
pat!(
    END_CUE,
    r"(?i)\b(?:end|ends|ending|finish|finished|last|final|conclude|very end)\b"
);
pat!(
    END_WITH,
    r"(?i)\b(?:end|finish|conclude)\w*\b.{0,40}\b(?:with|phrase)\b"
);
pat!(
    NOTHING_AFTER,
    r"(?i)\bno\s+(?:other|additional|more)\s+words?\b|\bnothing\s+(?:else\s+)?after\b|\bnot\s+say\s+anything\s+after\b|\bvery\s+end\b"
);
pat!(
    QUOTATION,
    r"(?i)\bdouble[\s-]?quot|\bquotation\s+marks?\b|\bin\s+quotes\b|\bdouble\s+quotes\b"
);
pat!(QUOTATION_CUE, r"(?i)\b(?:wrap|wrapped|entire|around|whole|inside)\b");
pat!(START_CUE, r"(?i)\b(?:start|starts|begin|begins|first\s+word)\b");
pat!(PARAGRAPH, r"(?i)\bparagraph");

/// Nouns that count paragraph-like units for `number_paragraphs`.
pub(super) const PARA_NOUNS: [&str; 9] = [
    "paragraph",
    "paragraphs",
    "sections",
    "parts",
    "stanzas",
    "steps",
    "chunks",
    "pieces",
    "section",
];
