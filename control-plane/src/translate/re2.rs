//! What Envoy's RE2 refuses among the patterns the `regex` crate takes, so that `serve` refuses a
//! user's regular expression before Envoy refuses the configuration holding it (a NACK of the
//! listeners). Pure: the pattern's syntax tree (`regex-syntax`), nothing compiled.
//!
//! RE2 (re2/parse.cc, re2/syntax): inline flags are only `i`, `m`, `s` and `U` (no `x`, `u`,
//! `R`); a character class holds no nested class and no set operation (`&&`, `--`, `~~`); a
//! counted repetition is at most `{1000}`, and so are counted repetitions nested in one another,
//! multiplied (`(x{100}){100}` is refused: "invalid repetition size").

use regex_syntax::ast::{self, Ast, ClassSet, ClassSetItem, Flag, FlagsItemKind, GroupKind, RepetitionKind, RepetitionRange};

/// RE2's `kMaxRepeat`.
const MAX_REPEAT: u64 = 1000;

/// Why RE2 refuses `pattern`, if it does; `None` for a pattern RE2 takes (or one the `regex`
/// crate refuses too, which its own error reports).
pub fn refuses(pattern: &str) -> Option<String> {
    let ast = ast::parse::Parser::new().parse(pattern).ok()?;
    repeat_product(&ast).err()
}

/// The largest product of counted repetitions nested in `ast` (1 without any), or why RE2
/// refuses it.
fn repeat_product(ast: &Ast) -> Result<u64, String> {
    match ast {
        Ast::Flags(set) => flags(&set.flags).map(|()| 1),
        Ast::Group(group) => {
            if let GroupKind::NonCapturing(set) = &group.kind {
                flags(set)?;
            }
            repeat_product(&group.ast)
        }
        Ast::ClassBracketed(class) => class_set(&class.kind).map(|()| 1),
        Ast::Repetition(repetition) => {
            let count = match &repetition.op.kind {
                RepetitionKind::Range(RepetitionRange::Exactly(n) | RepetitionRange::AtLeast(n) | RepetitionRange::Bounded(_, n)) => u64::from(*n),
                RepetitionKind::ZeroOrOne | RepetitionKind::ZeroOrMore | RepetitionKind::OneOrMore => 1,
            };
            let product = repeat_product(&repetition.ast)?.saturating_mul(count.max(1));
            match product > MAX_REPEAT {
                true => Err(format!("counted repetitions past {{{MAX_REPEAT}}} in all, which RE2 refuses")),
                false => Ok(product),
            }
        }
        Ast::Alternation(alternation) => largest(&alternation.asts),
        Ast::Concat(concat) => largest(&concat.asts),
        Ast::Empty(_) | Ast::Literal(_) | Ast::Dot(_) | Ast::Assertion(_) | Ast::ClassUnicode(_) | Ast::ClassPerl(_) => Ok(1),
    }
}

fn largest(asts: &[Ast]) -> Result<u64, String> {
    asts.iter().try_fold(1, |most, ast| Ok(most.max(repeat_product(ast)?)))
}

fn flags(set: &ast::Flags) -> Result<(), String> {
    for item in &set.items {
        if let FlagsItemKind::Flag(flag @ (Flag::IgnoreWhitespace | Flag::Unicode | Flag::CRLF)) = item.kind {
            return Err(format!("the inline flag {flag:?}, which RE2 does not have (only i, m, s and U)"));
        }
    }
    Ok(())
}

fn class_set(set: &ClassSet) -> Result<(), String> {
    let nested = "a class inside a class, which RE2 does not have";
    match set {
        ClassSet::BinaryOp(_) => Err("a class set operation (&&, --, ~~), which RE2 does not have".into()),
        ClassSet::Item(ClassSetItem::Bracketed(_)) => Err(nested.into()),
        ClassSet::Item(ClassSetItem::Union(union)) if union.items.iter().any(|item| matches!(item, ClassSetItem::Bracketed(_))) => Err(nested.into()),
        ClassSet::Item(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_re2_refuses_and_takes() {
        let cases: &[(&str, bool)] = &[
            ("bot", false),
            ("(?i)^(?:a|b)[/\\s]", false),
            ("(?imsU)x", false),
            ("x{1000}", false),
            ("(x{10}){100}", false),
            ("(?:x{10}|y{20}){50}", false),
            ("x{1001}", true),
            ("(x{100}){100}", true),
            ("((x{10}){10}){11}", true),
            ("(?:a|(?:b{40}){30})", true),
            ("(?x) a b", true),
            ("(?u:x)", true),
            ("(?R)x", true),
            ("[a-z&&[^aeiou]]", true),
            ("[a[bc]]", true),
            ("[[:alpha:]_]", false),
            ("x*y+z?", false),
        ];
        for (pattern, refused) in cases {
            assert_eq!(refuses(pattern).is_some(), *refused, "{pattern}: {:?}", refuses(pattern));
        }
    }
}
