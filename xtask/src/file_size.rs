//! Rooms of a readable size: no source file is over [`MAX_LINES`] lines, tests excluded (files
//! under a `tests/` directory, files named `tests.rs`, and everything from a file's first
//! `#[cfg(test)] mod` on).

use std::fs;
use std::path::Path;

/// The most lines a source file may have outside its tests.
pub(crate) const MAX_LINES: usize = 600;

/// Source files over [`MAX_LINES`], as `path: N lines`.
pub(crate) fn check(root: &Path) -> Vec<String> {
    let mut errs = Vec::new();
    walk(root, root, &mut errs);
    errs.sort();
    errs
}

fn walk(root: &Path, dir: &Path, errs: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | "tests" | "node_modules")
                && !name.starts_with('.')
            {
                walk(root, &path, errs);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" {
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let lines = code_lines(&text);
            if lines > MAX_LINES {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                errs.push(format!(
                    "{}: {lines} lines outside tests (at most {MAX_LINES}): split it",
                    rel.display()
                ));
            }
        }
    }
}

/// Lines before the first `#[cfg(test)]` that opens a module.
fn code_lines(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod "))
        .unwrap_or(lines.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn inline_tests_do_not_count() {
        assert_eq!(super::code_lines("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
        assert_eq!(super::code_lines("a\nb\n"), 2);
        assert_eq!(super::code_lines("#[cfg(test)]\nfn f() {}\nc\n"), 3);
    }

    #[test]
    fn a_long_file_is_named_and_test_files_are_not() {
        let dir = std::env::temp_dir().join(format!("xtask-file-size-{}", std::process::id()));
        let long = "x\n".repeat(super::MAX_LINES + 1);
        std::fs::create_dir_all(dir.join("src/tests")).unwrap();
        std::fs::write(dir.join("src/big.rs"), &long).unwrap();
        std::fs::write(dir.join("src/ok.rs"), "x\n".repeat(super::MAX_LINES)).unwrap();
        std::fs::write(dir.join("src/tests.rs"), &long).unwrap();
        std::fs::write(dir.join("src/tests/t.rs"), &long).unwrap();
        let errs = super::check(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("src/big.rs: 601 lines"), "{errs:?}");
    }
}
