//! `milih-site finish [DIR]`: finishes a built site in place (trunk runs it
//! as a post-build hook on its staging directory; DIR defaults to
//! `$TRUNK_STAGING_DIR`, then `dist`). See the library for what it does.

use anyhow::{bail, Context, Result};
use milih_site::{
    externalize_start_script, insert_csp, render_service_worker, Precache, SERVICE_WORKER,
};
use std::path::{Path, PathBuf};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    if command != "finish" {
        bail!("usage: milih-site finish [DIR]   (DIR defaults to $TRUNK_STAGING_DIR, then dist)");
    }
    let dir = args
        .next()
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("TRUNK_STAGING_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("dist"));
    finish(&dir).with_context(|| format!("finishing the site in {}", dir.display()))
}

fn finish(dir: &Path) -> Result<()> {
    let index = dir.join("index.html");
    let html = std::fs::read_to_string(&index).context("reading index.html")?;
    let (html, script) = externalize_start_script(&html)?;
    if let Some((name, body)) = script {
        std::fs::write(dir.join(&name), body).with_context(|| format!("writing {name}"))?;
    }
    std::fs::write(&index, insert_csp(&html)?).context("writing index.html")?;

    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(dir)?;
        let path = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let content = std::fs::read(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        files.push((path, content));
    }
    let precache = Precache::of(files.iter().map(|(p, c)| (p.clone(), c.as_slice())))?;

    let sw_path = dir.join(SERVICE_WORKER);
    let template = std::fs::read_to_string(&sw_path).context("reading sw.js")?;
    std::fs::write(&sw_path, render_service_worker(&template, &precache)?)
        .context("writing sw.js")?;
    println!(
        "site finished: {} files to precache, {} bytes, version {}",
        precache.files.len(),
        precache.total_bytes(),
        precache.version
    );
    Ok(())
}
