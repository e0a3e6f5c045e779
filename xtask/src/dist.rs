//! `cargo xtask dist [--require-cross] [--deb]`: release binaries (every plugin) into
//! target/dist/: one for this machine and, where the Rust target is installed, ones for a
//! Raspberry Pi (aarch64 static musl; armv7 static musl, or glibc where rustup has no armv7 musl
//! standard library), each started once under qemu-user when `qemu-<arch>-static` is installed. A missing target is named with the command that adds it;
//! `--require-cross` makes it an error (for a CI machine that has them). `--deb` also runs
//! `cargo deb` for each built target when cargo-deb is installed.

use crate::{cargo, root, step};
use std::process::Command;

/// One Raspberry Pi build: the Rust targets to try in order (the first installed one is built),
/// each with its file name in target/dist, its Debian cross-compiler package and whether it is
/// linked statically.
struct Cross {
    what: &'static str,
    choices: &'static [(&'static str, &'static str, &'static str, bool)],
}

/// aarch64 (Raspberry Pi 3/4/5 on a 64-bit OS): static musl. armv7 (32-bit Raspberry Pi OS):
/// static musl where rustup can fetch its standard library, else glibc (Debian 12's armhf cross
/// compiler links glibc 2.36, which Raspberry Pi OS 12 "bookworm" has).
const CROSS: [Cross; 2] = [
    Cross {
        what: "aarch64",
        choices: &[(
            "aarch64-unknown-linux-musl",
            "twcmanager-aarch64-linux-musl",
            "gcc-aarch64-linux-gnu",
            true,
        )],
    },
    Cross {
        what: "armv7",
        choices: &[
            (
                "armv7-unknown-linux-musleabihf",
                "twcmanager-armv7-linux-musleabihf",
                "gcc-arm-linux-gnueabihf",
                true,
            ),
            (
                "armv7-unknown-linux-gnueabihf",
                "twcmanager-armv7-linux-gnueabihf",
                "gcc-arm-linux-gnueabihf",
                false,
            ),
        ],
    },
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
    let missing = cross_builds(true, Some(&dist), &mut built)?;
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
    report_missing(&missing, require_cross)
}

/// CI's cross-compilation check: every Raspberry Pi target built with the dev profile (cheaper
/// than release, same code and linking) and started under qemu-user. A missing target fails.
pub(crate) fn cross_check() -> Result<(), String> {
    let mut built = Vec::new();
    let missing = cross_builds(false, None, &mut built)?;
    report_missing(&missing, true)
}

fn report_missing(missing: &[String], require_cross: bool) -> Result<(), String> {
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("dist: not built, the Rust target is not installed:");
    for m in missing {
        eprintln!("  - {m}");
    }
    if require_cross {
        return Err(format!(
            "{} cross target(s) missing (--require-cross; .ci/run installs them)",
            missing.len()
        ));
    }
    Ok(())
}

/// Build each [`CROSS`] target that is installed (release or dev profile), copy it into `dist`
/// when given, start it under qemu; returns the targets that are missing, with the fix.
fn cross_builds(
    release: bool,
    dist: Option<&std::path::Path>,
    built: &mut Vec<(Option<&'static str>, String)>,
) -> Result<Vec<String>, String> {
    let installed = installed_targets();
    let mut missing = Vec::new();
    for cross in &CROSS {
        let Some(&(target, name, linker_pkg, static_link)) = cross
            .choices
            .iter()
            .find(|c| installed.iter().any(|t| t == c.0))
        else {
            let (target, _, linker_pkg, _) = cross.choices[0];
            missing.push(format!(
                "{}: `rustup target add {target}` and `apt install {linker_pkg}`",
                cross.what
            ));
            continue;
        };
        let gcc = linker_pkg.trim_start_matches("gcc-").to_string() + "-gcc";
        let env_target = target.to_uppercase().replace('-', "_");
        let mut c = cargo();
        c.args([
            "build",
            "--locked",
            "-p",
            "twcmanager",
            "--features",
            "full",
        ]);
        if release {
            c.arg("--release");
        }
        c.args(["--target", target]);
        // The cross gcc links, and compiles the C inside dependencies (SQLite, aws-lc).
        for key in [
            format!("CARGO_TARGET_{env_target}_LINKER"),
            format!("CC_{}", target.replace('-', "_")),
        ] {
            if std::env::var_os(&key).is_none() {
                c.env(&key, &gcc);
            }
        }
        if static_link {
            c.env("RUSTFLAGS", "-C target-feature=+crt-static");
            // The cross gcc brings glibc's headers, which rename open/stat/… to their *64 forms
            // under large-file support; musl has no such symbols (SQLite failed to link).
            let key = format!("CFLAGS_{}", target.replace('-', "_"));
            if std::env::var_os(&key).is_none() {
                c.env(&key, "-DSQLITE_DISABLE_LFS");
            }
        }
        let profile = if release { "release" } else { "debug" };
        step(&format!("{profile} build for {target}"), c)?;
        let out = root().join(format!("target/{target}/{profile}/twcmanager"));
        let bin = match dist {
            Some(dist) => {
                copy(&out, &dist.join(name))?;
                dist.join(name)
            }
            None => out,
        };
        smoke(target, &bin, linker_pkg)?;
        built.push((Some(target), name.to_string()));
    }
    Ok(missing)
}

/// Start the cross binary once under qemu-user (`--version` and `plugins`), when qemu is there:
/// a binary that links but cannot start on its target fails here, not on the user's Pi.
fn smoke(target: &str, bin: &std::path::Path, linker_pkg: &str) -> Result<(), String> {
    let qemu = if target.starts_with("aarch64") {
        "qemu-aarch64-static"
    } else {
        "qemu-arm-static"
    };
    if Command::new(qemu).arg("--version").output().is_err() {
        eprintln!(
            "dist: {qemu} not installed (apt install qemu-user-static): {target} not started"
        );
        return Ok(());
    }
    // A dynamically linked (glibc) binary finds its loader in the cross compiler's sysroot.
    let sysroot = format!("/usr/{}", linker_pkg.trim_start_matches("gcc-"));
    for args in [&["--version"][..], &["plugins"][..]] {
        let mut c = Command::new(qemu);
        c.arg("-L").arg(&sysroot).arg(bin).args(args);
        step(
            &format!("start the {target} binary under {qemu}: {}", args.join(" ")),
            c,
        )?;
    }
    Ok(())
}

fn copy(from: &std::path::Path, to: &std::path::Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}
