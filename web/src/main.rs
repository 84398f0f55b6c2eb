//! The wasm module's entry point: mount the page on `<body>`. The same module runs
//! in the JS library's Web Worker (`static/lib/worker.js`), which has no window and
//! only calls the exports of `web::library`.

fn main() {
    web::app::report_panics();
    if web_sys::window().is_some() {
        web::app::mount();
    }
}
