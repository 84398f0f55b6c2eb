// Which build of the page's module this browser can run, for boot.js (imported) and
// sw.js (importScripts). Two builds ship: one whose CPU engine uses relaxed SIMD's
// fused multiply-add (about 1.2x faster matrix products), and plain simd128 for
// browsers without relaxed SIMD, which would refuse that whole module. The probe is
// the smallest module using `f32x4.relaxed_madd`.
globalThis.bertSentimentWasmDir = WebAssembly.validate(new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, // type: (v128 v128 v128) -> v128
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b, // madd(a, b, c)
])) ? './relaxed/' : './';
