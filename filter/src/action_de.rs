//! Reading a [`RouteAction`] from the route table without serde's buffering of internally tagged
//! enums.
//!
//! `#[serde(tag = "kind")]` makes serde read every action into an intermediate tree of its own
//! (allocated key by key) before it knows the variant, then read that tree again: for a table of
//! 20 000 routes that is a second parse of most of the table, in every `on_configure`. The control
//! plane writes `kind` first (serialisation follows the derive), so the variant is known after one
//! key and the rest of the object is read straight into it. An object whose `kind` comes later (a
//! table written by hand) is still read, through a `serde_json` value. Errors read as before:
//! unknown variants and fields, and a missing `kind`, are refused.

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use crate::table::{Forward, Redirect, Respond, RouteAction};

/// The variants of [`RouteAction`] by their `kind`.
#[derive(serde::Deserialize)]
enum Kind {
    Forward,
    Respond,
    Redirect,
}

impl<'de> Deserialize<'de> for RouteAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RouteAction, D::Error> {
        deserializer.deserialize_map(ActionVisitor)
    }
}

struct ActionVisitor;

impl<'de> Visitor<'de> for ActionVisitor {
    type Value = RouteAction;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a route action: an object with a \"kind\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RouteAction, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Err(de::Error::missing_field("kind"));
        };
        if first == "kind" {
            let kind: Kind = map.next_value()?;
            return variant(kind, MapAccessDeserializer::new(map));
        }
        // `kind` later in the object: read it whole, then as the variant it names.
        let mut object = serde_json::Map::new();
        object.insert(first, map.next_value()?);
        while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
            object.insert(key, value);
        }
        let kind = object.remove("kind").ok_or_else(|| de::Error::missing_field("kind"))?;
        let kind = Kind::deserialize(kind).map_err(de::Error::custom)?;
        variant(kind, serde_json::Value::Object(object)).map_err(de::Error::custom)
    }
}

fn variant<'de, D: Deserializer<'de>>(kind: Kind, rest: D) -> Result<RouteAction, D::Error> {
    Ok(match kind {
        Kind::Forward => RouteAction::Forward(Forward::deserialize(rest)?),
        Kind::Respond => RouteAction::Respond(Respond::deserialize(rest)?),
        Kind::Redirect => RouteAction::Redirect(Redirect::deserialize(rest)?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<RouteAction, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn actions_read_the_same_whichever_place_kind_has() {
        let forward = RouteAction::forward_to("default/web/80");
        let written = serde_json::to_string(&forward).unwrap();
        assert!(written.starts_with(r#"{"kind":"Forward""#), "{written}");
        assert_eq!(read(&written).unwrap(), forward);
        let later = r#"{"backends": [{"cluster": "default/web/80", "weight": 1}], "kind": "Forward"}"#;
        assert_eq!(read(later).unwrap(), forward);
        let respond = RouteAction::respond(503, "service unavailable");
        assert_eq!(read(&serde_json::to_string(&respond).unwrap()).unwrap(), respond);
    }

    #[test]
    fn bad_actions_are_refused_with_a_reason() {
        let cases = [
            (r#"{"kind": "Teleport"}"#, "unknown variant `Teleport`"),
            (r#"{"backends": [], "kind": "Teleport"}"#, "unknown variant `Teleport`"),
            (r#"{}"#, "missing field `kind`"),
            (r#"{"backends": []}"#, "missing field `kind`"),
            (r#"{"kind": "Forward", "backends": [], "bogus": 1}"#, "unknown field `bogus`"),
            (r#"{"backends": [], "bogus": 1, "kind": "Forward"}"#, "unknown field `bogus`"),
            (r#"{"kind": "Forward"}"#, "missing field `backends`"),
            (r#""Forward""#, "a route action"),
        ];
        for (json, reason) in cases {
            let error = read(json).unwrap_err();
            assert!(error.contains(reason), "{json}: {error}");
        }
    }
}
