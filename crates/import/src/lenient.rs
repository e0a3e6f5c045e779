//! TWCManager reads its config with `commentjson`: JSON plus `#` and `//` line comments, and its
//! sample file has trailing commas before `]` and `}`. This turns such text into plain JSON
//! (comments become spaces, so line and column numbers in errors still point into the original)
//! and parses it.

use serde_json::Value;

/// Parse TWCManager-style JSON: `#` and `//` comments outside strings, trailing commas.
/// The error names line and column in the original text.
pub fn parse_lenient(text: &str) -> Result<Value, String> {
    let clean = strip(text);
    serde_json::from_str(&clean).map_err(|e| e.to_string())
}

fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_string = false;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        let comment = c == '#' || (c == '/' && chars.get(i + 1) == Some(&'/'));
        if comment {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        out.push(c);
        i += 1;
    }
    remove_trailing_commas(&out)
}

/// A `,` followed (after whitespace) by `]` or `}` becomes a space. Runs on comment-free text,
/// so only strings need skipping.
fn remove_trailing_commas(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let mut in_string = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            if c == '\\' {
                i += 2;
                continue;
            }
            if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some(']') | Some('}')) {
                chars[i] = ' ';
            }
        }
        i += 1;
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::parse_lenient;
    use serde_json::json;

    #[test]
    fn comments_and_trailing_commas() {
        let text = "{\n # a comment\n \"a\": \"x # not a comment\", // another\n \"b\": [1, 2,],\n \"c\": \"http://h/p\",\n}\n";
        assert_eq!(
            parse_lenient(text).unwrap(),
            json!({"a": "x # not a comment", "b": [1, 2], "c": "http://h/p"})
        );
    }

    #[test]
    fn error_points_into_the_original() {
        let err = parse_lenient("{\n # c\n \"a\": 1 2\n}").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn escaped_quote_keeps_string_open() {
        assert_eq!(
            parse_lenient(r##"{"a": "say \"#hi\"", }"##).unwrap(),
            json!({"a": "say \"#hi\""})
        );
    }
}
