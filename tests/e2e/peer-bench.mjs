// walf-lab's probe against transformers.js (onnxruntime-web, WASM backend) in the same headless
// Chromium, on the same weights and the same distinct masked sentences (not a test: it prints
// figures). Usage:
//   node tests/e2e/peer-bench.mjs [DIST] [MODEL_DIR ...]
// DIST: the built app (default dist/; `trunk build --release` for the figures that count).
// Models: the bundled minilm-brown and a random model of bert-base's shape by default
// (target/bench-models/bert-base, made by tests/reference/make_random_model.py). Each is exported
// by tests/reference/export_peer.py into target/peer-models/ (Python with
// tests/reference/requirements.txt plus onnx; $PYTHON, default python3), and the peer package is
// installed under tests/e2e/peer/ when missing.
//
// Every page is served cross-origin isolated (COOP/COEP), so that onnxruntime-web may use
// threads; it runs with one thread and with as many as the browser reports cores. walf-lab runs
// its CPU backend with its helper workers, and WebGPU where the browser's adapter is not a
// software fallback. Per model it prints ms per distinct sentence of each, warm (the second
// pass on the loaded model), and the peer's time over walf-lab's. The peer's log-probs are
// checked against PyTorch's (export_peer.py) before its figures are printed.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, extname, join, normalize, resolve } from 'node:path';
import { launch } from './chromium.mjs';
import { measurementCount, measurementAfter } from './measurements.mjs';
import { hubServer } from './servers.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const PEER = join(ROOT, 'tests/e2e/peer');
const PYTHON = process.env.PYTHON ?? 'python3';
const TIMEOUT = 30 * 60_000;
const BATCH = Number(process.env.PEER_BATCH ?? 32);
const args = process.argv.slice(2);
const DIST = resolve(args[0] ?? join(ROOT, 'dist'));
const BUNDLED = join(ROOT, 'public/models/minilm-brown');
const BERT_BASE = join(ROOT, 'target/bench-models/bert-base');
const MODELS = args.length > 1 ? args.slice(1).map((d) => resolve(d)) : [BUNDLED, BERT_BASE];

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.css': 'text/css', '.json': 'application/json',
  '.tsv': 'text/tab-separated-values', '.txt': 'text/plain; charset=utf-8',
};

function run(cmd, argv) {
  execFileSync(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
}

function prepare() {
  if (!existsSync(join(PEER, 'node_modules/@huggingface/transformers/dist/transformers.min.js'))) {
    run('npm', ['install', '--silent', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', PEER]);
  }
  if (MODELS.includes(BERT_BASE) && !existsSync(join(BERT_BASE, 'model.safetensors'))) {
    run(PYTHON, ['tests/reference/make_random_model.py', '--arch', 'bert-base', '--out', BERT_BASE]);
  }
  return MODELS.map((dir) => {
    const out = join(ROOT, 'target/peer-models', basename(dir));
    const weights = join(dir, 'model.safetensors');
    const onnx = join(out, 'onnx/model.onnx');
    if (!existsSync(onnx) || statSync(onnx).mtimeMs < statSync(weights).mtimeMs) {
      run(PYTHON, ['tests/reference/export_peer.py', '--model', dir, '--out', out]);
    }
    return { dir, name: basename(dir), out };
  });
}

// The app at /, the peer page at /peer/, its packages at /tjs/ and /ort/, the exports at /peer-models/ (the app's own models are at /models/).
async function server() {
  const mounts = [
    ['/peer/', PEER],
    ['/tjs/', join(PEER, 'node_modules/@huggingface/transformers/dist')],
    ['/ort/', join(PEER, 'node_modules/onnxruntime-web/dist')],
    ['/peer-models/', join(ROOT, 'target/peer-models')],
    ['/', DIST],
  ];
  const srv = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const [prefix, root] = mounts.find(([p]) => path.startsWith(p));
    let file = normalize(join(root, path.slice(prefix.length)));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    if (path.endsWith('/')) file = join(file, 'index.html');
    try {
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'content-length': body.length,
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  return { srv, url: `http://127.0.0.1:${srv.address().port}/` };
}

// The timing line of the measurement after the first `after`.
async function probeTiming(page, after = 0) {
  await measurementAfter(page, after, TIMEOUT);
  return page.$eval('#probe-timing', (t) => ({ seconds: Number(t.dataset.seconds), sentences: Number(t.dataset.sentences) }));
}

// walf-lab's page on `backend`: the first probe, then a second on the loaded model.
// A page's errors, printed as they come: a benchmark that waits on a broken page says why.
function watch(page, name) {
  page.on('pageerror', (e) => console.error(`${name}: ${e}`));
  page.on('console', (m) => { if (m.type() === 'error') console.error(`${name}: ${m.text()}`); });
}

async function walfProbe(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  watch(page, 'walf-lab');
  try {
    await page.goto(url);
    const first = await probeTiming(page);
    const backend = (await page.textContent('.backend')).trim();
    const count = await measurementCount(page);
    await page.click('#run-probe');
    const warm = await probeTiming(page, count);
    const isolated = await page.evaluate(() => self.crossOriginIsolated);
    return { first, warm, backend, isolated };
  } finally {
    await context.close();
  }
}

async function peerProbe(browser, url, model, threads) {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    watch(page, 'transformers.js');
    await page.goto(`${url}peer/`);
    await page.waitForFunction(() => window.peerReady, null, { timeout: TIMEOUT });
    return await page.evaluate((o) => window.peerProbe(o), { model, threads, batch: BATCH });
  } finally {
    await context.close();
  }
}

async function hardwareWebgpu(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${url}peer/`);
    return await page.evaluate(async () => {
      const adapter = await navigator.gpu?.requestAdapter();
      if (!adapter) return { offered: false, why: 'no WebGPU adapter' };
      const fallback = adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
      const name = [adapter.info?.vendor, adapter.info?.architecture].filter(Boolean).join(' ');
      return { offered: !fallback, why: fallback ? `only a software fallback adapter (${name})` : name };
    });
  } finally {
    await context.close();
  }
}

const ms = (seconds, n) => (1000 * seconds) / n;

async function main() {
  const models = prepare();
  const app = await server();
  const { browser, proc } = await launch();
  try {
    const cores = await (async () => {
      const c = await browser.newContext();
      const p = await c.newPage();
      await p.goto(`${app.url}peer/`);
      const n = await p.evaluate(() => navigator.hardwareConcurrency);
      await c.close();
      return n;
    })();
    const gpu = await hardwareWebgpu(browser, app.url);
    console.log(`## walf-lab against transformers.js ${JSON.parse(readFileSync(join(PEER, 'node_modules/@huggingface/transformers/package.json'))).version} `
      + `(onnxruntime-web ${JSON.parse(readFileSync(join(PEER, 'node_modules/onnxruntime-web/package.json'))).version}, WASM), `
      + `${cores} cores, batch ${BATCH} for the peer; WebGPU: ${gpu.offered ? gpu.why : `not timed, ${gpu.why}`}`);
    for (const m of models) {
      const data = JSON.parse(readFileSync(join(m.out, 'sentences.json')));
      console.log(`\n### ${m.name}, ${data.split} split: ${data.sentences.length} distinct masked sentences (of ${data.paper_sentences})`);
      const hub = await hubServer({ [`peer/${m.name}`]: { dir: m.dir } });
      const walf = {};
      try {
        for (const backend of gpu.offered ? ['cpu', 'webgpu'] : ['cpu']) {
          const url = m.dir === BUNDLED
            ? `${app.url}?backend=${backend}&split=${data.split}`
            : `${app.url}?model=peer/${m.name}&hub=${encodeURIComponent(hub.url)}&backend=${backend}&split=${data.split}`;
          const r = await walfProbe(browser, url);
          if (r.warm.sentences !== data.sentences.length) {
            throw new Error(`walf-lab ran ${r.warm.sentences} sentences, the export has ${data.sentences.length}`);
          }
          walf[backend] = r;
          console.log(`walf-lab, ${r.backend}: first probe ${r.first.seconds.toFixed(2)} s, warm ${r.warm.seconds.toFixed(2)} s `
            + `= ${ms(r.warm.seconds, r.warm.sentences).toFixed(2)} ms/sentence (cross-origin isolated: ${r.isolated})`);
        }
      } finally {
        hub.server.close();
      }
      for (const threads of [...new Set([1, cores])]) {
        const p = await peerProbe(browser, app.url, m.name, threads);
        if (!(p.largestDifference < 1e-3)) {
          throw new Error(`transformers.js's log-probs differ from PyTorch's by ${p.largestDifference}`);
        }
        const best = Math.min(...Object.values(walf).map((r) => r.warm.seconds));
        console.log(`transformers.js, WASM, ${threads} thread${threads > 1 ? 's' : ''}: load ${p.loadSeconds.toFixed(2)} s, `
          + `first pass ${p.coldSeconds.toFixed(2)} s, warm ${p.warmSeconds.toFixed(2)} s = ${ms(p.warmSeconds, p.sentences).toFixed(2)} ms/sentence `
          + `(its forward passes alone ${p.warmModelSeconds.toFixed(2)} s); `
          + `largest |Δ log-prob| vs PyTorch ${p.largestDifference.toExponential(2)}; `
          + `transformers.js / walf-lab ${(p.warmSeconds / best).toFixed(2)}× (cross-origin isolated: ${p.crossOriginIsolated})`);
      }
    }
  } finally {
    await browser.close().catch(() => {});
    proc.kill();
    app.srv.close();
  }
}

await main();
