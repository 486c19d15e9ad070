//! Where the workspace and its Python virtualenv are, for tools the tests start.

use std::path::PathBuf;

use anyhow::{Context, bail};

/// Returns the workspace root: the nearest folder above this crate holding `Cargo.lock`.
pub fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .map(PathBuf::from)
        .context("no Cargo.lock above the testkit crate")
}

/// Returns the project virtualenv: `BACKUP_BRIDGE_VENV`, or `.venv` in the workspace root.
pub fn venv() -> anyhow::Result<PathBuf> {
    let venv = match std::env::var_os("BACKUP_BRIDGE_VENV") {
        Some(path) => PathBuf::from(path),
        None => workspace_root()?.join(".venv"),
    };
    if !venv.join("bin/python").exists() {
        bail!(
            "no Python virtualenv at {}; run `make setup` first",
            venv.display()
        );
    }
    Ok(venv)
}

/// Returns the path of a program installed in the virtualenv.
pub fn venv_bin(name: &str) -> anyhow::Result<PathBuf> {
    let path = venv()?.join("bin").join(name);
    if !path.exists() {
        bail!(
            "{} is missing; run `make setup` to install the pinned tools",
            path.display()
        );
    }
    Ok(path)
}

/// Returns `PATH` with the virtualenv's `bin` first, so `cargo lambda` finds `cargo-lambda`.
pub fn path_with_venv() -> anyhow::Result<String> {
    let bin = venv()?.join("bin");
    let rest = std::env::var("PATH").unwrap_or_default();
    Ok(format!("{}:{rest}", bin.display()))
}
