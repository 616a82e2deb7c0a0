//! Python `re` and `fnmatch` patterns translated to the `regex` crate. c7n matches with
//! `re.match` (anchored at the start only); `regex` has no lookaround or backreferences, so
//! such patterns are reported at validation time instead of silently differing.

use regex::{Regex, RegexBuilder};

/// Translates a Python pattern for `re.match(pattern, s[, IGNORECASE])`.
pub(crate) fn compile_match(pattern: &str, ignore_case: bool) -> Result<Regex, String> {
    let body = translate(pattern)?;
    RegexBuilder::new(&format!(r"\A(?:{body})"))
        .case_insensitive(ignore_case)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| format!("invalid regex `{pattern}`: {}", first_line(&e.to_string())))
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

fn translate(p: &str) -> Result<String, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    let unsupported = |what: &str| {
        Err(format!(
            "regex `{p}` uses {what}, which custodian-zero cannot evaluate"
        ))
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err(format!("invalid regex `{p}`: bad escape (end of pattern)"));
                };
                match n {
                    'Z' => out.push_str(r"\z"),
                    '1'..='9' => return unsupported("a backreference"),
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
                i += 2;
            }
            '[' => {
                // Copy a character class, escaping what `regex` treats specially inside
                // classes (nested `[`, `&&`, `--`, `~~`) but Python does not.
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
                let mut closed = false;
                while i < chars.len() {
                    let d = chars[i];
                    match d {
                        ']' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        '\\' => {
                            if let Some(&n) = chars.get(i + 1) {
                                out.push('\\');
                                out.push(n);
                            }
                            i += 2;
                            continue;
                        }
                        '[' | '&' | '~' => {
                            out.push('\\');
                            out.push(d);
                        }
                        _ => out.push(d),
                    }
                    i += 1;
                }
                if !closed {
                    return Err(format!("invalid regex `{p}`: unterminated character set"));
                }
                out.push(']');
            }
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    let rest: String = chars[i + 2..].iter().take(3).collect();
                    if rest.starts_with('=')
                        || rest.starts_with('!')
                        || rest.starts_with("<=")
                        || rest.starts_with("<!")
                    {
                        return unsupported("a lookaround");
                    }
                    if rest.starts_with('>') {
                        return unsupported("an atomic group");
                    }
                    if rest.starts_with("P=") {
                        return unsupported("a named backreference");
                    }
                    if rest.starts_with('(') {
                        return unsupported("a conditional group");
                    }
                    if rest.starts_with('#') {
                        // A comment group: drop it.
                        while i < chars.len() && chars[i] != ')' {
                            i += 1;
                        }
                        i += 1;
                        continue;
                    }
                    // Inline flags: Python's `a`/`L` have no equivalent; `u` is the default.
                    let mut j = i + 2;
                    let mut flags = String::new();
                    while j < chars.len() && chars[j].is_ascii_alphabetic() {
                        flags.push(chars[j]);
                        j += 1;
                    }
                    if !flags.is_empty() && !flags.starts_with('P') {
                        if flags.contains('a') || flags.contains('L') {
                            return unsupported("the ASCII/locale flag");
                        }
                        let kept: String = flags.chars().filter(|f| *f != 'u').collect();
                        out.push_str("(?");
                        out.push_str(&kept);
                        i = j;
                        if kept.is_empty() && chars.get(j) == Some(&')') {
                            // `(?u)` alone: nothing left to say.
                            out.truncate(out.len() - 2);
                            i = j + 1;
                        }
                        continue;
                    }
                }
                out.push('(');
                i += 1;
            }
            '{' => {
                // Python reads `{` as a literal unless it forms a valid quantifier.
                let mut j = i + 1;
                let mut inner = String::new();
                while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == ',') {
                    inner.push(chars[j]);
                    j += 1;
                }
                let valid =
                    chars.get(j) == Some(&'}') && inner.matches(',').count() <= 1 && inner != ",";
                if valid && !out.is_empty() {
                    let q = if inner.starts_with(',') {
                        format!("0{inner}")
                    } else {
                        inner
                    };
                    if q.is_empty() {
                        out.push_str(r"\{\}");
                    } else {
                        out.push('{');
                        out.push_str(&q);
                        out.push('}');
                    }
                    i = j + 1;
                } else {
                    out.push_str(r"\{");
                    i += 1;
                }
            }
            '}' => {
                out.push_str(r"\}");
                i += 1;
            }
            '$' => {
                // Python's `$` also matches before a final newline.
                out.push_str(r"(?:\n?\z)");
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// `fnmatch.fnmatch(value, pattern)` on POSIX (case-sensitive, whole string).
pub(crate) fn compile_glob(pattern: &str) -> Result<Regex, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from(r"\A(?s:");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str(r"\[");
                } else {
                    let mut stuff: String = chars[i..j].iter().collect();
                    i = j + 1;
                    let negate = stuff.starts_with('!');
                    if negate {
                        stuff.remove(0);
                    }
                    let mut class = String::from("[");
                    if negate {
                        class.push('^');
                    } else if stuff.starts_with('^') {
                        class.push('\\');
                    }
                    for ch in stuff.chars() {
                        if matches!(ch, '\\' | '[' | ']' | '&' | '~') {
                            class.push('\\');
                        }
                        class.push(ch);
                    }
                    class.push(']');
                    if stuff.is_empty() {
                        // `[]` / `[!]`: Python matches nothing / any char.
                        out.push_str(if negate { "." } else { "[^\\s\\S]" });
                    } else {
                        out.push_str(&class);
                    }
                }
            }
            _ => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out.push_str(r")\z");
    Regex::new(&out).map_err(|e| format!("invalid glob `{pattern}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_at_start_only() {
        let r = compile_match("ab", false).unwrap();
        assert!(r.is_match("abc"));
        assert!(!r.is_match("cab"));
    }

    #[test]
    fn python_dollar_and_literal_braces() {
        assert!(compile_match("a$", false).unwrap().is_match("a\n"));
        assert!(compile_match("a{x}", false).unwrap().is_match("a{x}"));
        assert!(compile_match("a{,2}b", false).unwrap().is_match("aab"));
    }

    #[test]
    fn lookarounds_are_rejected() {
        assert!(
            compile_match("(?!x)a", false)
                .unwrap_err()
                .contains("lookaround")
        );
        assert!(
            compile_match(r"(a)\1", false)
                .unwrap_err()
                .contains("backreference")
        );
    }

    #[test]
    fn globs() {
        let g = compile_glob("prod-*-[!x]?").unwrap();
        assert!(g.is_match("prod-a-yz"));
        assert!(!g.is_match("prod-a-xz"));
        assert!(compile_glob("a[").unwrap().is_match("a["));
    }
}
