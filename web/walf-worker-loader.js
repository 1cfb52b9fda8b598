// The engine worker's first script (src/bin/walf-worker). It starts the engine's WebAssembly,
// then the downloads the page named in this script's address (`?early=URL`, repeated): those
// run while the WebAssembly compiles, which would otherwise leave the network idle for half a
// second, and the engine takes them from `self.walfEarly` (src/bin/walf-worker/net.rs) instead
// of downloading again. A download that fails here is simply made again there, where its
// failure is explained to the user.
importScripts('./walf-worker.js');
self.walfEarly = new Map();
wasm_bindgen('./walf-worker_bg.wasm');
for (const early of new URL(self.location.href).searchParams.getAll('early')) {
  const url = new URL(early, self.location.href).href;
  const whole = fetch(url)
    .then(async (response) => {
      if (!response.ok) return null;
      // Read here in one piece: the engine copies it into its memory at once.
      const body = await response.arrayBuffer();
      const headers = { 'content-length': String(body.byteLength) };
      return new Response(body, { status: response.status, headers });
    })
    .catch(() => null);
  self.walfEarly.set(url, whole);
}
