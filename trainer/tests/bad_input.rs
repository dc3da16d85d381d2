//! The bad-input corpus (`tests/bad-input/cases.json`) through the trainer
//! CLI: every bad catalog, bundle and query ends in a non-zero exit with a
//! message naming the problem and the file, and nothing is written; the
//! inputs that are merely unusual load. The committed bundle in
//! `public/model` is the model these cases start from.

use milih_bundle::{files, FileEntry};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus() -> Value {
    let path = root().join("tests/bad-input/cases.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn trainer(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .output()
        .expect("running trainer")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fails with every case that went wrong, not just the first.
fn report(failures: Vec<String>, cases: usize) {
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Entries of `dir`, for checking that a failed command left nothing.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A CSV case's input: the file, with one field grown to `bytes` when the
/// case asks (a 5 MB field is generated, not committed).
fn csv_input(case: &Value, dir: &Path) -> PathBuf {
    let source = root()
        .join("tests/bad-input")
        .join(case["file"].as_str().unwrap());
    let Some(grow) = case.get("grow_field") else {
        return source;
    };
    let text = std::fs::read_to_string(&source).unwrap();
    let line = grow["line"].as_u64().unwrap() as usize;
    let column = grow["column"].as_u64().unwrap() as usize;
    let bytes = grow["bytes"].as_u64().unwrap() as usize;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let mut fields: Vec<String> = rows[line - 1].iter().map(str::to_owned).collect();
    let filler = "Aqua, Glycerin, ";
    fields[column - 1] = filler.repeat(bytes / filler.len() + 1)[..bytes].to_owned();
    rows[line - 1] = csv::StringRecord::from(fields);
    let path = dir.join("grown.csv");
    let mut writer = csv::Writer::from_path(&path).unwrap();
    for row in &rows {
        writer.write_record(row).unwrap();
    }
    writer.flush().unwrap();
    path
}

#[test]
fn bad_catalogs_are_refused_with_their_line_and_nothing_is_written() {
    let corpus = corpus();
    let cases = corpus["csv"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let input = csv_input(case, dir.path());
        let out = dir.path().join("bundle");
        let before = entries(dir.path());
        let output = trainer(&[
            "index".as_ref(),
            "--bundle".as_ref(),
            root().join("public/model").as_os_str(),
            "--catalog".as_ref(),
            input.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        let message = stderr(&output);
        if let Some(expected) = case["error"].as_str() {
            if output.status.success() {
                failures.push(format!("{name}: loaded, expected `{expected}`"));
            } else if !message.contains(expected) {
                failures.push(format!(
                    "{name}: said `{}`, expected `{expected}`",
                    message.trim()
                ));
            } else if !message.contains(&input.display().to_string()) {
                failures.push(format!(
                    "{name}: the message does not name the file: {message}"
                ));
            } else if message.contains("panicked") {
                failures.push(format!("{name}: panicked: {message}"));
            }
            if entries(dir.path()) != before {
                failures.push(format!(
                    "{name}: left files behind: {:?}",
                    entries(dir.path())
                ));
            }
        } else {
            let expected = case["products"].as_u64().unwrap() as usize;
            if !output.status.success() {
                failures.push(format!("{name}: refused: {}", message.trim()));
                continue;
            }
            match milih_trainer::export::load_bundle(&out) {
                Ok(bundle) if bundle.catalog.products.len() == expected => {}
                Ok(bundle) => failures.push(format!(
                    "{name}: {} products, expected {expected}",
                    bundle.catalog.products.len()
                )),
                Err(e) => failures.push(format!("{name}: the bundle written does not load: {e:#}")),
            }
        }
    }
    report(failures, cases.len());
}

/// Whether a bundle file is packed JSON ([`milih_bundle::pack`]).
fn is_packed(file: &Path) -> bool {
    file.extension().is_some_and(|e| e == "jsonz")
}

/// Sets `value` at `path` inside a JSON file (packed or not).
fn json_set(file: &Path, path: &[Value], value: &Value) {
    let bytes = std::fs::read(file).unwrap();
    let text = if is_packed(file) {
        milih_bundle::unpack("test", &bytes).unwrap()
    } else {
        bytes
    };
    let mut json: Value = serde_json::from_slice(&text).unwrap();
    // Keys are object keys or array indices.
    fn step<'a>(at: &'a mut Value, key: &Value) -> &'a mut Value {
        match key {
            Value::Number(index) => &mut at[index.as_u64().unwrap() as usize],
            key => &mut at[key.as_str().unwrap()],
        }
    }
    let mut at = &mut json;
    for key in &path[..path.len() - 1] {
        at = step(at, key);
    }
    *step(at, path.last().unwrap()) = value.clone();
    let text = serde_json::to_vec(&json).unwrap();
    let bytes = if is_packed(file) {
        milih_bundle::pack(&text)
    } else {
        text
    };
    std::fs::write(file, bytes).unwrap();
}

/// Breaks a copy of a bundle as a case says.
fn damage(bundle: &Path, case: &Value) {
    if let Some(t) = case.get("truncate") {
        let file = bundle.join(t["file"].as_str().unwrap());
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..t["keep"].as_u64().unwrap() as usize]).unwrap();
    }
    if let Some(f) = case.get("flip_byte") {
        let file = bundle.join(f["file"].as_str().unwrap());
        let mut bytes = std::fs::read(&file).unwrap();
        let at = (bytes.len() as f64 * f["at"].as_f64().unwrap()) as usize;
        bytes[at] ^= 0xff;
        std::fs::write(&file, bytes).unwrap();
    }
    if let Some(name) = case.get("delete") {
        std::fs::remove_file(bundle.join(name.as_str().unwrap())).unwrap();
    }
    if let Some(r) = case.get("replace") {
        let text = r["text"].as_str().unwrap().as_bytes();
        let bytes = if r["gzip"].as_bool() == Some(true) {
            milih_bundle::pack(text)
        } else {
            text.to_vec()
        };
        std::fs::write(bundle.join(r["file"].as_str().unwrap()), bytes).unwrap();
    }
    if let Some(j) = case.get("json_set") {
        json_set(
            &bundle.join(j["file"].as_str().unwrap()),
            j["path"].as_array().unwrap(),
            &j["value"],
        );
    }
    let changed = case
        .get("json_set")
        .or(case.get("replace"))
        .and_then(|c| c["file"].as_str());
    if let (Some(file), Some(true)) = (changed, case["resign"].as_bool()) {
        // A consistent manifest over the changed file: what a hostile
        // server could send. The checks behind the checksums must hold.
        let manifest_path = bundle.join(files::MANIFEST);
        let mut manifest: Value =
            serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
        let entry = FileEntry::describe(file, &std::fs::read(bundle.join(file)).unwrap());
        for listed in manifest["files"].as_array_mut().unwrap() {
            if listed["name"] == file {
                *listed = serde_json::to_value(&entry).unwrap();
            }
        }
        std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    }
}

fn copy_bundle(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(root().join("public/model")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn damaged_bundles_are_refused_naming_the_file() {
    let corpus = corpus();
    let cases = corpus["bundle"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let expected = case["error"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle");
        copy_bundle(&bundle);
        damage(&bundle, case);
        let lines = dir.path().join("queries.txt");
        std::fs::write(&lines, "moisturizer for dry skin\n").unwrap();
        let out = dir.path().join("out");
        let output = trainer(&[
            "embed".as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            "--lines".as_ref(),
            lines.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        let message = stderr(&output);
        if output.status.success() {
            failures.push(format!("{name}: loaded, expected `{expected}`"));
        } else if !message.contains(expected) || message.contains("panicked") {
            failures.push(format!(
                "{name}: said `{}`, expected `{expected}`",
                message.trim()
            ));
        }
        if entries(dir.path()) != ["bundle", "queries.txt"] {
            failures.push(format!("{name}: wrote {:?}", entries(dir.path())));
        }
    }
    report(failures, cases.len());
}

/// A query case's text.
fn query_text(case: &Value) -> String {
    match case.get("repeat") {
        Some(r) => {
            let unit = r["text"].as_str().unwrap();
            unit.chars()
                .cycle()
                .take(r["chars"].as_u64().unwrap() as usize)
                .collect()
        }
        None => case["text"].as_str().unwrap().to_owned(),
    }
}

#[test]
fn hostile_queries_embed_or_are_refused_clearly() {
    let corpus = corpus();
    let cases = corpus["query"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let lines = dir.path().join("queries.txt");
        std::fs::write(&lines, format!("{}\n", query_text(case))).unwrap();
        let out = dir.path().join("out");
        let output = trainer(&[
            "embed".as_ref(),
            "--bundle".as_ref(),
            root().join("public/model").as_os_str(),
            "--lines".as_ref(),
            lines.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        let message = stderr(&output);
        match case.get("cli_error").and_then(Value::as_str) {
            Some(expected) => {
                if output.status.success() || !message.contains(expected) {
                    failures.push(format!(
                        "{name}: said `{}`, expected `{expected}`",
                        message.trim()
                    ));
                }
                if !message.contains("line 1") {
                    failures.push(format!(
                        "{name}: the message does not name the line: {message}"
                    ));
                }
            }
            None => {
                if !output.status.success() {
                    failures.push(format!("{name}: refused: {}", message.trim()));
                    continue;
                }
                let jsonl = std::fs::read_to_string(out.with_extension("jsonl")).unwrap();
                let rows: Vec<Value> = jsonl
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                let embedding: Vec<f64> = rows[0]["embedding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                let norm = embedding.iter().map(|v| v * v).sum::<f64>().sqrt();
                if rows.len() != 1 || (norm - 1.0).abs() > 1e-3 {
                    failures.push(format!(
                        "{name}: {} rows, embedding norm {norm}",
                        rows.len()
                    ));
                }
            }
        }
    }
    report(failures, cases.len());
}
