#[cfg(target_arch = "wasm32")]
fn main() {
    milih_web::app::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("milih-web runs in the browser: build it with `trunk build` (see README.md)");
}
