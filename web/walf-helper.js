// A helper of the engine worker (src/bin/walf-worker/pool.rs): it runs the engine's WebAssembly
// module, which the engine worker sends, already compiled, as its first message, so that a
// helper starts at once instead of downloading and compiling the module again.
importScripts('./walf-worker.js');
self.onmessage = (event) => {
  self.onmessage = null;
  wasm_bindgen({ module_or_path: event.data });
};
