//! Entry point trunk builds: mount the page on `<body>`.

fn main() {
    web::app::mount();
}
