// Fetching and compiling WebAssembly, shared by the page's boot.js (the page's module,
// which the library's worker reuses) and the library's worker (the bundle, its
// threaded module).

/** `fetch(url, init)`, rejecting with the URL and the HTTP status when it fails
 * (`init`: e.g. `{ cache: 'no-cache' }` for a manifest, so a new model is seen at once). */
export async function fetchOk(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    throw new Error(`${url}: network error (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  return response;
}

/** The WebAssembly module at `url`, compiled as it downloads. */
export async function compileWasm(url) {
  const response = await fetchOk(url);
  try {
    return await WebAssembly.compileStreaming(response.clone());
  } catch {
    // A host that does not say `application/wasm`.
    return WebAssembly.compile(await response.arrayBuffer());
  }
}
