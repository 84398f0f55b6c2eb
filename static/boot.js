// Starts the wasm app. A file, not an inline script, so the page's
// Content-Security-Policy can forbid inline scripts altogether.
import init from './web.js';

init({ module_or_path: new URL('web_bg.wasm', import.meta.url) }).catch((e) => {
  const p = document.createElement('p');
  p.setAttribute('role', 'alert');
  p.textContent = 'The page could not start: ' + e;
  document.body.append(p);
});
