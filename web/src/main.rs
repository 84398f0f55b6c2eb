//! The page module's entry point (`cargo xtask build-web`): mount the page on `<body>`.

fn main() {
    web::app::mount();
}
