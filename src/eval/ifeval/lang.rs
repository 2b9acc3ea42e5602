//! Language identification for `language:response_language` and the
//! English checks of `change_case:english_capital` / `english_lowercase`.
//!
//! The reference uses Python's `langdetect` (a port of Google's
//! language-detection: character n-gram naive Bayes over 55 languages with a
//! random sampling step, so even the reference is not deterministic unless
//! seeded). This module uses `whatlang` (trigram profiles over 70 languages,
//! deterministic). They agree on ordinary paragraphs of a single language but
//! can disagree on:
//! - short texts (a few words), where both are guessing;
//! - mixed text, e.g. a Hindi answer full of English terms or code, or an
//!   answer that repeats an English prompt before answering in another
//!   language: langdetect weighs n-grams, whatlang first picks the dominant
//!   script and then a language within it;
//! - languages sharing a script: Hindi/Marathi/Nepali (Devanagari),
//!   Persian/Urdu/Arabic, Russian/Bulgarian/Ukrainian, Spanish/Portuguese/
//!   Italian, Danish/Norwegian, Indonesian/Malay (whatlang has no Malay);
//! - upper-case-only text (`english_capital`), which neither was trained on;
//! - languages only one of them knows (e.g. langdetect's Somali or Albanian,
//!   whatlang's Esperanto or Zulu), which the other then reports as a
//!   neighbour.
//!
//! langdetect raises on text without letters and the reference then counts
//! the instruction as followed; `whatlang` returns `None` there, and
//! [`detect_language`] passes that on so callers can do the same.

use whatlang::Lang;

/// The ISO 639-1 code of the detected language, `None` when no language can
/// be detected (no letters at all).
///
/// Codes follow langdetect where it deviates from plain ISO 639-1 (`no` for
/// Norwegian Bokmål, `tl` for Tagalog), except that Mandarin maps to `zh`
/// rather than langdetect's `zh-cn`/`zh-tw`, since kwargs use ISO codes.
pub(crate) fn detect_language(text: &str) -> Option<&'static str> {
    whatlang::detect(text).map(|info| iso_639_1(info.lang()))
}

fn iso_639_1(lang: Lang) -> &'static str {
    match lang {
        Lang::Epo => "eo",
        Lang::Eng => "en",
        Lang::Rus => "ru",
        Lang::Cmn => "zh",
        Lang::Spa => "es",
        Lang::Por => "pt",
        Lang::Ita => "it",
        Lang::Ben => "bn",
        Lang::Fra => "fr",
        Lang::Deu => "de",
        Lang::Ukr => "uk",
        Lang::Kat => "ka",
        Lang::Ara => "ar",
        Lang::Hin => "hi",
        Lang::Jpn => "ja",
        Lang::Heb => "he",
        Lang::Yid => "yi",
        Lang::Pol => "pl",
        Lang::Amh => "am",
        Lang::Jav => "jv",
        Lang::Kor => "ko",
        Lang::Nob => "no",
        Lang::Dan => "da",
        Lang::Swe => "sv",
        Lang::Fin => "fi",
        Lang::Tur => "tr",
        Lang::Nld => "nl",
        Lang::Hun => "hu",
        Lang::Ces => "cs",
        Lang::Ell => "el",
        Lang::Bul => "bg",
        Lang::Bel => "be",
        Lang::Mar => "mr",
        Lang::Kan => "kn",
        Lang::Ron => "ro",
        Lang::Slv => "sl",
        Lang::Hrv => "hr",
        Lang::Srp => "sr",
        Lang::Mkd => "mk",
        Lang::Lit => "lt",
        Lang::Lav => "lv",
        Lang::Est => "et",
        Lang::Tam => "ta",
        Lang::Vie => "vi",
        Lang::Urd => "ur",
        Lang::Tha => "th",
        Lang::Guj => "gu",
        Lang::Uzb => "uz",
        Lang::Pan => "pa",
        Lang::Aze => "az",
        Lang::Ind => "id",
        Lang::Tel => "te",
        Lang::Pes => "fa",
        Lang::Mal => "ml",
        Lang::Ori => "or",
        Lang::Mya => "my",
        Lang::Nep => "ne",
        Lang::Sin => "si",
        Lang::Khm => "km",
        Lang::Tuk => "tk",
        Lang::Aka => "ak",
        Lang::Zul => "zu",
        Lang::Sna => "sn",
        Lang::Afr => "af",
        Lang::Lat => "la",
        Lang::Slk => "sk",
        Lang::Cat => "ca",
        Lang::Tgl => "tl",
        Lang::Hye => "hy",
        Lang::Cym => "cy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_whatlang_language_has_a_two_letter_code() {
        for lang in Lang::all() {
            let code = iso_639_1(*lang);
            assert_eq!(code.len(), 2, "{lang:?}");
        }
    }

    #[test]
    fn detects_common_languages() {
        assert_eq!(
            detect_language("The quick brown fox jumps over the lazy dog and keeps running through the field."),
            Some("en")
        );
        assert_eq!(
            detect_language("Le renard brun rapide saute par-dessus le chien paresseux et continue sa course."),
            Some("fr")
        );
        assert_eq!(
            detect_language("ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ? ಇಂದು ಹವಾಮಾನ ತುಂಬಾ ಚೆನ್ನಾಗಿದೆ."),
            Some("kn")
        );
        assert_eq!(detect_language("1234 !!! ..."), None);
    }
}
