#[cfg(target_arch = "wasm32")]
fn main() {
    milih_web::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the Milih worker runs in the browser: build it with `trunk build` (see README.md)");
}
