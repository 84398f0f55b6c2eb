//! The browser side: picking a device (WebGPU, else flex on wasm) and running the
//! classifier with asynchronous read-back, which WebGPU requires.

pub mod engine;
