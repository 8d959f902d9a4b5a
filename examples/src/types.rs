//! The TypeScript types of the examples' stores, kept in `pages/types/` for the typed pages
//! (`pages/todo.ts`): each binary's test checks that the files there are what `storex::ts`
//! exports from its stores now, and rewrites them when asked.

use std::path::{Path, PathBuf};

/// Set to `1` to rewrite the files instead of comparing them.
pub const WRITE_VARIABLE: &str = "STOREX_WRITE_TYPES";

/// Exports the types of this program's stores marked `#[store(ts)]` and compares every file
/// with its copy in `pages/types/`; with `STOREX_WRITE_TYPES=1` in the environment, writes them
/// there instead. The error names each file that differs or is missing, and how to update them.
pub fn types_are_current() -> Result<(), String> {
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("pages/types");
    let fresh = std::env::temp_dir().join(format!(
        "storex-example-types-{}-{}",
        std::process::id(),
        crate::now_millis()
    ));
    let result = compare_or_write(&fresh, &kept);
    let _ = std::fs::remove_dir_all(&fresh);
    result
}

fn compare_or_write(fresh: &Path, kept: &Path) -> Result<(), String> {
    storex::ts::export_all(&storex::ts::config(fresh)).map_err(|error| error.to_string())?;
    let write = std::env::var(WRITE_VARIABLE).is_ok_and(|value| value == "1");
    let mut stale = Vec::new();
    for file in files_under(fresh).map_err(|error| format!("{}: {error}", fresh.display()))? {
        let relative = file.strip_prefix(fresh).unwrap_or(&file);
        let target = kept.join(relative);
        let text = std::fs::read_to_string(&file).map_err(|error| error.to_string())?;
        if write {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|error| error.to_string())?;
            }
            std::fs::write(&target, text)
                .map_err(|error| format!("{}: {error}", target.display()))?;
        } else if std::fs::read_to_string(&target).ok().as_deref() != Some(text.as_str()) {
            stale.push(relative.display().to_string());
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the stores' TypeScript types in {} are not what storex::ts exports now: {}; \
         write them with `{WRITE_VARIABLE}=1 cargo test -p storex-examples`",
        kept.display(),
        stale.join(", ")
    ))
}

/// Every file under `dir`, at any depth, in a stable order.
fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
