//! `milih-site finish [DIR]`: finishes a built site in place (trunk runs it
//! as a post-build hook on its staging directory; DIR defaults to
//! `$TRUNK_STAGING_DIR`, then `dist`). See the library for what it does.

use anyhow::{bail, Context, Result};
use milih_site::{
    compress_wasm, compressed_name, drop_wasm_preload, externalize_start_script, insert_csp,
    load_compressed, render_service_worker, request_bundle_early, Precache, SERVICE_WORKER,
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

/// Replaces each `*_bg.wasm` in `dir` with its gzip (`*_bg.wasmz`) and
/// points the scripts that load it there; returns `html` without the
/// module's preload. A module already compressed is left alone.
fn compress_modules(dir: &Path, html: &str) -> Result<String> {
    let mut html = html.to_owned();
    let names: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    let scripts: Vec<&String> = names.iter().filter(|n| n.ends_with(".js")).collect();
    for wasm in names.iter().filter(|n| n.ends_with("_bg.wasm")) {
        let mut loaders = 0;
        for script in &scripts {
            let path = dir.join(script);
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("reading {script}"))?;
            // Only loaders name the module as a relative path; wasm-bindgen's
            // own glue names it through `import.meta.url`.
            if let Some(loader) = load_compressed(&text, wasm) {
                let loader = request_bundle_early(&loader).unwrap_or(loader);
                std::fs::write(&path, loader).with_context(|| format!("writing {script}"))?;
                loaders += 1;
            }
        }
        if loaders == 0 {
            bail!("no script loads {wasm}: cannot ship it compressed");
        }
        let module = std::fs::read(dir.join(wasm)).with_context(|| format!("reading {wasm}"))?;
        let compressed = compressed_name(wasm);
        std::fs::write(dir.join(&compressed), compress_wasm(&module))
            .with_context(|| format!("writing {compressed}"))?;
        std::fs::remove_file(dir.join(wasm)).with_context(|| format!("removing {wasm}"))?;
        html = drop_wasm_preload(&html, wasm);
    }
    Ok(html)
}

fn finish(dir: &Path) -> Result<()> {
    let index = dir.join("index.html");
    let html = std::fs::read_to_string(&index).context("reading index.html")?;
    let (html, script) = externalize_start_script(&html)?;
    if let Some((name, body)) = script {
        std::fs::write(dir.join(&name), body).with_context(|| format!("writing {name}"))?;
    }
    let mut html = insert_csp(&html)?;
    html = compress_modules(dir, &html)?;
    std::fs::write(&index, html).context("writing index.html")?;

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
