// Starts the wasm app. A file, not an inline script, so the page's
// Content-Security-Policy can forbid inline scripts altogether.

import './wasm-features.js';

// The relaxed-SIMD build where the browser has it; the plain one if that is missing too
// (a build without `relaxed/` has only the plain one).
let dir = globalThis.bertSentimentWasmDir;
let init;
try {
  ({ default: init } = await import(`${dir}web.js`));
} catch (e) {
  if (dir === './') throw e;
  dir = './';
  ({ default: init } = await import('./web.js'));
}

// Watch for a lost WebGPU device (driver reset, GPU process crash, device.destroy()):
// the page checks `bertSentimentGpu.lost` before each WebGPU run and moves to the
// CPU engine instead of calling into a dead device.
globalThis.bertSentimentGpu = { lost: null };
if (globalThis.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    device.lost.then((info) => {
      globalThis.bertSentimentGpu.lost = `${info.reason || 'unknown'}: ${info.message || 'device lost'}`;
    });
    return device;
  };
}

init({ module_or_path: new URL(`${dir}web_bg.wasm`, import.meta.url) }).catch((e) => {
  const p = document.createElement('p');
  p.setAttribute('role', 'alert');
  p.textContent = 'The page could not start: ' + e;
  document.body.append(p);
});
