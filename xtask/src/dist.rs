//! `cargo xtask dist [--require-cross] [--deb]`: release binaries (every plugin) into
//! target/dist/: one for this machine and, where the Rust target is installed, static musl ones
//! for a Raspberry Pi (aarch64, armv7). A missing target is named with the command that adds it;
//! `--require-cross` makes it an error (for a CI machine that has them). `--deb` also runs
//! `cargo deb` for each built target when cargo-deb is installed.

use crate::{cargo, root, step};
use std::process::Command;

/// (Rust target, file name in target/dist, Debian linker package).
const CROSS: [(&str, &str, &str); 2] = [
    (
        "aarch64-unknown-linux-musl",
        "twcmanager-aarch64-linux-musl",
        "gcc-aarch64-linux-gnu",
    ),
    (
        "armv7-unknown-linux-musleabihf",
        "twcmanager-armv7-linux-musleabihf",
        "gcc-arm-linux-gnueabihf",
    ),
];

fn installed_targets() -> Vec<String> {
    // Without rustup, the sysroot tells which standard libraries are there.
    if let Ok(o) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        && o.status.success()
    {
        return String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect();
    }
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    std::fs::read_dir(format!("{sysroot}/lib/rustlib"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let require_cross = args.iter().any(|a| a == "--require-cross");
    let deb = args.iter().any(|a| a == "--deb");
    let dist = root().join("target/dist");
    std::fs::create_dir_all(&dist).map_err(|e| format!("creating {}: {e}", dist.display()))?;
    let mut b = cargo();
    b.args([
        "build",
        "--release",
        "--locked",
        "-p",
        "twcmanager",
        "--features",
        "full",
    ]);
    step("release build for this machine", b)?;
    let host = format!("twcmanager-{}-linux", std::env::consts::ARCH);
    copy(&root().join("target/release/twcmanager"), &dist.join(&host))?;
    let mut built = vec![(None, host)];
    let installed = installed_targets();
    let mut missing = Vec::new();
    for (target, name, linker_pkg) in CROSS {
        if !installed.iter().any(|t| t == target) {
            missing.push(format!(
                "{target}: `rustup target add {target}` and `apt install {linker_pkg}`"
            ));
            continue;
        }
        let linker = linker_pkg.trim_start_matches("gcc-").to_string() + "-gcc";
        let env_key = format!(
            "CARGO_TARGET_{}_LINKER",
            target.to_uppercase().replace('-', "_")
        );
        let mut c = cargo();
        c.args([
            "build",
            "--release",
            "--locked",
            "-p",
            "twcmanager",
            "--features",
            "full",
            "--target",
            target,
        ]);
        if std::env::var_os(&env_key).is_none() {
            c.env(&env_key, &linker);
        }
        c.env("RUSTFLAGS", "-C target-feature=+crt-static");
        step(&format!("release build for {target}"), c)?;
        copy(
            &root().join(format!("target/{target}/release/twcmanager")),
            &dist.join(name),
        )?;
        built.push((Some(target), name.to_string()));
    }
    if deb {
        for (target, _) in &built {
            let mut c = cargo();
            c.args(["deb", "-p", "twcmanager", "--no-build"]);
            if let Some(t) = target {
                c.args(["--target", t]);
            }
            step("cargo deb (needs `cargo install cargo-deb`)", c)?;
        }
    }
    eprintln!(
        "\ndist: built {}",
        built
            .iter()
            .map(|b| b.1.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !missing.is_empty() {
        eprintln!("dist: not built, the Rust target is not installed:");
        for m in &missing {
            eprintln!("  - {m}");
        }
        if require_cross {
            return Err(format!(
                "{} cross target(s) missing (--require-cross)",
                missing.len()
            ));
        }
    }
    Ok(())
}

fn copy(from: &std::path::Path, to: &std::path::Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}
