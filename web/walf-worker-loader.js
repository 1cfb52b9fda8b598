// The engine worker's first script (src/bin/walf-worker). It starts the engine's WebAssembly,
// then the downloads the page named in this script's address (`?early=URL`, repeated): those
// run while the WebAssembly compiles, which would otherwise leave the network idle for half a
// second, and the engine takes them from `self.walfEarly` (src/bin/walf-worker/net.rs) instead
// of downloading again. A download that fails here is simply made again there, where its
// failure is explained to the user.
//
// When the page named such downloads (the bundled model, which runs on the CPU backend), the
// helpers that share its probes (src/bin/walf-worker/pool.rs) start here too: a worker takes a
// fifth of a second to start on a busy machine, and they would otherwise start only once the
// WebAssembly runs. The engine takes them over from `self.walfHelpers` and sends them the
// module, or ends them when the GPU runs the model. As many as pool.rs's `helper_count`.
importScripts('./walf-worker.js');
// Every GPU device the engine opens, so that a test can take it away as a driver reset or an
// unplugged GPU would (GPUDevice.destroy(), tests/e2e): nothing else reads it.
self.walfDevices = [];
if (typeof GPUAdapter === 'function' && GPUAdapter.prototype.requestDevice) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function requestAndKeep(...args) {
    const device = await requestDevice.apply(this, args);
    self.walfDevices.push(device);
    return device;
  };
}
self.walfEarly = new Map();
self.walfHelpers = [];
wasm_bindgen('./walf-worker_bg.wasm');
const earlyFiles = new URL(self.location.href).searchParams.getAll('early');
for (const early of earlyFiles) {
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
if (earlyFiles.length > 0 && typeof Worker === 'function') {
  const helpers = Math.min(Math.max((navigator.hardwareConcurrency || 1) - 1, 0), 3);
  for (let i = 0; i < helpers; i++) {
    let helper;
    try {
      helper = new Worker('./walf-helper.js', { name: 'walf-helper' });
    } catch {
      break;
    }
    // A helper failing before the engine takes it over (which sets its own handler) is simply
    // left out; unhandled, its error would reach the page as the engine's.
    helper.onerror = (event) => {
      event.preventDefault();
      helper.terminate();
      const at = self.walfHelpers.indexOf(helper);
      if (at >= 0) self.walfHelpers.splice(at, 1);
    };
    self.walfHelpers.push(helper);
  }
}
