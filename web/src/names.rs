//! Names that the Rust and the JavaScript sides of the site must spell the
//! same way: caches, scripts and the messages between the page and the
//! service worker. The JavaScript files cannot import them, so a test reads
//! `web/sw.js` and `web/boot.js` and fails when either drifts.

/// The Cache Storage cache the model worker streams bundle files into as
/// they download on a first visit, until they have passed their checks and
/// the service worker has named its own cache (streaming keeps no second
/// copy in memory; `web/sw.js` leaves it alone).
pub const INCOMING_CACHE: &str = "milih-incoming";

/// The script that starts the model worker (written by trunk; `web/boot.js`
/// starts it early on a first visit).
pub const WORKER_LOADER: &str = "./worker_loader.js";

/// The same worker built with relaxed SIMD kernels (twice the int8
/// products per instruction), started where the engine validates
/// [`RELAXED_SIMD_PROBE`]; a module that holds relaxed instructions fails
/// to load anywhere else.
pub const RELAXED_WORKER_LOADER: &str = "./worker-relaxed_loader.js";

/// The smallest module with a relaxed SIMD instruction: one function that
/// returns `i32x4.relaxed_dot_i8x16_i7x16_add_s` of three splatted zeros.
pub const RELAXED_SIMD_PROBE: [u8; 40] = [
    0, 97, 115, 109, 1, 0, 0, 0, // magic, version
    1, 5, 1, 96, 0, 1, 123, // types: () -> v128
    3, 2, 1, 0, // one function of that type
    10, 19, 1, 17, 0, // code: one body, no locals
    65, 0, 253, 15, 65, 0, 253, 15, 65, 0, 253, 15, // 3 × i8x16.splat(0)
    253, 147, 2, 11, // the relaxed dot product; end
];

/// The query parameter and value that start the plain SIMD worker even
/// where relaxed SIMD validates (to compare or test both builds).
pub const PLAIN_SIMD: (&str, &str) = ("simd", "plain");

/// Messages from the service worker to its pages (`kind` field).
pub mod from_service_worker {
    /// A new version is installing; `first` says whether it is the first.
    pub const INSTALLING: &str = "sw-installing";
    /// The new version could not be installed.
    pub const FAILED: &str = "sw-failed";
    /// The service worker took control; `controlled` says of this page.
    pub const CLAIMED: &str = "claimed";
    /// The model files were downloaded again (`ok`, `message`).
    pub const REFETCHED: &str = "refetched";
}

/// Messages from a page to the service worker (`kind` field).
pub mod to_service_worker {
    /// Use the waiting version now.
    pub const ACTIVATE: &str = "activate";
    /// Take control of the open pages.
    pub const CLAIM: &str = "claim";
    /// Download the model files again and check them.
    pub const REFETCH: &str = "refetch";
}

#[cfg(test)]
mod tests {
    use super::*;
    use milih_bundle::files::KEEP_COPIES;

    const SERVICE_WORKER: &str = include_str!("../sw.js");
    const BOOT: &str = include_str!("../boot.js");

    #[test]
    fn the_service_worker_spells_the_shared_names_alike() {
        assert!(SERVICE_WORKER.contains(&format!("const INCOMING = '{INCOMING_CACHE}';")));
        for kind in [
            from_service_worker::INSTALLING,
            from_service_worker::FAILED,
            from_service_worker::CLAIMED,
            from_service_worker::REFETCHED,
        ] {
            assert!(
                SERVICE_WORKER.contains(&format!("kind: '{kind}'")),
                "sw.js never sends {kind}"
            );
        }
        for kind in [
            to_service_worker::ACTIVATE,
            to_service_worker::CLAIM,
            to_service_worker::REFETCH,
        ] {
            assert!(
                SERVICE_WORKER.contains(&format!("kind === '{kind}'")),
                "sw.js never handles {kind}"
            );
        }
    }

    #[test]
    fn the_boot_script_starts_the_same_worker_loaders() {
        assert!(BOOT.contains(&format!("`${{loader}}{KEEP_COPIES}`")));
        assert!(BOOT.contains(&format!("'{WORKER_LOADER}'")));
        assert!(BOOT.contains(&format!("'{RELAXED_WORKER_LOADER}'")));
        let (key, value) = PLAIN_SIMD;
        assert!(BOOT.contains(&format!("get('{key}') !== '{value}'")));
    }

    #[test]
    fn the_scripts_probe_relaxed_simd_with_the_same_module() {
        let bytes: Vec<String> = RELAXED_SIMD_PROBE.iter().map(u8::to_string).collect();
        let probe = format!("[{}]", bytes.join(","));
        assert!(BOOT.contains(&probe), "boot.js probes another module");
        assert!(
            SERVICE_WORKER.contains(&probe),
            "sw.js probes another module"
        );
        // The worker files each build names, as the service worker tells
        // them apart.
        let stem = |loader: &str| loader.trim_start_matches("./").replace("_loader.js", "");
        assert_eq!(stem(WORKER_LOADER), "worker");
        assert_eq!(stem(RELAXED_WORKER_LOADER), "worker-relaxed");
        assert!(
            SERVICE_WORKER.contains("/^worker[._]/.test(path) : path.startsWith('worker-relaxed')")
        );
    }
}
