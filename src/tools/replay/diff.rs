//! Readable differences between an expected template and an actual body: both are
//! broken into one member or element per line, lines whose holes match the actual
//! line are shown as the actual line, and the rest is a unified diff.

use similar::TextDiff;

use super::template::Template;

/// One JSON member or XML element per line (a body that is neither is split at its
/// own line breaks). `{{…}}` holes are kept whole.
pub fn lines(text: &str) -> String {
    let trimmed = text.trim_start();
    if trimmed.starts_with('<') {
        text.replace("><", ">\n<")
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        json_lines(text)
    } else {
        text.to_string()
    }
}

fn json_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let (mut in_string, mut escaped, mut depth) = (false, false, 0usize);
    let newline = |out: &mut String, depth: usize| {
        while out.ends_with(' ') {
            out.pop();
        }
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' if chars.peek() == Some(&'{') => {
                // A hole: copied whole.
                out.push_str("{{");
                chars.next();
                let mut prev = ' ';
                for h in chars.by_ref() {
                    out.push(h);
                    if prev == '}' && h == '}' {
                        break;
                    }
                    prev = h;
                }
            }
            '{' | '[' => {
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            '\n' | '\r' => {}
            ' ' | '\t' if out.ends_with(['\n', ' ']) => {}
            _ => out.push(c),
        }
    }
    out
}

/// A unified diff of expected against actual, or None when they are the same text.
pub fn render(expected: &str, actual: &str) -> String {
    let want = lines(expected);
    let got = lines(actual);
    let got_lines: Vec<&str> = got.lines().collect();
    // A line with holes that matches the actual line at the same place is that line.
    let shown: Vec<String> = want
        .lines()
        .enumerate()
        .map(
            |(i, line)| match (Template::parse(line), got_lines.get(i)) {
                (Ok(t), Some(g)) if t.has_holes() && t.matches(g).is_some() => g.to_string(),
                _ => line.to_string(),
            },
        )
        .collect();
    let mut shown = shown.join("\n");
    shown.push('\n');
    let mut got = got;
    got.push('\n');
    TextDiff::from_lines(&shown, &got)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_shown_one_member_per_line() {
        assert_eq!(
            lines(r#"{"a":"x,{y}","b":[1,{"c":{{int}}}]}"#),
            "{\n  \"a\":\"x,{y}\",\n  \"b\":[\n    1,\n    {\n      \"c\":{{int}}\n    }\n  ]\n}"
        );
        assert_eq!(lines("<a><b>1</b></a>"), "<a>\n<b>1</b>\n</a>");
    }

    #[test]
    fn the_diff_names_only_the_changed_member() {
        let d = render(
            r#"{"Errors":"","TransactionID":"{{uuid}}","Message":"OTP sent"}"#,
            r#"{"Errors":"","TransactionID":"36d97a51-07ee-480e-a50e-e6fb53baf14f","Message":"OTP mailed"}"#,
        );
        assert!(d.contains("-  \"Message\":\"OTP sent\""), "{d}");
        assert!(d.contains("+  \"Message\":\"OTP mailed\""), "{d}");
        assert!(!d.contains("-  \"TransactionID\""), "{d}");
    }
}
