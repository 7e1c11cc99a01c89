//! Where a piece of the route table comes from: an Ingress (`namespace/name`) and, for a route, the
//! field of it (`spec.rules[0].http.paths[1]`). The table carries it as the one string people read
//! in logs and `explain` (`default/shop: spec.rules[0].http.paths[1]`); both sides hold it typed, so
//! nobody splits that string again to find the Ingress. Never used for routing.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An Ingress and one of its fields; all empty: unknown (a table written by hand).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub namespace: String,
    pub name: String,
    /// The field path inside the Ingress; empty: the Ingress as a whole.
    pub field: String,
}

impl Origin {
    /// The Ingress `namespace/name`, field `field`.
    pub fn new(namespace: &str, name: &str, field: &str) -> Origin {
        Origin { namespace: namespace.to_owned(), name: name.to_owned(), field: field.to_owned() }
    }

    /// Nothing is known (serialised as nothing at all).
    pub fn is_empty(&self) -> bool {
        self.namespace.is_empty() && self.name.is_empty() && self.field.is_empty()
    }

    /// Read the written form: `namespace/name: field`, `namespace/name`, or `name` (cluster-scoped
    /// or hand-written). Every string is accepted: this is a label, not a reference.
    pub fn parse(text: &str) -> Origin {
        let (object, field) = text.split_once(": ").unwrap_or((text, ""));
        let (namespace, name) = object.split_once('/').unwrap_or(("", object));
        Origin::new(namespace, name, field)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        f.write_str(&self.name)?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        Ok(())
    }
}

impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Origin, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(Origin::parse(&text))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::Origin;

    #[test]
    fn the_written_form_reads_back_as_the_same_origin() {
        let cases = [
            ("default/shop: spec.rules[0].http.paths[1]", Origin::new("default", "shop", "spec.rules[0].http.paths[1]")),
            ("default/shop-canary", Origin::new("default", "shop-canary", "")),
            ("shop", Origin::new("", "shop", "")),
            ("", Origin::default()),
            ("a/b: c: d", Origin::new("a", "b", "c: d")),
        ];
        for (text, origin) in cases {
            assert_eq!(Origin::parse(text), origin, "{text:?}");
            assert_eq!(origin.to_string(), text);
            let json = serde_json::to_string(&origin).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<Origin>(&json).unwrap(), origin);
        }
        assert!(Origin::default().is_empty() && !Origin::new("", "x", "").is_empty());
    }
}
