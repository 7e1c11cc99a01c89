//! Where a piece of the route table comes from: an Ingress (`namespace/name`) and, for a route, the
//! field of it (`spec.rules[0].http.paths[1]`). The table carries it as the one string people read
//! in logs and `explain` (`default/shop: spec.rules[0].http.paths[1]`); both sides hold it typed, so
//! nobody splits that string again to find the Ingress. Never used for routing.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An Ingress and one of its fields; all empty: unknown (a table written by hand).
///
/// Held as its written form with the ends of its parts: one allocation per route of a table of
/// tens of thousands of routes (the filter reads every one of them on each configuration), and the
/// written form is what the table carries anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `namespace/name: field`, each part and its separator left out when empty.
    text: String,
    /// Where the namespace and the name end in `text` (each before its separator).
    namespace_end: u32,
    name_end: u32,
}

impl Origin {
    /// The Ingress `namespace/name`, field `field`.
    pub fn new(namespace: &str, name: &str, field: &str) -> Origin {
        let mut text = String::with_capacity(namespace.len() + name.len() + field.len() + 3);
        if !namespace.is_empty() {
            text.push_str(namespace);
            text.push('/');
        }
        text.push_str(name);
        if !field.is_empty() {
            text.push_str(": ");
            text.push_str(field);
        }
        let namespace_end = namespace.len();
        let name_start = if namespace.is_empty() { 0 } else { namespace_end + 1 };
        Origin::from_parts(text, namespace_end, name_start + name.len())
    }

    /// An origin over `text` whose parts end at those offsets; one past `u32` (never, for what a
    /// table may hold) reads as unknown.
    fn from_parts(text: String, namespace_end: usize, name_end: usize) -> Origin {
        match (u32::try_from(namespace_end), u32::try_from(name_end)) {
            (Ok(namespace_end), Ok(name_end)) => Origin { text, namespace_end, name_end },
            _ => Origin::default(),
        }
    }

    /// The Ingress's namespace (empty: cluster-scoped or unknown).
    pub fn namespace(&self) -> &str {
        self.text.get(..self.namespace_end as usize).unwrap_or_default()
    }

    /// The Ingress's name (empty: unknown).
    pub fn name(&self) -> &str {
        let start = if self.namespace_end == 0 { 0 } else { self.namespace_end as usize + 1 };
        self.text.get(start..self.name_end as usize).unwrap_or_default()
    }

    /// The field path inside the Ingress; empty: the Ingress as a whole.
    pub fn field(&self) -> &str {
        self.text.get(self.name_end as usize + 2..).unwrap_or_default()
    }

    /// Nothing is known (serialised as nothing at all).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Read the written form: `namespace/name: field`, `namespace/name`, or `name` (cluster-scoped
    /// or hand-written). Every string is accepted: this is a label, not a reference.
    pub fn parse(text: &str) -> Origin {
        Origin::parse_owned(text.to_owned())
    }

    /// As [`Origin::parse`], keeping `text` when it is already the written form (the usual case).
    fn parse_owned(text: String) -> Origin {
        let (object, field, field_written) = match text.split_once(": ") {
            Some((object, field)) => (object, field, true),
            None => (text.as_str(), "", false),
        };
        let (namespace, name, namespace_written) = match object.split_once('/') {
            Some((namespace, name)) => (namespace, name, true),
            None => ("", object, false),
        };
        // `a/b: ` and `/b` are read as `a/b` and `b`.
        if (field_written && field.is_empty()) || (namespace_written && namespace.is_empty()) {
            return Origin::new(namespace, name, field);
        }
        let (namespace_end, name_end) = (namespace.len(), object.len());
        Origin::from_parts(text, namespace_end, name_end)
    }
}

/// By namespace, then name, then field (not by the written form: `a-b/x` comes after `a/y`).
impl Ord for Origin {
    fn cmp(&self, other: &Origin) -> std::cmp::Ordering {
        (self.namespace(), self.name(), self.field()).cmp(&(other.namespace(), other.name(), other.field()))
    }
}

impl PartialOrd for Origin {
    fn partial_cmp(&self, other: &Origin) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Origin, D::Error> {
        Ok(Origin::parse_owned(String::deserialize(deserializer)?))
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
            (": f", Origin::new("", "", "f")),
            ("ns/", Origin::new("ns", "", "")),
        ];
        for (text, origin) in cases {
            assert_eq!(Origin::parse(text), origin, "{text:?}");
            assert_eq!(origin.to_string(), text);
            let json = serde_json::to_string(&origin).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<Origin>(&json).unwrap(), origin);
        }
        assert!(Origin::default().is_empty() && !Origin::new("", "x", "").is_empty());
        // Not the written form: read as the origin it names, written the usual way.
        for (text, written) in [("a/b: ", "a/b"), ("/b", "b"), ("/b: f", "b: f")] {
            let origin = Origin::parse(text);
            assert_eq!(origin.to_string(), written, "{text:?}");
            assert_eq!(origin, Origin::parse(written), "{text:?}");
        }
        assert!(Origin::new("a", "y", "") < Origin::new("a-b", "x", ""));
        let origin = Origin::new("default", "shop", "spec.rules[0]");
        assert_eq!((origin.namespace(), origin.name(), origin.field()), ("default", "shop", "spec.rules[0]"));
    }
}
