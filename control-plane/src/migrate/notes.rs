//! The "Notes" column of `docs/annotations.md`, compiled in: the registry says *whether* an
//! annotation behaves as in ingress-nginx, this page says *how* it differs, and a registry test
//! keeps both in step. `migrate` quotes it for annotations whose translation said nothing.

const PAGE: &str = include_str!("../../../docs/annotations.md");

/// The notes of an annotation's row (name after the prefix); `None` if the page has no row.
pub fn note(name: &str) -> Option<&'static str> {
    PAGE.lines().find_map(|line| {
        let (row_name, rest) = line.strip_prefix("| `")?.split_once("` | ")?;
        if row_name != name {
            return None;
        }
        let (_status, notes) = rest.split_once(" | ")?;
        Some(notes.strip_suffix('|').unwrap_or(notes).trim())
    })
}

/// The part of the notes that states the difference (from `Differs:` on when the row has one, so a
/// long row is quoted from where it matters), else the whole notes; `None` if empty.
pub fn difference(name: &str) -> Option<&'static str> {
    let notes = note(name).filter(|n| !n.is_empty())?;
    Some(notes.find("Differs:").map_or(notes, |at| &notes[at..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::translate::ingress::registry::{Support, REGISTRY};

    #[test]
    fn every_differing_annotation_says_how_on_the_page() {
        for entry in REGISTRY.iter().filter(|e| matches!(e.support, Support::Differs | Support::NoEffect)) {
            let how = difference(entry.name);
            assert!(how.is_some_and(|h| h.len() > 10), "{}: docs/annotations.md does not say how it differs", entry.name);
        }
    }

    #[test]
    fn every_annotation_not_applied_says_what_is_lost() {
        let not_applied = |e: &&crate::translate::ingress::registry::Entry| {
            matches!(e.support, Support::NotYet | Support::AccessControl | Support::Snippet)
        };
        for entry in REGISTRY.iter().filter(not_applied) {
            assert!(note(entry.name).is_some_and(|n| n.len() > 10), "{}: docs/annotations.md does not say what is lost", entry.name);
        }
    }

    #[test]
    fn notes_are_quoted_from_the_difference_on() {
        assert_eq!(note("no-such-annotation"), None);
        let limit = difference("limit-rps").unwrap();
        assert!(limit.starts_with("Differs: the bucket refills once a second"), "{limit}");
        assert!(note("proxy-buffering").unwrap().contains("Envoy streams responses"));
    }
}
