//! Finishing the site trunk builds, so that it runs offline from any static
//! host under a strict Content-Security-Policy:
//!
//! - [`externalize_start_script`] moves trunk's inline start-up module into
//!   a file of its own (a CSP without `'unsafe-inline'` would block it);
//! - [`insert_csp`] adds the policy as a `<meta>` tag;
//! - [`compress_wasm`] and [`load_compressed`] ship each WebAssembly module
//!   gzipped (a third of its size) and have its loader inflate it in the
//!   browser, which works from any static server;
//! - [`Precache`] lists every file with its size and SHA-256, and
//!   [`render_service_worker`] writes that list into the service worker, so
//!   each deployment gets a service worker of its own that installs exactly
//!   its files.
//!
//! Pure functions over strings and bytes; `main.rs` does the file I/O.

use milih_bundle::files;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The service worker's file name; it is never precached itself.
pub const SERVICE_WORKER: &str = "sw.js";

/// What the page needs and nothing else: its own scripts, styles, images,
/// workers and fetches; WebAssembly compilation; no inline script or
/// style, no plugins, no `<base>` or form targets.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; \
connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'none'";

/// Extension of a gzip-compressed WebAssembly module. Not `.gz`: some servers
/// send `.gz` files with `Content-Encoding: gzip`, and the browser would then
/// hand the page bytes that are already inflated.
pub const COMPRESSED_WASM: &str = ".wasmz";

/// What a loader script needs to start a compressed module: a fetch whose
/// body is inflated by the browser's own `DecompressionStream` and passed on
/// as `application/wasm`, so that compilation still streams.
const UNZIP_HELPER: &str = "const milihUnzip = (url) => fetch(url).then((response) => {
  if (!response.ok) throw new Error(`${url} could not be downloaded: HTTP ${response.status}`);
  return new Response(response.body.pipeThrough(new DecompressionStream('gzip')), {
    headers: { 'Content-Type': 'application/wasm' },
  });
});
";

/// Gzip of a WebAssembly module, packed as the bundle's JSON files are (so
/// the same module always gives the same bytes).
pub fn compress_wasm(module: &[u8]) -> Vec<u8> {
    milih_bundle::pack(module)
}

/// The name of `wasm`'s compressed file: `x_bg.wasm` -> `x_bg.wasmz`.
pub fn compressed_name(wasm: &str) -> String {
    format!("{}{COMPRESSED_WASM}", wasm.trim_end_matches(".wasm"))
}

/// Points a loader script (trunk's start module or the worker's loader) at
/// the compressed module: `"./x_bg.wasm"` becomes
/// `milihUnzip("./x_bg.wasmz")`, which wasm-bindgen's init awaits like any
/// other source. `None` when the script does not load `wasm`.
pub fn load_compressed(script: &str, wasm: &str) -> Option<String> {
    let compressed = compressed_name(wasm);
    let mut out = script.to_owned();
    let mut found = false;
    for quote in ['"', '\''] {
        let from = format!("{quote}./{wasm}{quote}");
        if out.contains(&from) {
            out = out.replace(&from, &format!("milihUnzip({quote}./{compressed}{quote})"));
            found = true;
        }
    }
    found.then(|| format!("{UNZIP_HELPER}{out}"))
}

/// Starts the bundle downloads at the top of the model worker's loader
/// script, so that they run while the worker's own module downloads and
/// compiles instead of after it. The requests wait in
/// [`files::EARLY_REQUESTS`] for the worker (`web/src/worker.rs`), which
/// reads their responses and reports their failures. `None` when `script`
/// is not a worker loader (it has no `importScripts`) or already starts
/// them.
pub fn request_bundle_early(script: &str) -> Option<String> {
    let global = files::EARLY_REQUESTS;
    if !script.contains("importScripts(") || script.contains(global) {
        return None;
    }
    let names: Vec<String> = std::iter::once(files::MANIFEST)
        .chain(files::ALL)
        .map(|name| format!("'{name}'"))
        .collect();
    Some(format!(
        "// The model bundle downloads while this worker's code loads; the worker takes the requests over.
self.{global} = new Map([{names}].map((name) => {{
  // Where the worker keeps its own copies for the offline site, the HTTP
  // cache is not asked for one more (the service worker reads the manifest
  // from it).
  const stored = location.search === '{keep}' && name !== '{manifest}';
  const response = fetch(`{dir}${{name}}`, stored ? {{ cache: 'no-store' }} : {{}});
  // Failures are reported when the worker reads the response.
  response.catch(() => {{}});
  return [name, response];
}}));
{script}",
        names = names.join(", "),
        dir = files::SITE_DIR,
        keep = files::KEEP_COPIES,
        manifest = files::MANIFEST,
    ))
}

/// Removes trunk's `<link rel="preload" href="./x_bg.wasm" …>` for a module
/// that is now served compressed (the loader fetches it itself).
pub fn drop_wasm_preload(html: &str, wasm: &str) -> String {
    let href = format!("href=\"./{wasm}\"");
    let Some(at) = html.find(&href) else {
        return html.to_owned();
    };
    let (Some(start), Some(end)) = (html[..at].rfind("<link"), html[at..].find('>')) else {
        return html.to_owned();
    };
    format!("{}{}", &html[..start], &html[at + end + 1..])
}

/// The line of the service worker template that receives the list.
const PRECACHE_LINE: &str = "const PRECACHE = ";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SiteError {
    #[error("index.html has no <head> to put the Content-Security-Policy in")]
    NoHead,
    #[error("index.html has an inline script that does not end: {0}")]
    UnclosedScript(String),
    #[error("index.html still has an inline script after finishing: {0}")]
    InlineScript(String),
    #[error("sw.js has no line starting with `{PRECACHE_LINE}` to receive the file list")]
    NoPrecacheLine,
    #[error("`{0}` cannot be precached: file names may hold only letters, digits, '.', '-', '_' and '/'")]
    FileName(String),
}

/// Replaces trunk's inline `<script type="module">…</script>` with
/// `<script type="module" src="./start-<hash>.js">`, returning the new HTML
/// and the script file (name, content), or `None` when there is no inline
/// script left (the page is already finished).
pub fn externalize_start_script(
    html: &str,
) -> Result<(String, Option<(String, String)>), SiteError> {
    const OPEN: &str = "<script type=\"module\">";
    const CLOSE: &str = "</script>";
    let Some(start) = html.find(OPEN) else {
        return Ok((html.to_owned(), None));
    };
    let body_start = start + OPEN.len();
    let Some(body_len) = html[body_start..].find(CLOSE) else {
        return Err(SiteError::UnclosedScript(excerpt(&html[start..])));
    };
    let body = html[body_start..body_start + body_len].trim().to_owned() + "\n";
    let name = format!("start-{}.js", &sha256_hex(body.as_bytes())[..16]);
    let tag = format!("<script type=\"module\" src=\"./{name}\"></script>");
    let finished = format!(
        "{}{tag}{}",
        &html[..start],
        &html[body_start + body_len + CLOSE.len()..]
    );
    if let Some(other) = inline_script(&finished) {
        return Err(SiteError::InlineScript(other));
    }
    Ok((finished, Some((name, body))))
}

/// The first `<script>` without a `src`, if any.
fn inline_script(html: &str) -> Option<String> {
    let mut rest = html;
    while let Some(i) = rest.find("<script") {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
        let tag = &rest[i..tag_end];
        if !tag.contains("src=") {
            return Some(excerpt(&rest[i..]));
        }
        rest = &rest[tag_end..];
    }
    None
}

fn excerpt(text: &str) -> String {
    text.chars().take(60).collect()
}

/// Adds the Content-Security-Policy `<meta>` as the first child of
/// `<head>`, replacing an earlier one.
pub fn insert_csp(html: &str) -> Result<String, SiteError> {
    let meta = format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\" />"
    );
    let without_old: String = html
        .lines()
        .filter(|l| !l.contains("http-equiv=\"Content-Security-Policy\""))
        .collect::<Vec<_>>()
        .join("\n");
    let head = without_old.find("<head>").ok_or(SiteError::NoHead)?;
    let at = head + "<head>".len();
    Ok(format!(
        "{}\n    {meta}{}",
        &without_old[..at],
        &without_old[at..]
    ))
}

/// One file the service worker stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecacheEntry {
    /// Relative to the site root, with `/` separators.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Every file of one deployment and the version they make together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Precache {
    /// Changes whenever any file changes; names the deployment's cache.
    pub version: String,
    pub files: Vec<PrecacheEntry>,
}

impl Precache {
    /// From `(path, content)` pairs; the service worker itself is left out.
    pub fn of<'a>(files: impl IntoIterator<Item = (String, &'a [u8])>) -> Result<Self, SiteError> {
        let mut entries = Vec::new();
        for (path, content) in files {
            if path == SERVICE_WORKER {
                continue;
            }
            let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/".contains(c);
            if path.is_empty() || !path.chars().all(allowed) || path.contains("..") {
                return Err(SiteError::FileName(path));
            }
            entries.push(PrecacheEntry {
                path,
                bytes: content.len() as u64,
                sha256: sha256_hex(content),
            });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let listing: String = entries
            .iter()
            .map(|e| format!("{} {}\n", e.path, e.sha256))
            .collect();
        Ok(Self {
            version: sha256_hex(listing.as_bytes())[..16].to_owned(),
            files: entries,
        })
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// The service worker template with `precache` in its `const PRECACHE = …;`
/// line (replacing whatever list was there).
pub fn render_service_worker(template: &str, precache: &Precache) -> Result<String, SiteError> {
    let json = serde_json::to_string(precache).expect("a precache list always serialises");
    let mut found = false;
    let lines: Vec<String> = template
        .lines()
        .map(|line| {
            if line.starts_with(PRECACHE_LINE) {
                found = true;
                format!("{PRECACHE_LINE}{json};")
            } else {
                line.to_owned()
            }
        })
        .collect();
    if !found {
        return Err(SiteError::NoPrecacheLine);
    }
    Ok(lines.join("\n") + "\n")
}

pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaders_fetch_the_compressed_module_and_preloads_go() {
        let start = "import init from './m.js';\nconst wasm = await init({ module_or_path: './m_bg.wasm' });\n";
        let loaded = load_compressed(start, "m_bg.wasm").unwrap();
        assert!(loaded.contains("init({ module_or_path: milihUnzip('./m_bg.wasmz') })"));
        assert!(loaded.starts_with("const milihUnzip = "));
        assert!(loaded.contains("new DecompressionStream('gzip')"));
        let worker = "importScripts(\"./worker.js\");wasm_bindgen(\"./worker_bg.wasm\");";
        let loaded = load_compressed(worker, "worker_bg.wasm").unwrap();
        assert!(loaded.ends_with("wasm_bindgen(milihUnzip(\"./worker_bg.wasmz\"));"));
        assert_eq!(load_compressed(worker, "other_bg.wasm"), None);

        // The worker's loader starts the bundle downloads before its module;
        // the page's start script does not.
        let early = request_bundle_early(&loaded).unwrap();
        assert!(early.starts_with("// The model bundle downloads"));
        assert!(early.ends_with(&loaded));
        for name in std::iter::once(files::MANIFEST).chain(files::ALL) {
            assert!(early.contains(&format!("'{name}'")), "{name}");
        }
        assert!(early.contains("self.milihBundle = new Map("));
        assert!(early.contains("fetch(`model/${name}`, stored ? { cache: 'no-store' } : {})"));
        assert!(early.contains("location.search === '?keep-copies' && name !== 'manifest.json'"));
        assert_eq!(request_bundle_early(&early), None);
        assert_eq!(request_bundle_early(start), None);

        let html = "<head><link rel=\"modulepreload\" href=\"./m.js\"><link rel=\"preload\" href=\"./m_bg.wasm\" as=\"fetch\" type=\"application/wasm\"></head>";
        assert_eq!(
            drop_wasm_preload(html, "m_bg.wasm"),
            "<head><link rel=\"modulepreload\" href=\"./m.js\"></head>"
        );
        assert_eq!(drop_wasm_preload(html, "x_bg.wasm"), html);
    }

    #[test]
    fn compression_is_deterministic_and_lossless() {
        use std::io::Read;
        let module: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let packed = compress_wasm(&module);
        assert_eq!(packed, compress_wasm(&module));
        assert!(packed.len() < module.len() / 4);
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_end(&mut unpacked)
            .unwrap();
        assert_eq!(unpacked, module);
        assert_eq!(compressed_name("worker_bg.wasm"), "worker_bg.wasmz");
    }

    const TRUNK_HTML: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <link rel="stylesheet" href="./style-1.css" integrity="sha384-x"/>
<script type="module">
import init, * as bindings from './milih-web-1.js';
const wasm = await init({ module_or_path: './milih-web-1_bg.wasm' });
</script>
  <link rel="modulepreload" href="./milih-web-1.js"></head>
  <body></body>
</html>"#;

    #[test]
    fn the_start_script_moves_to_its_own_file_and_the_policy_is_added() {
        let (html, script) = externalize_start_script(TRUNK_HTML).unwrap();
        let (name, body) = script.unwrap();
        assert!(
            name.starts_with("start-") && name.ends_with(".js"),
            "{name}"
        );
        assert!(body.starts_with("import init, * as bindings from './milih-web-1.js';"));
        assert!(html.contains(&format!(
            "<script type=\"module\" src=\"./{name}\"></script>"
        )));
        assert_eq!(inline_script(&html), None);
        let html = insert_csp(&html).unwrap();
        assert!(html.contains("<head>\n    <meta http-equiv=\"Content-Security-Policy\""));
        assert!(html.contains("script-src 'self' 'wasm-unsafe-eval';"));
        // Finishing twice changes nothing.
        let (again, none) = externalize_start_script(&html).unwrap();
        assert_eq!(none, None);
        assert_eq!(insert_csp(&again).unwrap(), html);
    }

    #[test]
    fn pages_that_cannot_be_finished_say_why() {
        assert_eq!(insert_csp("<html></html>"), Err(SiteError::NoHead));
        assert!(matches!(
            externalize_start_script("<head><script type=\"module\">x"),
            Err(SiteError::UnclosedScript(_))
        ));
        let two = "<head><script type=\"module\">a</script><script>alert(1)</script>";
        assert!(matches!(
            externalize_start_script(two),
            Err(SiteError::InlineScript(_))
        ));
    }

    #[test]
    fn the_precache_version_follows_every_file_and_skips_the_service_worker() {
        let files = |model: &'static [u8]| {
            vec![
                ("model/model.gguf".to_owned(), model),
                ("index.html".to_owned(), b"<html>".as_slice()),
                (SERVICE_WORKER.to_owned(), b"changes every build".as_slice()),
            ]
        };
        let a = Precache::of(files(b"weights v1")).unwrap();
        let b = Precache::of(files(b"weights v2")).unwrap();
        assert_eq!(a.files.len(), 2);
        assert_eq!(a.files[0].path, "index.html");
        assert_eq!(a.total_bytes(), 16);
        assert_ne!(a.version, b.version);
        assert_eq!(a, Precache::of(files(b"weights v1")).unwrap());
        for bad in ["a b.js", "../x", "", "ü.js"] {
            assert_eq!(
                Precache::of([(bad.to_owned(), b"".as_slice())]),
                Err(SiteError::FileName(bad.to_owned()))
            );
        }
    }

    #[test]
    fn the_service_worker_receives_the_list_once_per_build() {
        let template = "'use strict';\nconst PRECACHE = null;\nself.x = 1;";
        let precache = Precache::of([("index.html".to_owned(), b"a".as_slice())]).unwrap();
        let sw = render_service_worker(template, &precache).unwrap();
        assert!(sw.contains(&format!("\"version\":\"{}\"", precache.version)));
        assert!(sw.ends_with("self.x = 1;\n"));
        // A finished service worker can be finished again for another build.
        let other = Precache::of([("index.html".to_owned(), b"b".as_slice())]).unwrap();
        let again = render_service_worker(&sw, &other).unwrap();
        assert!(again.contains(&other.version) && !again.contains(&precache.version));
        assert_eq!(
            render_service_worker("nothing", &precache),
            Err(SiteError::NoPrecacheLine)
        );
    }
}
