// WebGPU calls per probe batch and per WALF step in Debian's headless Chromium (not a test: it
// prints figures). Usage: node tests/e2e/gpu-calls.mjs [DIST] [STEPS] (default dist/, 3 steps).
//
// A prefix to the engine worker's first script wraps, in that worker only, GPUQueue.submit
// (submissions), GPUComputePassEncoder.dispatchWorkgroups (kernel launches) and
// GPUBuffer.mapAsync (read-backs from the GPU), and counts them; the page runs the tiny fixture
// BERT on WebGPU (here SwiftShader, which counts the same calls as a graphics card would get).
// Counted: one warm probe of the test split (per batch of 64 sentences, as the engine batches
// them), then STEPS WALF steps of each target, dropout off, the real-world one with the classroom
// preset (per step, the first one left out: it compiles the kernels and sets the optimizer up).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { launch } from './chromium.mjs';
import { staticServer, hubServer } from './servers.mjs';
import { measurementCount, measurementAfter } from './measurements.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const DIST = resolve(process.argv[2] ?? join(ROOT, 'dist'));
const STEPS = Number(process.argv[3] ?? 3);
const TIMEOUT = 20 * 60_000;
const FIXTURE = join(ROOT, 'tests/fixtures/models/bert');

const COUNTER = `
self.walfGpuCalls = { submit: 0, dispatch: 0, readBack: 0 };
for (const [type, method, key] of [
  [self.GPUQueue, 'submit', 'submit'],
  [self.GPUComputePassEncoder, 'dispatchWorkgroups', 'dispatch'],
  [self.GPUBuffer, 'mapAsync', 'readBack'],
]) {
  if (typeof type !== 'function') continue;
  const original = type.prototype[method];
  type.prototype[method] = function counted(...args) {
    self.walfGpuCalls[key] += 1;
    return original.apply(this, args);
  };
}
// The counts as each step's and each probe's reply leaves the worker: exact boundaries, where the
// page would see them a little later, when the next step may have begun.
self.walfGpuMarks = [];
const post = self.postMessage.bind(self);
self.postMessage = function marked(message, transfer) {
  const text = Array.isArray(message) ? message[0] : message;
  const kind = typeof text === 'string' ? /"kind":"(tune_step|probed)"/.exec(text)?.[1] : undefined;
  if (kind) self.walfGpuMarks.push({ kind, ...self.walfGpuCalls });
  return post(message, transfer);
};
`;

async function counts(worker) {
  return worker.evaluate(() => ({ ...self.walfGpuCalls }));
}

async function marks(worker, kind) {
  return worker.evaluate((kind) => self.walfGpuMarks.filter((m) => m.kind === kind)
    .map(({ submit, dispatch, readBack }) => ({ submit, dispatch, readBack })), kind);
}

function perUnit(before, after, n) {
  return Object.fromEntries(Object.keys(after).map((k) => [k, ((after[k] - before[k]) / n).toFixed(1)]));
}

const chrome = await launch();
const loader = readFileSync(join(DIST, 'walf-worker-loader.js'), 'utf8');
const app = await staticServer(DIST, { '/walf-worker-loader.js': `${COUNTER}\n${loader}` });
const hub = await hubServer({ 'fixtures/tiny-bert': { dir: FIXTURE } });
try {
  const page = await chrome.context.newPage();
  await page.goto(`${app.url}?model=fixtures/tiny-bert&hub=${encodeURIComponent(hub.url)}&backend=webgpu&split=test`);
  await page.waitForFunction(() => document.querySelectorAll('#probe-chart .chart-row').length === 45,
    null, { timeout: TIMEOUT, polling: 200 });
  const worker = page.workers().find((w) => w.url().includes('walf-worker-loader'));
  if (!worker) throw new Error('the engine worker was not found');
  console.log(`backend: ${await page.textContent('.backend')}`);

  // a warm probe of the test split
  const measured = await measurementCount(page);
  const beforeProbe = await counts(worker);
  await page.click('#run-probe');
  await measurementAfter(page, measured, TIMEOUT);
  const afterProbe = (await marks(worker, 'probed')).at(-1);
  const sentences = Number(await page.$eval('#probe-timing', (t) => t.dataset.sentences));
  const batches = Math.ceil(sentences / 64);
  console.log(`probe of the test split, ${sentences} sentences in ${batches} batches; per batch: ${JSON.stringify(perUnit(beforeProbe, afterProbe, batches))}`);

  for (const target of ['equal', 'real-world']) {
    await page.click('button[role=tab]:has-text("Tune")');
    await page.selectOption('section[aria-label=Tune] select.target', target);
    // the real-world target as the page offers it to a class: one masked position per sentence
    if (target === 'real-world') await page.click('#tune-preset-classroom');
    await page.fill('#tune-steps', String(STEPS + 1));
    await page.dispatchEvent('#tune-steps', 'change');
    await page.uncheck('#tune-dropout');
    const earlier = (await marks(worker, 'tune_step')).length;
    await page.click('#tune-start');
    await page.waitForFunction(() => /step limit/.test(document.querySelector('#tune-status')?.textContent ?? ''),
      null, { timeout: TIMEOUT, polling: 200 });
    // from the end of the run's first step to the end of its last
    const steps = (await marks(worker, 'tune_step')).slice(earlier);
    const [first, last] = [steps[0], steps.at(-1)];
    const settings = target === 'equal' ? 'the paper\'s settings, dropout off' : 'the classroom preset';
    console.log(`WALF ${target}, ${settings}; per step: ${JSON.stringify(perUnit(first, last, STEPS))}`);
    // the run's end measures the tuned model: let it finish before the next run
    await page.waitForFunction(() => !document.querySelector('.job-what'), null, { timeout: TIMEOUT, polling: 200 });
  }
} finally {
  app.server.close();
  hub.server.close();
  await chrome.browser.close().catch(() => {});
  chrome.proc.kill();
}
