//! JSON parsing into [`serde_json::Value`], optionally keeping only some members.
//!
//! Every `Value` the crate parses goes through here, so the component carries one
//! monomorphised parser instead of serde_json's `Value` visitor plus a pruning one.
//! The result is the same `Value` serde_json builds (last duplicate member wins, the
//! same nesting limit, the same errors).

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses one JSON document (whitespace around it allowed, nothing else).
pub fn parse(json: &[u8]) -> Result<Value, serde_json::Error> {
    run(json, Keep::All)
}

/// Parses like [`parse`], but keeps only the object members named in `keep`, at any
/// depth. Everything else is still checked to be JSON, then skipped without being
/// built and without recursion: only kept members count towards the nesting limit.
pub fn parse_keeping(json: &[u8], keep: &[&str]) -> Result<Value, serde_json::Error> {
    run(json, Keep::Only(keep))
}

fn run(json: &[u8], keep: Keep<'_>) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = Parse(keep).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

#[derive(Clone, Copy)]
enum Keep<'k> {
    All,
    Only(&'k [&'k str]),
}

/// Deserialises a [`Value`] holding the members `.0` keeps.
#[derive(Clone, Copy)]
struct Parse<'k>(Keep<'k>);

impl<'de> DeserializeSeed<'de> for Parse<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Parse<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key_seed(Name(self.0))? {
            match name {
                Some(name) => {
                    let value = map.next_value_seed(self)?;
                    members.insert(name, value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(members))
    }
}

/// An object member's name, if `.0` keeps it.
struct Name<'k>(Keep<'k>);

impl<'de> DeserializeSeed<'de> for Name<'_> {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(match self.0 {
            Keep::All => Some(v.to_owned()),
            Keep::Only(keys) => keys.contains(&v).then(|| v.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What serde_json itself builds, for documents that exercise every kind of value.
    #[test]
    fn parse_builds_what_serde_json_builds() {
        let docs = [
            r#"{"a":1,"b":-2,"c":1.5e3,"d":"x\"y\u00e9\ud83d\ude00","e":[true,false,null],"f":{}}"#,
            r#" [ 18446744073709551615, -9223372036854775808, 0.1, [], [[{}]] ] "#,
            r#"{"dup":1,"dup":2,"\u0061":3,"a":4}"#,
            r#""just a string""#,
            "0",
        ];
        for doc in docs {
            let want: Value = serde_json::from_str(doc).unwrap();
            assert_eq!(parse(doc.as_bytes()).unwrap(), want, "{doc}");
        }
        for bad in [
            "",
            "{",
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            "[1 2]",
            r#""\q""#,
            "nul",
            r#"{"a":1} x"#,
            "\"\u{1}\"",
        ] {
            let want = serde_json::from_str::<Value>(bad).unwrap_err();
            let got = parse(bad.as_bytes()).unwrap_err();
            assert_eq!(got.classify(), want.classify(), "{bad}");
            assert_eq!(
                (got.line(), got.column()),
                (want.line(), want.column()),
                "{bad}"
            );
        }
        // the same nesting limit, whatever serde_json's is
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let limit = (1..200)
            .find(|&n| serde_json::from_str::<Value>(&deep(n)).is_err())
            .expect("serde_json limits nesting");
        assert!(parse(deep(limit - 1).as_bytes()).is_ok(), "{limit}");
        assert!(parse(deep(limit).as_bytes()).is_err(), "{limit}");
    }

    #[test]
    fn parse_keeping_builds_only_the_named_members_and_checks_the_rest() {
        let keep = &["a", "b"];
        let parse = |json: &str| parse_keeping(json.as_bytes(), keep);
        let v = parse(r#"{"a":{"b":[1,{"a":"x","z":2}],"c":3},"z":{"a":1},"b":null}"#).unwrap();
        assert_eq!(v, json!({"a": {"b": [1, {"a": "x"}]}, "b": null}));
        // a member named with an escape is still recognised; the last duplicate wins
        assert_eq!(parse(r#"{"\u0061":1,"a":2}"#).unwrap(), json!({"a": 2}));
        for bad in [
            r#"{"z":[1,}"#,        // invalid JSON in a skipped member
            r#"{"z":"\q"}"#,       // a bad escape in a skipped string
            r#"{"a":1} trailing"#, // anything after the document
            r#"{"a":1"#,           // truncated
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // Skipped values are walked without recursion; kept ones keep the limit.
        let deep =
            |key: &str, n: usize| format!(r#"{{"{key}":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(parse(&deep("z", 5000)).is_ok());
        assert!(parse(&deep("a", 5000)).is_err());
    }
}
