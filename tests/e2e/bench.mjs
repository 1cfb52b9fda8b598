// Performance of the web app, measured in Debian's headless Chromium (not a test: it prints
// figures). Usage: node tests/e2e/bench.mjs [DIST] (default dist/; build it with
// `trunk build --release` for the figures that count). Prints:
// - the size of each wasm and JavaScript file, raw and gzip -9 (what a server compressing
//   with gzip sends);
// - time from navigation to the first complete chart with the bundled model on the CPU backend,
//   in a fresh browser context each time (nothing cached), with the engine's own probe time;
// - probe time per distinct masked sentence on WebGPU and on the CPU backend in the same browser
//   (the bundled model on the CPU, and the tiny fixture BERT on both: without a GPU, WebGPU runs
//   on SwiftShader, far too slow for the bundled model), and the native `walf probe` on the same
//   machine as the reference.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { launch } from './chromium.mjs';
import { staticServer, hubServer } from './servers.mjs';
import { measurementCount, measurementAfter } from './measurements.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const DIST = resolve(process.argv[2] ?? join(ROOT, 'dist'));
const WALF = process.env.WALF_BIN ?? join(ROOT, 'target/release/walf');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TIMEOUT = 10 * 60_000;
const FIXTURE = join(ROOT, 'tests/fixtures/models/bert');

const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function sizes() {
  console.log(`## Bundle (${DIST})`);
  let wasmRaw = 0;
  let wasmGz = 0;
  for (const name of readdirSync(DIST).sort()) {
    if (!/\.(wasm|js)$/.test(name)) continue;
    const body = readFileSync(join(DIST, name));
    const gz = gzipSync(body, { level: 9 }).length;
    if (name.endsWith('.wasm')) {
      wasmRaw += body.length;
      wasmGz += gz;
    }
    console.log(`${name}: ${mb(body.length)} raw, ${mb(gz)} gzip`);
  }
  console.log(`all wasm: ${mb(wasmRaw)} raw, ${mb(wasmGz)} gzip (target 5 MB gzip)`);
}

// The timing line of the measurement after the first `after`.
async function probeTiming(page, after = 0) {
  await measurementAfter(page, after, TIMEOUT, 50);
  return page.$eval('#probe-timing', (t) => ({
    seconds: Number(t.dataset.seconds),
    sentences: Number(t.dataset.sentences),
  }));
}

// Measures again on the loaded model: the warm figure, without shader compilation or first use.
async function probeAgain(page) {
  const count = await measurementCount(page);
  await page.click('#run-probe');
  return probeTiming(page, count);
}

async function firstChart(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const started = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => document.querySelectorAll('#probe-chart .chart-row').length > 0,
    null, { timeout: TIMEOUT, polling: 20 });
  const chartSeconds = (Date.now() - started) / 1000;
  const probe = await probeTiming(page);
  const backend = await page.textContent('.backend');
  // The page's User Timing marks (ms after navigation start): where the time went.
  const marks = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType('mark')
    .filter((m) => m.name.startsWith('walf:'))
    .reverse()
    .map((m) => [m.name.slice(5), m.startTime / 1000])));
  // The engine worker's own marks, moved onto the page's timeline.
  const origin = await page.evaluate(() => performance.timeOrigin);
  const engine = page.workers().find((w) => w.url().includes('walf-worker'));
  const workerMarks = engine ? await engine.evaluate(() => ({
    origin: performance.timeOrigin,
    marks: performance.getEntriesByType('mark').map((m) => [m.name, m.startTime]),
    // The worker's downloads: when each began and when its last byte arrived.
    downloads: performance.getEntriesByType('resource')
      .map((r) => [r.name.split('/').pop().split('?')[0], r.startTime, r.responseEnd]),
  })) : { origin, marks: [], downloads: [] };
  const downloads = workerMarks.downloads.map(([name, start, end]) => [name,
    (workerMarks.origin + start - origin) / 1000, (workerMarks.origin + end - origin) / 1000]);
  const stages = workerMarks.marks
    .filter(([name]) => name.startsWith('walf-worker:'))
    .map(([name, at]) => [name.slice(12), (workerMarks.origin + at - origin) / 1000]);
  return { context, page, chartSeconds, probe, backend, marks, stages, downloads };
}

function nativeProbe(args) {
  const started = process.hrtime.bigint();
  execFileSync(WALF, ['probe', ...args, '--split', 'test', '--target', 'equal', '--json', join(mkdtempSync(join(tmpdir(), 'walf-')), 'p.json')]);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function main() {
  sizes();
  const app = await staticServer(DIST);
  const { browser, proc } = await launch();
  try {
    console.log('\n## Page load to the first chart, bundled model, CPU backend, test split');
    const loads = [];
    let cpuPage;
    for (let i = 0; i < RUNS; i++) {
      const run = await firstChart(browser, `${app.url}?backend=cpu`);
      loads.push(run.chartSeconds);
      console.log(`run ${i + 1}: first chart ${run.chartSeconds.toFixed(2)} s after navigation `
        + `(of which the probe ${run.probe.seconds.toFixed(2)} s, ${run.probe.sentences} sentences; ${run.backend.trim()})`);
      const m = run.marks;
      console.log(`  stages (s after navigation): page wasm running ${m['app-start']?.toFixed(2)}, `
        + `worker ready ${m['worker-ready']?.toFixed(2)}, model loaded ${m['model-loaded']?.toFixed(2)}, `
        + `probe answered ${m.probed?.toFixed(2)}`);
      console.log(`  engine worker: ${run.stages.map(([name, at]) => `${name} ${at.toFixed(2)}`).join(', ')}`);
      console.log(`  its downloads (from, to): ${run.downloads.map(([name, from, to]) => `${name} ${from.toFixed(2)}-${to.toFixed(2)}`).join(', ')}`);
      if (i === RUNS - 1) cpuPage = run;
      else await run.context.close();
    }
    console.log(`median ${median(loads).toFixed(2)} s (target 3 s)`);

    console.log('\n## Probe time per distinct masked sentence, same browser, warm (second probe)');
    const perSentence = (t) => (1000 * t.seconds) / t.sentences;
    const cpu = await probeAgain(cpuPage.page);
    console.log(`bundled minilm-brown, CPU backend: ${cpu.seconds.toFixed(2)} s = ${perSentence(cpu).toFixed(3)} ms/sentence`);
    if (existsSync(WALF) && statSync(WALF).isFile()) {
      const native = nativeProbe([]);
      console.log(`native walf probe (whole command, 2 threads): ${native.toFixed(2)} s = `
        + `${((1000 * native) / cpu.sentences).toFixed(3)} ms/sentence; browser CPU / native ${(cpu.seconds / native).toFixed(2)}`);
    }
    const hub = await hubServer({ 'fixtures/tiny-bert': { dir: FIXTURE } });
    try {
      const tiny = {};
      for (const backend of ['cpu', 'webgpu']) {
        const run = await firstChart(browser,
          `${app.url}?model=fixtures/tiny-bert&hub=${encodeURIComponent(hub.url)}&backend=${backend}&split=test`);
        tiny[backend] = await probeAgain(run.page);
        console.log(`tiny fixture BERT, ${run.backend.trim()}: first probe ${run.probe.seconds.toFixed(2)} s, `
          + `warm ${tiny[backend].seconds.toFixed(2)} s = ${perSentence(tiny[backend]).toFixed(3)} ms/sentence`);
        await run.context.close();
      }
      console.log(`tiny fixture BERT, WebGPU / CPU time ratio: ${(tiny.webgpu.seconds / tiny.cpu.seconds).toFixed(2)}`);
    } finally {
      hub.server.close();
    }
  } finally {
    await browser.close().catch(() => {});
    proc.kill();
    app.server.close();
  }
}

await main();
