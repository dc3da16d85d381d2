//! The trainer CLI under `kill -9`: a fine-tune run killed mid-training and
//! resumed ends with the same weights and metrics as an uninterrupted run
//! with the same seed, and the same seed and data give byte-identical
//! bundles. Tiny BERT built in code, real processes, real SIGKILL.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EPOCHS: &str = "6";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every 7th product of the Sephora catalog, as a CSV of its own.
fn write_catalog(path: &Path) -> Vec<String> {
    let mut reader = csv::Reader::from_path(root().join("data/cosmetics.csv")).unwrap();
    let mut writer = csv::Writer::from_path(path).unwrap();
    writer.write_record(reader.headers().unwrap()).unwrap();
    let mut texts = Vec::new();
    for record in reader.records().step_by(7).take(40) {
        let record = record.unwrap();
        texts.push(record.iter().collect::<Vec<_>>().join(" "));
        writer.write_record(&record).unwrap();
    }
    writer.flush().unwrap();
    texts
}

fn train_command(base: &Path, catalog: &Path, out: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trainer"));
    command.args(["train", "--recipe", "fine-tune", "--epochs", EPOCHS]);
    command.args([
        "--batch-size",
        "8",
        "--max-length",
        "48",
        "--max-windows",
        "1",
    ]);
    command.args(["--lexical-features", "0", "--ingredient-functions", "false"]);
    command.args(["--embedding-dim", "16"]);
    command.args(["--lr", "1e-3", "--head-lr", "1e-2", "--seed", "11"]);
    command
        .arg("--base")
        .arg(base)
        .arg("--catalog")
        .arg(catalog)
        .arg("--out")
        .arg(out);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    command
}

fn run(mut command: Command) {
    let status = command.status().unwrap();
    assert!(status.success(), "{command:?} failed");
}

fn export(run_dir: &Path, catalog: &Path, out: &Path) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trainer"));
    command
        .arg("export")
        .arg("--run")
        .arg(run_dir)
        .arg("--catalog")
        .arg(catalog)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null());
    run(command);
}

fn final_metrics(run_dir: &Path) -> serde_json::Value {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("metrics.json")).unwrap()).unwrap();
    let history = report["history"].as_array().unwrap();
    let last = history.last().unwrap();
    serde_json::json!({
        "epochs": history.len(),
        "steps": last["steps"],
        "classification_loss": last["classification_loss"],
        "contrastive_loss": last["contrastive_loss"],
        "held_out": last["held_out"],
    })
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_the_same_result_and_bundles_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = tmp.path().join("catalog.csv");
    let texts = write_catalog(&catalog);
    let base = tmp.path().join("base");
    common::write_tiny_base(&base, &texts);

    let full = tmp.path().join("full");
    run(train_command(&base, &catalog, &full));

    // Kill as soon as the first checkpoint is in place: mid-run, possibly
    // mid-write of the next one.
    let cut = tmp.path().join("cut");
    let mut child = train_command(&base, &catalog, &cut).spawn().unwrap();
    let first = cut.join("checkpoints").join("epoch-001");
    let started = Instant::now();
    while !first.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint was seen"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished before it could be killed: make it longer"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !cut.join("metrics.json").exists(),
        "the run was killed before it finished"
    );

    let mut resume = train_command(&base, &catalog, &cut);
    resume.arg("--resume");
    run(resume);
    assert_eq!(final_metrics(&cut), final_metrics(&full));
    assert_eq!(
        std::fs::read(cut.join("model.safetensors")).unwrap(),
        std::fs::read(full.join("model.safetensors")).unwrap(),
        "resumed weights differ"
    );

    // Same seed and data, trained and exported twice: the same bytes.
    let again = tmp.path().join("again");
    run(train_command(&base, &catalog, &again));
    let (bundle_a, bundle_b) = (tmp.path().join("bundle-a"), tmp.path().join("bundle-b"));
    export(&full, &catalog, &bundle_a);
    export(&again, &catalog, &bundle_b);
    let mut names: Vec<String> = std::fs::read_dir(&bundle_a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    for name in &names {
        assert_eq!(
            std::fs::read(bundle_a.join(name)).unwrap(),
            std::fs::read(bundle_b.join(name)).unwrap(),
            "{name} differs between two runs with the same seed"
        );
    }
}
