//! The key that identifies a prompt of an evaluation data set.
//!
//! IFEval numbers its prompts (`"key": 1000`), IFBench writes the number as a string
//! (`"key": "0"`). A key is kept exactly as the data gives it, integer or string, so the
//! responses, scores and report files written for a data set use that data set's keys and the
//! official evaluators can join them with its prompts.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A prompt key: an integer or a string, as in the data.
///
/// Keys of different kinds never compare equal (`1` is not `"1"`); integers sort before strings,
/// integers numerically, strings by their bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Int(i64),
    Str(String),
}

impl Key {
    /// The key a JSON value holds, if it is an integer that fits in i64 or a string.
    pub fn from_json(value: &serde_json::Value) -> Option<Key> {
        match value {
            serde_json::Value::Number(n) => n.as_i64().map(Key::Int),
            serde_json::Value::String(s) => Some(Key::Str(s.clone())),
            _ => None,
        }
    }
}

impl From<i64> for Key {
    fn from(n: i64) -> Self {
        Key::Int(n)
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key::Str(s.to_string())
    }
}

impl From<String> for Key {
    fn from(s: String) -> Self {
        Key::Str(s)
    }
}

/// Without quotes, so messages and examples.md read `key 0` for either kind.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(n) => write!(f, "{n}"),
            Key::Str(s) => f.write_str(s),
        }
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::Int(n) => serializer.serialize_i64(*n),
            Key::Str(s) => serializer.serialize_str(s),
        }
    }
}

// A visitor instead of `#[serde(untagged)]`: the error then says what a key may be, and a
// float or an integer beyond i64 is rejected instead of being turned into something else.
struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a string key")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Key, E> {
        Ok(Key::Int(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Key, E> {
        i64::try_from(n)
            .map(Key::Int)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
        Ok(Key::Str(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Key, E> {
        Ok(Key::Str(s))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_kind_through_json() {
        for (text, key) in [("7", Key::Int(7)), ("-3", Key::Int(-3)), ("\"0\"", Key::from("0"))] {
            let parsed: Key = serde_json::from_str(text).unwrap();
            assert_eq!(parsed, key);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
        }
        assert_eq!(Key::from_json(&json!(5)), Some(Key::Int(5)));
        assert_eq!(Key::from_json(&json!("a-1")), Some(Key::from("a-1")));
        for bad in [json!(1.5), json!(null), json!([1]), json!(u64::MAX)] {
            assert_eq!(Key::from_json(&bad), None, "{bad}");
            let e = serde_json::from_value::<Key>(bad).unwrap_err().to_string();
            assert!(e.contains("an integer or a string key"), "{e}");
        }
    }

    #[test]
    fn displays_without_quotes_and_orders_ints_first() {
        assert_eq!(Key::Int(12).to_string(), "12");
        assert_eq!(Key::from("12").to_string(), "12");
        assert_ne!(Key::Int(12), Key::from("12"));
        let mut keys = vec![Key::from("10"), Key::Int(10), Key::from("9"), Key::Int(9)];
        keys.sort();
        assert_eq!(keys, [Key::Int(9), Key::Int(10), Key::from("10"), Key::from("9")]);
    }
}
