//! Every plugin task runs in its plugin's span: plugin crates and the kit start their own tasks
//! with `twc_core::plugin::spawn` / `spawn_blocking` (which keep the caller's span), never with
//! tokio's directly, whose task would log without the `kind` and `plugin` fields.

use std::fs;
use std::path::Path;

/// Calls that start a task outside the caller's span.
const FORBIDDEN: [&str; 3] = [
    "tokio::spawn(",
    "tokio::task::spawn_blocking(",
    "std::thread::spawn(",
];

/// Each use, as `path:line: …` with the fix.
pub(crate) fn check(root: &Path) -> Vec<String> {
    let mut errs = Vec::new();
    let mut dirs = vec![root.join("crates/kit/src")];
    for kind in crate::tidy::KINDS {
        let Ok(entries) = fs::read_dir(root.join("crates").join(kind)) else {
            continue;
        };
        dirs.extend(entries.flatten().map(|e| e.path().join("src")));
    }
    for d in dirs {
        walk(root, &d, &mut errs);
    }
    errs.sort();
    errs
}

fn walk(root: &Path, dir: &Path, errs: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            walk(root, &path, errs);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            errs.extend(uses(&text).into_iter().map(|(line, call)| {
                format!(
                    "{rel}:{line}: `{call}…)` starts a task without the plugin's span; use twc_core::plugin::{}",
                    if call.contains("blocking") || call.contains("thread") {
                        "spawn_blocking"
                    } else {
                        "spawn"
                    }
                )
            }));
        }
    }
}

/// (1-based line, forbidden call) of every use outside comments and test modules.
fn uses(text: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.starts_with("#[cfg(test)]") {
            break;
        }
        if l.starts_with("//") {
            continue;
        }
        for call in FORBIDDEN {
            if line.contains(call) {
                found.push((i + 1, call.trim_end_matches('(')));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_raw_spawn_is_found_and_comments_and_tests_are_not() {
        let src = "fn a() {\n    // tokio::spawn(x) in a comment\n    tokio::spawn(async {});\n    twc_core::plugin::spawn(async {});\n    tokio::task::spawn_blocking(|| ());\n}\n#[cfg(test)]\nmod tests { fn b() { tokio::spawn(async {}); } }\n";
        assert_eq!(
            super::uses(src),
            vec![(3, "tokio::spawn"), (5, "tokio::task::spawn_blocking")]
        );
    }
}
