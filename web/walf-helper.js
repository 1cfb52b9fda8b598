// A helper of the engine worker (src/bin/walf-worker/pool.rs): it runs the engine's WebAssembly
// module, which the engine worker sends, already compiled, as its first message, so that a
// helper starts at once instead of downloading and compiling the module again. Messages that
// arrive while the module starts (the weights, the first batches) wait in `walfPending`, which
// the helper takes in, in order, as soon as it runs.
importScripts('./walf-worker.js');
self.walfPending = [];
self.onmessage = (event) => {
  self.onmessage = (later) => self.walfPending.push(later.data);
  wasm_bindgen({ module_or_path: event.data });
};
