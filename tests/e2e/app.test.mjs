// End-to-end tests of the web app in Debian's headless Chromium, driven by playwright-core over
// the DevTools protocol. Needs: dist/ (trunk build), the native `walf` binary (WALF_BIN) for
// reference numbers, and chromium. Run by scripts/e2e.sh.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { launch } from './chromium.mjs';
import { staticServer, hubServer } from './servers.mjs';
import { measurementCount, measurementAfter } from './measurements.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const DIST = process.env.WALF_DIST ?? join(ROOT, 'dist');
const WALF = process.env.WALF_BIN ?? join(ROOT, 'target/debug/walf');
const ARTIFACTS = join(ROOT, 'tests/e2e/artifacts');
const FIXTURE = join(ROOT, 'tests/fixtures/models/bert');
// A test may take this long in all; any one wait in it far less, so that a wait that never ends
// fails naming what it waited for (and its line) instead of the whole test timing out.
const TEST_LIMIT = 15 * 60_000;
const LONG = 5 * 60_000;

mkdirSync(ARTIFACTS, { recursive: true });

function walf(args) {
  return execFileSync(WALF, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
}

function nativeProbeJson(args) {
  const dir = mkdtempSync(join(tmpdir(), 'walf-probe-'));
  walf(['probe', ...args, '--json', join(dir, 'probe.json')]);
  return JSON.parse(readFileSync(join(dir, 'probe.json'), 'utf8'));
}

function nativeProbe(args) {
  const json = nativeProbeJson(args);
  return new Map(json.professions.map((p) => [p.profession, p.p_female]));
}

async function chartValues(page, attr = 'data-p-female') {
  return new Map(await page.$$eval(`#probe-chart .chart-row`, (rows, a) =>
    rows.map((r) => [r.getAttribute('data-profession'), Number(r.getAttribute(a))]), attr));
}

function assertClose(got, want, tol, what) {
  assert.equal(got.size, want.size, `${what}: ${got.size} professions shown, ${want.size} expected`);
  let worst = 0;
  for (const [name, w] of want) {
    assert.ok(got.has(name), `${what}: ${name} missing`);
    worst = Math.max(worst, Math.abs(got.get(name) - w));
  }
  assert.ok(worst <= tol, `${what}: largest difference ${worst} > ${tol}`);
  return worst;
}

async function waitForRows(page, n) {
  await page.waitForFunction((n) => document.querySelectorAll('#probe-chart .chart-row').length === n,
    n, { timeout: LONG, polling: 500 });
}

// The first `n` step losses of `walf tune` on the fixture towards the equal target, dropout off.
function nativeSteps(n) {
  const dir = mkdtempSync(join(tmpdir(), 'walf-tune-'));
  walf(['tune', '--model', FIXTURE, '--target', 'equal', '--out', dir, '--max-epochs', '1', '--no-dropout']);
  return readFileSync(join(dir, 'training.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l)).filter((r) => r.step).slice(0, n).map((r) => r.step.total_loss);
}

// `n` WALF steps in the page (its defaults, dropout off), run to the step limit: their losses.
async function pageSteps(page, n) {
  await page.click('button[role=tab]:has-text("Tune")');
  await page.fill('#tune-steps', String(n));
  await page.dispatchEvent('#tune-steps', 'change');
  await page.uncheck('#tune-dropout');
  await page.click('#tune-start');
  await page.waitForFunction(() => /step limit/.test(document.querySelector('#tune-status')?.textContent ?? ''),
    null, { timeout: LONG, polling: 500 });
  const steps = await page.$$eval('.step-row', (rows) =>
    rows.map((r) => [Number(r.dataset.step), Number(r.dataset.totalLoss)]).sort((a, b) => a[0] - b[0]).map((r) => r[1]));
  assert.equal(steps.length, n);
  return steps;
}

function assertSameSteps(steps, native, what) {
  steps.forEach((loss, i) => {
    const rel = Math.abs(loss - native[i]) / Math.abs(native[i]);
    assert.ok(rel < 1e-4, `${what}, step ${i + 1}: page ${loss}, native ${native[i]}`);
  });
}

async function shot(page, name, timeout = 30_000) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true, timeout });
}

// Each page's errors and crashes from its opening, for the account of a failed test.
const pageErrors = new WeakMap();
function watch(page) {
  const errors = [];
  pageErrors.set(page, errors);
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('crash', () => errors.push('the page crashed'));
  track(page);
}

// The page calls under way, each with the lines of this file it was made from: a test that
// hangs says which call never returned, where a timed-out test says only that it timed out.
const pending = new Set();
const THIS_FILE = new RegExp(`${import.meta.url.split('/').pop().replace(/\./g, '\\.')}:(\\d+)`);
const TRACKED = ['goto', 'reload', 'click', 'fill', 'check', 'uncheck', 'press', 'dispatchEvent',
  'setInputFiles', 'waitForSelector', 'waitForFunction', 'waitForEvent', 'evaluate', '$eval', '$$eval',
  '$', 'textContent', 'getAttribute', 'inputValue', 'isVisible', 'isDisabled', 'isChecked', 'screenshot'];
function track(page) {
  for (const name of TRACKED) {
    const original = page[name].bind(page);
    page[name] = (...args) => {
      const lines = (new Error().stack ?? '').split('\n').slice(2)
        .map((f) => f.match(THIS_FILE)?.[1]).filter(Boolean).slice(0, 3);
      const first = typeof args[0] === 'function' ? 'a function' : JSON.stringify(args[0] ?? '').slice(0, 80);
      const call = { what: `page.${name}(${first})`, lines, since: Date.now() };
      pending.add(call);
      const result = original(...args);
      Promise.resolve(result).then(() => pending.delete(call), () => pending.delete(call));
      return result;
    };
  }
}

function pendingCalls() {
  return [...pending].map((c) =>
    `${c.what} at line ${c.lines.join(' ← ')}, waiting ${Math.round((Date.now() - c.since) / 1000)} s`);
}

// The errors and crashes of `page` so far; the list grows as more come.
function errorsOf(page) {
  if (!pageErrors.has(page)) watch(page);
  return pageErrors.get(page);
}

// What a page showed when a test failed: its statuses, notices and errors, and a screenshot.
async function explain(page, name) {
  const errors = errorsOf(page).map((e) => `page error: ${e}`);
  try {
    // a page that hangs must not hang the account of it
    const said = await Promise.race([
      page.evaluate(() => ['#model-status', '#chart-heading', '#tune-status', '.job-what', '.notice', '#probe-error']
        .flatMap((s) => [...document.querySelectorAll(s)].map((e) => `${s}: ${e.textContent.trim()}`))),
      new Promise((_, no) => setTimeout(() => no(new Error('no answer within 10 s')), 10_000)),
    ]);
    console.log(`failed: ${name}: ${page.url()}\n  ${[...said, ...errors].join('\n  ')}`);
    await shot(page, `failed-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`, 10_000);
  } catch (e) {
    console.log(`failed: ${name}: the page could not be read (${e}); ${errors.join('; ')}`);
  }
}

// A test in the one browser. When it fails, it names the page calls not returned and every page
// still open says what it showed, so that a failure seen only in CI can be read from its log;
// one that outlives its limit is failed a little before node's own timeout, which would end it
// without a word.
function e2e(name, body) {
  test(name, { timeout: TEST_LIMIT }, async () => {
    pending.clear();
    let timer;
    const hung = new Promise((_, no) => {
      timer = setTimeout(() => no(new Error(`still running after ${(TEST_LIMIT - 30_000) / 60_000} minutes`)),
        TEST_LIMIT - 30_000);
    });
    try {
      await Promise.race([body(), hung]);
    } catch (e) {
      const calls = pendingCalls();
      if (calls.length) console.log(`failed: ${name}: calls not returned:\n  ${calls.join('\n  ')}`);
      const pages = (chrome?.context.pages() ?? []).filter((p) => p.url() !== 'about:blank');
      for (const [i, page] of pages.entries()) await explain(page, `${name}, page ${i + 1} of ${pages.length}`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  });
}

let app, hub, chrome, bundledShown, shareLink, compareLink;
const truncated = readFileSync(join(FIXTURE, 'model.safetensors')).subarray(0, 5000);

before(async () => {
  app = await staticServer(DIST);
  hub = await hubServer({
    'fixtures/tiny-bert': { dir: FIXTURE },
  });
  chrome = await launch();
  chrome.context.on('page', watch);
});

after(async () => {
  await chrome?.browser.close().catch(() => {});
  chrome?.proc.kill();
  app?.server.close();
  hub?.server.close();
});


/** Shares of light and of dark pixels in an exported chart's label column (x 0–200, below the
 * legend and ticks), drawn from `src` as an image. */
async function labelPixels(page, src, scale) {
  return page.evaluate(async ([src, scale]) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const top = 60 * scale;
    const { data } = ctx.getImageData(0, top, 200 * scale, Math.max(1, canvas.height - top - 40 * scale));
    let light = 0;
    let dark = 0;
    for (let i = 0; i < data.length; i += 4) {
      const level = (data[i] + data[i + 1] + data[i + 2]) / 3;
      if (data[i + 3] > 200 && level > 220) light += 1;
      if (data[i + 3] > 200 && level < 110) dark += 1;
    }
    const n = data.length / 4;
    return { light: light / n, dark: dark / n };
  }, [src, scale]);
}

e2e('the bundled model loads on the CPU backend and probes as `walf probe` does', async () => {
  const page = await chrome.context.newPage();
  const errors = errorsOf(page);
  await page.goto(`${app.url}?backend=cpu&split=test`);
  const native = nativeProbeJson(['--split', 'test', '--target', 'equal']);
  const want = new Map(native.professions.map((p) => [p.profession, p.p_female]));
  await waitForRows(page, want.size);
  // The page names the model's files as `walf probe --json` does (the JSON export's manifest
  // and share links carry it).
  assert.match(native.model_fingerprint, /^[0-9a-f]{16}$/);
  assert.equal(await page.getAttribute('#model-status', 'data-fingerprint'), native.model_fingerprint);
  assert.match(await page.textContent('.backend'), /CPU/);
  // The linear layers ran on the worker's own matrix product: Chromium has relaxed SIMD, so the
  // fused one (the numbers above are its); both kernels agreed with the plain product at start.
  assert.match(await page.textContent('.backend-detail'), /matrix products: fused multiply-add/);
  const engine = page.workers().find((w) => w.url().includes('walf-worker'));
  const checks = await engine.evaluate(() => performance.getEntriesByType('mark')
    .map((m) => m.name).filter((name) => name.startsWith('walf-worker:matrix product')));
  assert.deepEqual(checks.sort(), [
    'walf-worker:matrix product SIMD128: Agrees',
    'walf-worker:matrix product fused multiply-add (relaxed SIMD): Agrees',
  ]);
  // One worker per core shares the probe (at most four).
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  const threads = Number(await page.getAttribute('#probe-timing', 'data-threads'));
  assert.equal(threads, Math.min(cores, 4), `${cores} cores, the probe ran on ${threads} workers`);
  bundledShown = await chartValues(page);
  const worst = assertClose(bundledShown, want, 1e-4, 'bundled model, CPU');
  console.log(`bundled minilm-brown, test split: largest |ΔP(female)| vs walf probe ${worst.toExponential(2)}`);
  // The correlation with the statistics, beside the KL tables, is the native one.
  const rho = Number(await page.getAttribute('.correlation', 'data-spearman'));
  assert.ok(Math.abs(rho - native.correlation.spearman) < 1e-3,
    `Spearman rho: page ${rho}, walf probe ${native.correlation.spearman}`);
  assert.match(await page.textContent('.correlation'), /ranks the 45 professions/);
  assert.ok(await page.locator('#group-table').isVisible());
  await shot(page, 'probe');
  // The exported JSON carries the same numbers.
  await page.click('button[role=tab]:has-text("Share")');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('button:has-text("Result (JSON)")'),
  ]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  const fromJson = new Map(exported.result.professions.map((p) => [p.name, p.p_female]));
  assertClose(fromJson, want, 1e-4, 'exported JSON');
  assert.ok(Math.abs(exported.correlation.before.spearman - native.correlation.spearman) < 1e-3);
  shareLink = await page.inputValue('#share-link');
  assert.match(shareLink, /#v1\./);
  await shot(page, 'share');
  // The scatter against the statistics: a point per profession at the chart's numbers, ρ in its
  // caption, exportable.
  await page.click('button[role=tab]:has-text("Probe")');
  const rowValues = await chartValues(page);
  await page.click('#show-scatter');
  await page.waitForSelector('#probe-scatter .scatter-point', { timeout: LONG });
  const scatter = new Map(await page.$$eval('#probe-scatter .scatter-point',
    (points) => points.map((p) => [p.dataset.profession, Number(p.dataset.pFemale)])));
  assert.equal(scatter.size, rowValues.size);
  for (const [name, value] of rowValues) assert.equal(scatter.get(name), value, name);
  assert.match(await page.textContent('#scatter-caption'), /ρ = /);
  const [scatterPng] = await Promise.all([
    page.waitForEvent('download', { timeout: LONG }),
    page.click('#scatter-png'),
  ]);
  assert.match(scatterPng.suggestedFilename(), /scatter\.png$/);
  await shot(page, 'scatter');
  await page.click('#show-rows');
  await page.waitForSelector('#probe-chart .chart-row', { timeout: LONG });
  // Fill-mask shows predictions and the gendered words.
  await page.click('button[role=tab]:has-text("Fill-mask")');
  await page.click('#run-fill');
  await page.waitForSelector('.fill-top tbody tr', { timeout: LONG });
  assert.ok((await page.$$('.fill-top tbody tr')).length >= 5);
  assert.match(await page.textContent('.fill-gender'), /she/);
  await shot(page, 'fill');
  // An error is said beside the sentence, replaces the old predictions, and goes with a success.
  const sentence = await page.inputValue('#fill-text');
  await page.fill('#fill-text', 'a sentence without any mask.');
  await page.click('#run-fill');
  await page.waitForSelector('#fill-error', { timeout: LONG });
  assert.match(await page.textContent('#fill-error'), /no mask/);
  assert.equal(await page.$('.fill-top'), null, 'no predictions for another sentence');
  assert.equal(await page.$('.notice.error'), null, 'not in the banner above the tabs');
  await page.fill('#fill-text', sentence);
  await page.click('#run-fill');
  await page.waitForSelector('.fill-top tbody tr', { timeout: LONG });
  assert.equal(await page.$('#fill-error'), null, 'a success clears the error');
  // What a class sees on a projector and on a phone: every view at 1400×900 and 390×844, none
  // wider than the window; the chart fits it with every dot on screen, its labels readable, and
  // a focused point's numbers open in view.
  for (const [width, height] of [[1400, 900], [390, 844]]) {
    await page.setViewportSize({ width, height });
    for (const tab of ['Fill-mask', 'Tune', 'Share', 'Probe']) {
      await page.click(`button[role=tab]:has-text("${tab}")`);
      await page.waitForTimeout(100);
      await shot(page, `${tab.toLowerCase().replace(/[^a-z]+/g, '-')}-${width}`);
      // against the width left beside the scroll bar
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 1, `${tab} at ${width} px is ${overflow} px wider than the window`);
    }
    await page.waitForSelector(width < 640 ? '#probe-chart.compact' : '#probe-chart:not(.compact)');
    const inner = await page.evaluate(() => document.documentElement.clientWidth);
    const chart = await page.locator('#probe-chart').boundingBox();
    assert.ok(chart.x >= 0 && chart.x + chart.width <= inner + 0.5, `chart from ${chart.x} to ${chart.x + chart.width} in ${inner} px`);
    const marks = await page.$$eval('#probe-chart .chart-row .mark-before',
      (all) => all.map((m) => { const b = m.getBoundingClientRect(); return [b.left, b.right]; }));
    assert.equal(marks.length, 45);
    assert.ok(marks.every(([l, r]) => l >= 0 && r <= inner), `every dot within the ${inner} px window`);
    const label = await page.$eval('#probe-chart .chart-label', (t) => t.getBoundingClientRect().height);
    assert.ok(label >= 11, `labels ${label.toFixed(1)} px high at ${width} px`);
    await page.locator('#probe-chart .chart-row').nth(40).focus();
    await page.waitForSelector('aside.details:not(.idle)');
    const details = await page.locator('aside.details:not(.idle)').boundingBox();
    assert.ok(details.y >= 0 && details.y < height - 60 && details.x + details.width <= inner + 0.5,
      `the numbers of a focused point at (${details.x}, ${details.y}) in a ${width}×${height} window`);
    await shot(page, `probe-details-${width}`);
    await page.click('aside.details .close');
  }
  // The second bundled model is one click away, and measures as `walf probe --model brown-bert`.
  await page.click('button[role=tab]:has-text("Probe")');
  await page.click('button.bundled-model[data-model="brown-bert"]');
  await page.waitForFunction(() => /brown-bert/.test(document.querySelector('#model-status')?.textContent ?? ''),
    null, { timeout: LONG, polling: 200 });
  const brown = nativeProbe(['--model', 'brown-bert', '--split', 'test', '--target', 'equal']);
  await page.waitForFunction((first) => {
    const row = document.querySelector('#probe-chart .chart-row');
    return row && row.getAttribute('data-p-female') !== first;
  }, String(bundledShown.values().next().value), { timeout: LONG, polling: 500 });
  await waitForRows(page, brown.size);
  assertClose(await chartValues(page), brown, 1e-4, 'bundled brown-bert, CPU');
  // Compare: this result (brown-bert) against the first one's link (minilm-brown), profession by
  // profession, the largest difference first; a link carries both.
  await page.click('button[role=tab]:has-text("Share")');
  await page.fill('#compare-with', shareLink);
  await page.click('#compare-go');
  await page.waitForSelector('#compare-rows tbody tr', { timeout: LONG });
  const compared = await page.$$eval('#compare-rows tbody tr', (tr) =>
    tr.map((r) => [r.dataset.profession, Number(r.dataset.first), Number(r.dataset.second)]));
  assert.equal(compared.length, brown.size);
  assertClose(new Map(compared.map(([n, a]) => [n, a])), brown, 1e-4, 'compared: brown-bert');
  assertClose(new Map(compared.map(([n, , b]) => [n, b])), bundledShown, 1e-12, 'compared: the link');
  const gaps = compared.map(([, a, b]) => Math.abs(b - a));
  assert.ok(gaps.every((g, i) => i === 0 || g <= gaps[i - 1] + 1e-12), 'the largest difference first');
  assert.match(await page.textContent('#compare-summary'), /brown-bert \(bundled\): ρ = -?\d\.\d\d .*minilm-brown \(bundled\): ρ = -?\d\.\d\d/);
  compareLink = await page.inputValue('#compare-link');
  assert.match(compareLink, /#v1\./);
  await shot(page, 'compare');
  assert.deepEqual(errors, []);
  await page.close();
});

e2e('a helper worker that breaks or falls silent costs only speed', async () => {
  const want = nativeProbe(['--split', 'test', '--target', 'equal']);
  const helpers = {
    // Fails as it starts: the engine worker hears an error event.
    broken: 'throw new Error("a broken helper");',
    // Takes its weights, then hangs on its first batch: no answer, no error.
    silent: `self.addEventListener('message', (e) => {
        if (typeof e.data?.[0] === 'string' && e.data[0].includes('"batch"')) { for (;;) {} }
      });
      importScripts('./walf-helper-real.js');`,
  };
  for (const [kind, script] of Object.entries(helpers)) {
    const served = await staticServer(DIST, {
      '/walf-helper.js': script,
      '/walf-helper-real.js': readFileSync(join(DIST, 'walf-helper.js'), 'utf8'),
    });
    try {
      const page = await chrome.context.newPage();
      const errors = errorsOf(page);
      await page.goto(`${served.url}?backend=cpu&split=test`);
      await waitForRows(page, want.size);
      assertClose(await chartValues(page), want, 1e-4, `${kind} helper`);
      const threads = Number(await page.getAttribute('#probe-timing', 'data-threads'));
      assert.equal(threads, 1, `${kind} helper: the engine worker measured alone`);
      console.log(`${kind} helper: probe ${await page.getAttribute('#probe-timing', 'data-seconds')} s on one worker`);
      assert.equal(await page.$('.notice.error'), null, `${kind} helper: no error shown`);
      assert.deepEqual(errors, []);
      await page.close();
    } finally {
      served.server.close();
    }
  }
});

e2e('automatic times the GPU against the CPU on each model and each run, takes the faster, and keeps the choice', async () => {
  // SwiftShader counted as a graphics card (a test hook): the timing runs without a GPU.
  const served = await staticServer(DIST, {
    '/walf-worker-loader.js': `self.walfCountSoftwareAdapters = true;\n${readFileSync(join(DIST, 'walf-worker-loader.js'), 'utf8')}`,
  });
  const want = nativeProbe(['--model', FIXTURE, '--split', 'valid', '--target', 'equal']);
  const page = await chrome.context.newPage();
  const errors = errorsOf(page);
  const figures = /WebGPU (\d+) ms\/batch, CPU, (\d+) workers? (\d+) ms\/batch(.*): running on the (GPU|CPU)/;
  try {
    await page.goto(`${served.url}?model=fixtures/tiny-bert&hub=${encodeURIComponent(hub.url)}&split=valid`);
    await waitForRows(page, want.size);
    const notice = await page.textContent('.backend-notice');
    const [, gpuMs, workers, cpuMs, kept, chosen] = notice.match(figures) ?? assert.fail(`no timing in ${notice}`);
    assert.equal(kept, '', 'timed, not remembered, the first time');
    assert.ok(Number(workers) >= 1);
    assert.equal(chosen, Number(gpuMs) < Number(cpuMs) ? 'GPU' : 'CPU', notice);
    assert.match(await page.textContent('.backend'), chosen === 'GPU' ? /WebGPU/ : /CPU/);
    assertClose(await chartValues(page), want, 1e-4, `the probe on the ${chosen}`);
    console.log(`automatic: ${notice}`);
    // The next load of the model in this browser takes the kept decision without timing.
    await page.reload();
    await waitForRows(page, want.size);
    const again = await page.textContent('.backend-notice');
    const [, gpuAgain, , cpuAgain, keptAgain, chosenAgain] = again.match(figures) ?? assert.fail(again);
    assert.deepEqual([gpuAgain, cpuAgain, chosenAgain], [gpuMs, cpuMs, chosen], again);
    assert.match(keptAgain, /timed when this model was first loaded here/);
    assertClose(await chartValues(page), want, 1e-4, 'the probe after the reload');

    // A run times a training step's work on both as well (a step adds the backward pass and
    // the optimizer), trains on the faster, and gives the native engine's losses there.
    const native = nativeSteps(2);
    const steps = await pageSteps(page, 2);
    const withStep = await page.textContent('.backend-notice');
    const stepFigures = /^(.*) · a training step: WebGPU (\d+) ms\/step, CPU (\d+) ms\/step(.*): training on the (GPU|CPU)$/;
    const [, loadPart, gpuStep, cpuStep, keptStep, trainedOn] = withStep.match(stepFigures) ?? assert.fail(`no step timing in ${withStep}`);
    assert.equal(loadPart, again, 'the load\'s figures stay beside the run\'s');
    assert.equal(keptStep, '', 'timed, the first time');
    assert.equal(trainedOn, Number(gpuStep) < Number(cpuStep) ? 'GPU' : 'CPU', withStep);
    assert.match(await page.textContent('.backend'), trainedOn === 'GPU' ? /WebGPU/ : /CPU/);
    assertSameSteps(steps, native, `on the ${trainedOn}`);
    console.log(`automatic, a run: ${withStep}`);

    // The next such run takes the kept decision without timing. Edited here to say the GPU
    // (SwiftShader never wins), it moves the session there: the run's step is still the native
    // engine's, and the page says where it runs.
    const flipped = await page.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      const handle = await root.getFileHandle('backend-choices.json');
      const all = JSON.parse(await (await handle.getFile()).text());
      const keys = Object.keys(all).filter((k) => k.includes('|step '));
      for (const key of keys) all[key].gpu = true;
      const out = await handle.createWritable();
      await out.write(JSON.stringify(all));
      await out.close();
      return keys.length;
    });
    assert.equal(flipped, 1, 'one kind of run was timed');
    await page.reload();
    await waitForRows(page, want.size);
    const moved = await pageSteps(page, 1);
    const movedNotice = await page.textContent('.backend-notice');
    assert.match(movedNotice, / · a training step: WebGPU \d+ ms\/step, CPU \d+ ms\/step \(timed when such a run first started here\): training on the GPU$/);
    assert.match(await page.textContent('.backend'), /WebGPU/);
    assertSameSteps(moved, native, 'moved to the GPU');
    console.log(`automatic, a kept decision for the GPU: ${movedNotice}`);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    served.server.close();
  }
});

e2e('a Hub model downloads with progress, probes the same on WebGPU as on the CPU, then loads from the cache', async () => {
  const want = nativeProbe(['--model', FIXTURE, '--split', 'test', '--target', 'equal']);
  const address = (backend) => `${app.url}?model=fixtures/tiny-bert&hub=${encodeURIComponent(hub.url)}&backend=${backend}&split=test`;

  const gpu = await chrome.context.newPage();
  await gpu.goto(address('webgpu'));
  await gpu.waitForSelector('.job-what:has-text("downloading model.safetensors")', { timeout: LONG });
  await waitForRows(gpu, want.size);
  const backend = await gpu.textContent('.model-status');
  assert.match(backend, /WebGPU/, `expected WebGPU, the page says: ${backend}`);
  assert.match(await gpu.textContent('.backend-notice'), /as asked, on a software fallback adapter/);
  assert.equal(await gpu.inputValue('#hub-id'), 'fixtures/tiny-bert', 'the Hub box names the model of the address');
  const onGpu = await chartValues(gpu);
  const worstGpu = assertClose(onGpu, want, 1e-4, 'fixture model, WebGPU');
  await shot(gpu, 'probe-webgpu');
  await gpu.close();

  const requests = hub.log.length;
  hub.server.close();
  hub.server.closeAllConnections?.();
  const cpu = await chrome.context.newPage();
  await cpu.goto(address('cpu'));
  await waitForRows(cpu, want.size);
  const onCpu = await chartValues(cpu);
  const worstCpu = assertClose(onCpu, onGpu, 1e-4, 'fixture model, CPU vs WebGPU');
  assertClose(onCpu, want, 1e-4, 'fixture model, CPU');
  assert.equal(hub.log.length, requests, 'the second load must come from the cache');
  console.log(`fixture model: WebGPU vs walf probe ${worstGpu.toExponential(2)}, CPU vs WebGPU ${worstCpu.toExponential(2)}`);
  // The default choice never takes a software fallback adapter (this browser's SwiftShader):
  // the CPU, and the page says why.
  const auto = await chrome.context.newPage();
  await auto.goto(address('auto'));
  await waitForRows(auto, want.size);
  assert.match(await auto.textContent('.model-status'), /CPU/);
  const why = await auto.textContent('.backend-notice');
  assert.match(why, /^running on the CPU: the browser's only WebGPU adapter is a software fallback \(google swiftshader\)/);
  assert.doesNotMatch(why, /slower:/, 'the CPU is the faster choice here');
  await auto.close();

  // Two WALF steps, without dropout, give the native engine's first two losses.
  const native = nativeSteps(2);
  const steps = await pageSteps(cpu, 2);
  assertSameSteps(steps, native, 'CPU');
  console.log(`WALF steps: page ${steps.join(', ')}; native ${native.join(', ')}`);
  // The tuned model's distribution appears beside the one before, and it is what `walf probe`
  // finds in the exported model (the tuned weights went to the helper workers too).
  await cpu.waitForSelector('#probe-chart .chart-row[data-p-female-after]', { timeout: LONG });
  await shot(cpu, 'tune');
  const tunedShown = await chartValues(cpu, 'data-p-female-after');
  const exported = mkdtempSync(join(tmpdir(), 'walf-exported-'));
  const downloads = [];
  cpu.on('download', (d) => downloads.push(d));
  await cpu.click('#export-model');
  const deadline = Date.now() + LONG;
  while (downloads.length < 3 && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 100));
  for (const d of downloads) {
    const file = d.suggestedFilename().replace(/^.*-walf-/, '');
    writeFileSync(join(exported, file), readFileSync(await d.path()));
  }
  const tunedWant = nativeProbe(['--model', exported, '--split', 'test', '--target', 'equal']);
  const worstTuned = assertClose(tunedShown, tunedWant, 1e-4, 'tuned weights, CPU');
  console.log(`tuned weights: largest |ΔP(female)| vs walf probe of the export ${worstTuned.toExponential(2)}`);

  // The CDA baseline in the same tuner: two steps on the same text give the native engine's
  // first two losses (one step per epoch here: the text's 26 sentences fill one batch of 32).
  const cdaText = join(ROOT, 'tests/fixtures/text/cda-general.txt');
  const cdaDir = mkdtempSync(join(tmpdir(), 'walf-cda-'));
  walf(['tune', '--model', FIXTURE, '--target', 'equal', '--method', 'cda', '--text', cdaText,
    '--out', cdaDir, '--max-epochs', '2', '--no-dropout']);
  const nativeCda = readFileSync(join(cdaDir, 'training.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l)).filter((r) => r.step).slice(0, 2).map((r) => r.step.total_loss);
  assert.equal(nativeCda.length, 2);
  await cpu.selectOption('#tune-method', 'cda');
  assert.ok(await cpu.isHidden('#tune-gamma'), 'γ is WALF\'s only');
  await cpu.setInputFiles('#tune-cda-file', cdaText);
  await cpu.waitForFunction(() => /cda-general\.txt/.test(document.querySelector('#tune-cda-name')?.textContent ?? ''),
    null, { timeout: LONG, polling: 200 });
  await cpu.click('#tune-start');
  await cpu.waitForFunction(() => {
    const rows = [...document.querySelectorAll('.step-row')];
    return rows.length === 2 && rows.every((r) => !r.hasAttribute('data-kl'))
      && /step limit/.test(document.querySelector('#tune-status')?.textContent ?? '');
  }, null, { timeout: LONG, polling: 500 });
  const cdaSteps = await cpu.$$eval('.step-row', (rows) =>
    rows.map((r) => [Number(r.dataset.step), Number(r.dataset.totalLoss)]).sort((a, b) => a[0] - b[0]).map((r) => r[1]));
  cdaSteps.forEach((loss, i) => {
    const rel = Math.abs(loss - nativeCda[i]) / Math.abs(nativeCda[i]);
    assert.ok(rel < 1e-4, `CDA step ${i + 1}: page ${loss}, native ${nativeCda[i]}`);
  });
  assert.ok(await cpu.isVisible('#curve-mlm'), 'CDA draws its masked-LM loss');
  assert.equal(await cpu.$('#curve-kl'), null, 'and no batch KL, which it has not');
  await shot(cpu, 'tune-cda');
  console.log(`CDA steps: page ${cdaSteps.join(', ')}; native ${nativeCda.join(', ')}`);

  // The page lists what the browser keeps: the fixture's three files with their size, and the
  // storage estimate; deleting the model frees what it took, and the cache holds nothing of it.
  await cpu.click('#kept-models summary');
  const kept = cpu.locator('.kept-model[data-model$="/fixtures/tiny-bert"]');
  await kept.waitFor({ timeout: LONG });
  const bytes = ['config.json', 'tokenizer.json', 'model.safetensors']
    .reduce((n, f) => n + statSync(join(FIXTURE, f)).size, 0);
  assert.equal(Number(await kept.getAttribute('data-bytes')), bytes);
  const reported = Number(await cpu.getAttribute('#storage-estimate', 'data-usage'));
  assert.ok(reported >= bytes, `the estimate (${reported} bytes) counts the kept model (${bytes})`);
  await shot(cpu, 'kept-models');
  await kept.locator('.delete-kept').click();
  await kept.waitFor({ state: 'detached', timeout: LONG });
  const freed = await (await cpu.waitForFunction(async ([reported, bytes]) => {
    const { usage } = await navigator.storage.estimate();
    return reported - usage >= 0.9 * bytes ? reported - usage : null;
  }, [reported, bytes], { timeout: 30_000, polling: 500 })).jsonValue();
  console.log(`kept model: ${bytes} bytes listed, ${freed} bytes freed by deleting it`);
  const left = await cpu.evaluate(async () => (await (await caches.open('walf-lab-models-v1')).keys())
    .map((r) => r.url).filter((u) => u.includes('/fixtures/tiny-bert/')));
  assert.deepEqual(left, [], 'none of its files stays in the cache');
  await cpu.close();
});

e2e('a share link opens the same numbers in a fresh browser profile', async () => {
  assert.ok(shareLink, 'the first test made a link');
  const fresh = await launch();
  try {
    const page = await fresh.context.newPage();
    const fragment = shareLink.slice(shareLink.indexOf('#'));
    await page.goto(`${app.url}${fragment}`);
    await waitForRows(page, bundledShown.size);
    const shown = await chartValues(page);
    assertClose(shown, bundledShown, 1e-12, 'shared link');
    assert.match(await page.textContent('.shared-banner'), /Opened from a link/);
    await shot(page, 'shared-link');
    // A comparison link opens both results side by side.
    const both = await fresh.context.newPage();
    await both.goto(`${app.url}${compareLink.slice(compareLink.indexOf('#'))}`);
    await both.waitForSelector('#comparison #compare-rows tbody tr', { timeout: LONG });
    assert.equal((await both.$$('#compare-rows tbody tr')).length, bundledShown.size);
    await both.close();
    // A teacher's simplified page: the parts `hide=` names are not there, the rest is, and its
    // own links keep the same parts hidden.
    const simple = await fresh.context.newPage();
    await simple.goto(`${app.url}?hide=tune,fill,model${fragment}`);
    await waitForRows(simple, bundledShown.size);
    const tabs = await simple.$$eval('button[role=tab]', (b) => b.map((x) => x.textContent));
    assert.deepEqual(tabs, ['Probe', 'Share & export']);
    assert.equal(await simple.$('#model-status'), null, 'no model panel');
    assert.equal(await simple.$('.notice.error'), null, 'no complaint about the address');
    assertClose(await chartValues(simple), bundledShown, 1e-12, 'simplified page');
    await simple.click('button[role=tab]:has-text("Share")');
    const again = await simple.inputValue('#share-link');
    assert.match(again, /\?hide=tune,fill,model#v1\./);
    await shot(simple, 'simplified-page');
  } finally {
    await fresh.browser.close().catch(() => {});
    fresh.proc.kill();
  }
});

e2e('a corrupted link, hostile link contents and broken models give messages', async () => {
  const page = await chrome.context.newPage();
  const errors = errorsOf(page);
  await page.goto(`${app.url}?backend=cpu#v1.AAAAbroken`);
  await page.waitForSelector('.notice.error', { timeout: LONG });
  assert.match(await page.textContent('.notice.error'), /cannot be opened/);

  const hostile = {
    model: '<img src=x onerror="window.pwned=1">',
    split: 'test',
    professions: [{ name: '<script>window.pwned=1</script>', group: 'male_dominated', female_share: 0.1, p_female: 0.3 }],
  };
  const link = 'v1.' + deflateRawSync(Buffer.from(JSON.stringify(hostile))).toString('base64url');
  await page.goto(`${app.url}?backend=cpu#${link}`);
  await waitForRows(page, 1);
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.equal(await page.getAttribute('#probe-chart .chart-row', 'data-profession'), hostile.professions[0].name);

  // The first Hub stand-in was stopped to prove the cache; a new one serves the broken models.
  const broken = await hubServer({
    'fixtures/broken-bert': { dir: FIXTURE, files: { 'model.safetensors': truncated } },
    'fixtures/no-tokenizer': { dir: FIXTURE, files: { 'tokenizer.json': null } },
  });
  try {
    for (const [id, expected] of [['fixtures/broken-bert', /safetensors|model\.safetensors|bytes/i],
      ['fixtures/no-tokenizer', /tokenizer\.json/], ['fixtures/missing', /no such model/]]) {
      await page.goto(`${app.url}?model=${id}&hub=${encodeURIComponent(broken.url)}&backend=cpu`);
      await page.waitForFunction(() => /no model/.test(document.querySelector('#model-status')?.textContent ?? ''),
        null, { timeout: LONG });
      const status = await page.textContent('#model-status');
      console.log(`${id}: ${status}`);
      assert.match(status, expected);
      assert.equal(await page.$('.notice.error'), null, `${id}: said once, in the model panel`);
    }
    await shot(page, 'broken-model');
  } finally {
    broken.server.close();
  }
  assert.deepEqual(errors, []);
  await page.close();
});

// Waits for a measurement started by `act` to be answered.
async function measured(page, act) {
  await page.waitForSelector('#probe-timing', { timeout: LONG });
  const count = await measurementCount(page);
  await act();
  await measurementAfter(page, count, LONG, 200);
}

e2e('local files, an edited benchmark, the masked-LM loss, pause and resume, and the PNG chart', async () => {
  const page = await chrome.context.newPage();
  const errors = errorsOf(page);
  await page.goto(`${app.url}?backend=cpu&split=test`);
  await waitForRows(page, 45);

  // The fixture model from the file picker replaces the bundled one.
  const want = nativeProbe(['--model', FIXTURE, '--split', 'test', '--target', 'equal']);
  await measured(page, () => page.setInputFiles('#local-files',
    ['config.json', 'tokenizer.json', 'model.safetensors'].map((f) => join(FIXTURE, f))));
  const worst = assertClose(await chartValues(page), want, 1e-4, 'local files, CPU');
  console.log(`local files: largest |ΔP(female)| vs walf probe ${worst.toExponential(2)}`);

  // A profession added in the benchmark editor is measured as `walf probe --data` measures it.
  const row = 'Night watchmen\tnight watchman\ta\t0.25\t0.75\tmale_dominated\ttest';
  const professions = `${readFileSync(join(ROOT, 'public/data/professions.tsv'), 'utf8').trimEnd()}\n${row}\n`;
  const data = mkdtempSync(join(tmpdir(), 'walf-data-'));
  writeFileSync(join(data, 'professions.tsv'), professions);
  const edited = nativeProbe(['--model', FIXTURE, '--split', 'test', '--target', 'equal', '--data', data]);
  assert.ok(edited.has('night watchman'));
  await page.click('details.editor summary');
  await page.fill('#edit-professions', professions);
  await measured(page, () => page.click('button:has-text("Measure with these")'));
  assertClose(await chartValues(page), edited, 1e-4, 'edited benchmark');
  // A malformed row is named above the chart it did not replace, not in the banner; a later
  // measurement clears it.
  await page.fill('#edit-professions', `${professions}Broken\tbroken\ta\tmany\t0.5\tbalanced\ttest\n`);
  await page.click('button:has-text("Measure with these")');
  await page.waitForSelector('#probe-error', { timeout: LONG });
  assert.match(await page.textContent('#probe-error'), /`many` is not a number.*last one measured/);
  assert.equal(await page.$('.notice.error'), null, 'said above the chart');
  assertClose(await chartValues(page), edited, 1e-4, 'the chart before the malformed row');
  await page.fill('#edit-professions', professions);
  await measured(page, () => page.click('button:has-text("Measure with these")'));
  assert.equal(await page.$('#probe-error'), null, 'a measurement clears the error');

  // The masked-LM loss of the held-out text is `walf lm-loss`'s (same masks, seed 42).
  const native = walf(['lm-loss', '--model', FIXTURE, '--text', join(ROOT, 'public/data/heldout.txt')]);
  const [, nativeTokens, nativeLoss] = native.match(/(\d+) masked: masked-LM loss ([\d.]+)/);
  await page.click('button[role=tab]:has-text("Tune")');
  await page.click('#run-lm-loss');
  await page.waitForSelector('#lm-loss', { timeout: LONG });
  const [, tokens, before, after] = (await page.textContent('#lm-loss'))
    .match(/(\d+) masked tokens: loss ([\d.]+) with the loaded weights, ([\d.]+)/);
  assert.equal(tokens, nativeTokens);
  assert.ok(Math.abs(Number(before) - Number(nativeLoss)) <= 1e-4, `page ${before}, walf lm-loss ${nativeLoss}`);
  assert.equal(before, after, 'nothing tuned yet');
  // and by the paper's rule (every token scored), as `walf lm-loss --paper`
  const paperNative = walf(['lm-loss', '--model', FIXTURE, '--text', join(ROOT, 'public/data/heldout.txt'), '--paper'])
    .match(/(\d+) masked: masked-LM loss ([\d.]+)/)[2];
  await page.check('#lm-loss-paper');
  await page.click('#run-lm-loss');
  await page.waitForSelector('#lm-loss[data-rule=Paper]', { timeout: LONG });
  const paperPage = (await page.textContent('#lm-loss')).match(/loss ([\d.]+) with the loaded weights/)[1];
  assert.ok(Math.abs(Number(paperPage) - Number(paperNative)) <= 1e-4, `page ${paperPage}, walf lm-loss --paper ${paperNative}`);
  assert.notEqual(paperPage, before, 'the two rules score different tokens');
  await page.uncheck('#lm-loss-paper');
  // Without text the page says so beside the box, not above the tabs; a later success clears it.
  const heldout = await page.inputValue('#heldout-text');
  await page.fill('#heldout-text', '');
  await page.click('#run-lm-loss');
  await page.waitForSelector('#lm-loss-error', { timeout: LONG });
  assert.equal(await page.$('#lm-loss'), null, 'no old loss under the error');
  assert.equal(await page.$('.notice.error'), null, 'said beside the box');
  await page.fill('#heldout-text', heldout);
  await page.click('#run-lm-loss');
  await page.waitForSelector('#lm-loss', { timeout: LONG });
  assert.equal(await page.$('#lm-loss-error'), null, 'a success clears the error');

  // The classroom preset fills in its settings and says what it changes; the paper's restores them.
  await page.click('#tune-preset-classroom');
  assert.ok(await page.isVisible('#tune-preset-note'));
  assert.match(await page.textContent('#tune-preset-note'), /dropout off/);
  assert.equal(await page.isChecked('#tune-dropout'), false);
  assert.equal(await page.inputValue('#tune-mlm-positions'), '1');
  assert.equal(await page.inputValue('#tune-mlm-sentences'), '20');
  await page.click('#tune-preset-paper');
  assert.ok(!(await page.isVisible('#tune-preset-note')));
  assert.equal(await page.isChecked('#tune-dropout'), true);
  assert.equal(await page.inputValue('#tune-mlm-positions'), 'all');
  assert.equal(await page.inputValue('#tune-mlm-sentences'), 'all');

  // While WALF trains, the probe tab shows the valid split moving: each profession before the
  // run beside its distribution after the last validated epoch, as `walf tune` records them.
  // (The classroom preset: no dropout, so the page's run and the native one are the same run.)
  const liveDir = mkdtempSync(join(tmpdir(), 'walf-tune-'));
  walf(['tune', '--model', FIXTURE, '--target', 'equal', '--preset', 'classroom', '--data', data, '--out', liveDir,
    '--max-epochs', '3', '--patience', '3']);
  const nativeEpochs = readFileSync(join(liveDir, 'training.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l)).filter((r) => r.epoch).map((r) => r.epoch);
  const validBefore = nativeProbe(['--model', FIXTURE, '--split', 'valid', '--target', 'equal', '--data', data]);
  await page.click('#tune-preset-classroom');
  // long enough to be paused and stopped below (epochs and patience change no step)
  for (const [id, value] of [['#tune-steps', '2000'], ['#tune-epochs', '50'], ['#tune-patience', '50']]) {
    await page.fill(id, value);
    await page.dispatchEvent(id, 'change');
  }
  await page.click('#tune-start');
  await page.click('button[role=tab]:has-text("Probe")');
  await page.waitForSelector('#chart-heading[data-live=true]', { timeout: LONG });
  assertClose(await chartValues(page), validBefore, 1e-4, 'live chart before tuning');
  // heading and dots read in one go: the next epoch may be validated at any moment
  const live = await (await page.waitForFunction(() => {
    const epoch = document.querySelector('#chart-heading[data-live=true]')?.dataset.epoch;
    if (!epoch) return null;
    const rows = [...document.querySelectorAll('#probe-chart .chart-row')];
    return { epoch: Number(epoch), after: rows.map((r) => [r.dataset.profession, Number(r.dataset.pFemaleAfter)]) };
  }, null, { timeout: LONG, polling: 50 })).jsonValue();
  assert.ok(live.epoch >= 1 && live.epoch <= nativeEpochs.length, `live chart after epoch ${live.epoch}`);
  const nativeAfter = new Map(nativeEpochs[live.epoch - 1].valid_professions.map((p) => [p.profession, p.p_female]));
  const moved = assertClose(new Map(live.after), nativeAfter, 1e-4, `live chart after epoch ${live.epoch}`);
  const shift = Math.max(...live.after.map(([n, a]) => Math.abs(a - validBefore.get(n))));
  assert.ok(shift > 1e-4, `the dots moved (largest shift ${shift})`);
  console.log(`live chart after epoch ${live.epoch}: largest |ΔP(female)| vs walf tune ${moved.toExponential(2)}, largest move ${shift.toFixed(4)}`);
  await shot(page, 'probe-live');
  await page.click('button[role=tab]:has-text("Tune")');

  // Pause holds the run between steps; resume continues it; stop ends it.
  // the table shows the last few steps; it counts them all
  const stepCount = async () => Number(await page.getAttribute('#tune-steps-table', 'data-steps'));
  await page.waitForSelector('.step-row', { timeout: LONG });
  // No other model during a run: its buttons are off, and a Hub id sent with Enter is refused
  // while the run goes on, shown as running.
  for (const control of ['button.bundled-model[data-model="brown-bert"]', '#hub-load', '#local-files', '#backend']) {
    assert.ok(await page.isDisabled(control), `${control} is disabled during a run`);
  }
  const beforeRefusal = await stepCount();
  await page.fill('#hub-id', 'fixtures/tiny-bert');
  await page.press('#hub-id', 'Enter');
  await page.waitForSelector('.notice.error', { timeout: LONG });
  assert.match(await page.textContent('.notice.error'), /stop it before loading another model/);
  await page.click('.notice .close');
  await page.waitForFunction((n) => Number(document.querySelector('#tune-steps-table')?.dataset.steps) > n,
    beforeRefusal, { timeout: LONG, polling: 200 });
  assert.equal(await page.textContent('#tune-status'), 'running');
  assert.match(await page.textContent('#model-status'), /local model/);
  await page.click('#tune-pause');
  await page.waitForFunction(() => /paused/i.test(document.querySelector('#tune-status')?.textContent ?? ''),
    null, { timeout: LONG, polling: 200 });
  const held = await stepCount();
  await new Promise((ok) => setTimeout(ok, 2000));
  assert.equal(await stepCount(), held, 'no step while paused');
  await page.click('#tune-resume');
  await page.waitForFunction((n) => Number(document.querySelector('#tune-steps-table')?.dataset.steps) > n, held,
    { timeout: LONG, polling: 200 });
  await page.click('#tune-stop');
  await page.waitForSelector('#tune-start:not([disabled])', { timeout: LONG });
  assert.ok(await stepCount() > held);

  // The chart as PNG.
  await page.click('button[role=tab]:has-text("Share")');
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: LONG }),
    page.click('button:has-text("Chart (PNG)")'),
  ]);
  const png = readFileSync(await download.path());
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(png.length > 2000, `a ${png.length}-byte PNG`);
  // Both exports, drawn as images (which see no page stylesheet): the profession names must be
  // readable, dark text on a light background, as in the page.
  const [svgDownload] = await Promise.all([
    page.waitForEvent('download', { timeout: LONG }),
    page.click('button:has-text("Chart (SVG)")'),
  ]);
  const svg = readFileSync(await svgDownload.path());
  for (const [kind, bytes, scale] of [['image/png', png, 2], ['image/svg+xml', svg, 1]]) {
    const labels = await labelPixels(page, `data:${kind};base64,${bytes.toString('base64')}`, scale);
    assert.ok(labels.light > 0.8, `${kind}: ${(100 * labels.light).toFixed(1)}% of the label area is light`);
    assert.ok(labels.dark > 0.01, `${kind}: ${(100 * labels.dark).toFixed(2)}% of the label area is dark text`);
  }
  // The share link of the tuned result opens with its run in the Tune tab: target and curves.
  await page.waitForFunction(() => /#v1\./.test(document.querySelector('#share-link')?.value ?? ''), null,
    { timeout: LONG, polling: 200 });
  const tunedLink = await page.inputValue('#share-link');
  const opened = await chrome.context.newPage();
  await opened.goto(tunedLink);
  await opened.waitForSelector('.shared-banner', { timeout: LONG });
  assert.match(await opened.textContent('.shared-banner'), /towards the equal target/);
  await opened.click('button[role=tab]:has-text("Tune")');
  await opened.waitForSelector('#tune-shared[data-target=equal]', { timeout: LONG });
  assert.ok(await opened.$('#shared-curve-kl polyline'), 'the run\'s KL curve is drawn');
  await opened.close();
  // Choosing another split measures it at once, and the chart says which split it shows.
  await page.click('button[role=tab]:has-text("Probe")');
  await page.selectOption('#split', 'valid');
  await page.waitForSelector('#chart-heading[data-split=valid]', { timeout: LONG });
  await waitForRows(page, 34);
  assert.match(await page.textContent('#chart-heading'), /34 professions of the valid split/);
  assert.deepEqual(errors, []);
  await page.close();
});

// A small benchmark, as the professions editor takes it: two train professions of each group,
// three valid ones, every test one.
function smallBenchmark() {
  const rows = readFileSync(join(ROOT, 'public/data/professions.tsv'), 'utf8').trimEnd().split('\n');
  const seen = {};
  const kept = rows.filter((line, i) => {
    const [, , , , , group, split] = line.split('\t');
    const key = `${group}/${split}`;
    seen[key] = (seen[key] ?? 0) + 1;
    return i === 0 || split === 'test' || (split === 'train' && seen[key] <= 2) || (split === 'valid' && seen[key] <= 1);
  });
  return `${kept.join('\n')}\n`;
}

// The fixture from `hub` with `professions` as its benchmark, measured on its valid split on
// the CPU first (the whole split on SwiftShader takes long), then on WebGPU.
async function smallBenchmarkOnWebgpu(page, hub, professions) {
  await page.goto(`${app.url}?model=fixtures/tiny-bert&hub=${encodeURIComponent(hub.url)}&backend=cpu&split=valid`);
  await waitForRows(page, 34);
  await page.click('details.editor summary');
  await page.fill('#edit-professions', professions);
  await measured(page, () => page.click('button:has-text("Measure with these")'));
  await waitForRows(page, 3);
  await page.selectOption('#backend', 'webgpu');
  await page.waitForFunction(() => /WebGPU/.test(document.querySelector('.model-status')?.textContent ?? ''),
    null, { timeout: LONG, polling: 200 });
  await measured(page, () => page.click('button:has-text("Measure with these")'));
  await waitForRows(page, 3);
}

// The small benchmark (short epochs), and the uninterrupted run of the classroom preset towards
// `target` on it, natively, for three epochs (the first step after a resume must see the same
// weights).
function smallRun(target = 'real-world') {
  const professions = smallBenchmark();
  const data = mkdtempSync(join(tmpdir(), 'walf-data-'));
  writeFileSync(join(data, 'professions.tsv'), professions);
  const dir = mkdtempSync(join(tmpdir(), 'walf-tune-'));
  walf(['tune', '--model', FIXTURE, '--target', target, '--preset', 'classroom', '--data', data, '--out', dir,
    '--max-epochs', '3', '--patience', '3']);
  const native = readFileSync(join(dir, 'training.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l)).filter((r) => r.step).map((r) => r.step);
  const perEpoch = native.filter((s) => s.epoch === 0).length;
  assert.equal(native.length, 3 * perEpoch);
  return { professions, native, perEpoch, target };
}

// On the Tune tab: the classroom preset towards `target`, three epochs, started.
async function startSmallRun(page, target = 'real-world') {
  await page.click('button[role=tab]:has-text("Tune")');
  await page.selectOption('section[aria-label=Tune] select.target', target);
  await page.click('#tune-preset-classroom');
  for (const [id, value] of [['#tune-epochs', '3'], ['#tune-patience', '3']]) {
    await page.fill(id, value);
    await page.dispatchEvent(id, 'change');
  }
  assert.equal(await page.isChecked('#tune-dropout'), false, 'the preset turns dropout off');
  await page.click('#tune-start');
  await page.waitForFunction(() => /after epoch 1/.test(document.querySelector('#tune-kept')?.textContent ?? ''),
    null, { timeout: LONG, polling: 100 });
}

e2e('a GPU error the engine cannot survive is said once: the results kept, nothing thrown in the page, and the CPU takes over', async () => {
  const server = await hubServer({ 'fixtures/tiny-bert': { dir: FIXTURE } });
  const page = await chrome.context.newPage();
  const errors = errorsOf(page);
  const reports = [];
  page.on('console', (m) => { if (/engine stopped/.test(m.text())) reports.push(m.text()); });
  try {
    await smallBenchmarkOnWebgpu(page, server, smallBenchmark());
    const onGpu = await chartValues(page);
    // Validation errors nothing captured, as a kernel the adapter cannot compile gives them (burn's
    // autotune did, on this SwiftShader): the engine panics on each, so its worker is done.
    const worker = page.workers().find((w) => w.url().includes('walf-worker-loader'));
    assert.ok(worker, 'the engine worker');
    assert.equal(await worker.evaluate(() => {
      for (let i = 0; i < 5; i++) {
        self.walfDevices.forEach((d) => d.dispatchEvent(new GPUUncapturedErrorEvent('uncapturederror',
          { error: new GPUValidationError('a shader the adapter rejects') })));
      }
      return self.walfDevices.length;
    }), 1);
    const offer = page.locator('.notice button:has-text("Continue on the CPU")');
    await offer.waitFor({ timeout: LONG });
    const message = await page.textContent('.notice');
    assert.match(message, /^the engine stopped unexpectedly: wgpu error: a shader the adapter rejects\. The GPU stopped working; every result so far is kept/);
    assert.doesNotMatch(message, /panicked at|\.rs:/, 'where the engine panicked is for the console');
    assertClose(await chartValues(page), onGpu, 0, 'the chart after the engine stopped');
    // whatever the stopped worker still had to say has arrived by now
    await page.waitForTimeout(3000);
    assert.equal(reports.length, 1, `the engine's end reported ${reports.length} times`);
    await offer.click();
    await page.waitForFunction(() => /CPU/.test(document.querySelector('.model-status')?.textContent ?? ''),
      null, { timeout: LONG, polling: 200 });
    await measured(page, () => page.click('button:has-text("Measure with these")'));
    assertClose(await chartValues(page), onGpu, 1e-4, 'on the CPU after the GPU failed');
    assert.equal(reports.length, 1);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    server.server.close();
  }
});

e2e('a WALF run interrupted by a reload goes on from its last kept epoch', async () => {
  // The real-world target with the classroom preset: the tracker and the sampled masked-LM term
  // must come back from the kept run as they were.
  const { professions, native, perEpoch } = smallRun();

  const server = await hubServer({ 'fixtures/tiny-bert': { dir: FIXTURE } });
  const address = `${app.url}?model=fixtures/tiny-bert&hub=${encodeURIComponent(server.url)}&backend=cpu&split=test`;
  const page = await chrome.context.newPage();
  const errors = errorsOf(page);
  try {
    await page.goto(address);
    await waitForRows(page, 45);
    await page.click('details.editor summary');
    await page.fill('#edit-professions', professions);
    await measured(page, () => page.click('button:has-text("Measure with these")'));
    await startSmallRun(page);
    await shot(page, 'tune-kept');

    // The reload ends the worker in the middle of the run.
    await page.reload();
    await page.waitForSelector('#resume-offer', { timeout: LONG });
    const offer = await page.textContent('#resume-offer');
    const [, epochsDone] = offer.match(/after epoch (\d+) of at most 3/) ?? [];
    assert.ok(epochsDone, `the offer says: ${offer}`);
    const k = Number(epochsDone);
    assert.ok(k >= 1 && k < 3, `kept after epoch ${k}`);
    await shot(page, 'resume-offer');
    await waitForRows(page, 45);
    await page.click('#resume-run');
    // The curves so far come back at once; the first new step goes on from the kept weights.
    const first = k * perEpoch + 1;
    // Read in the page in one go: the table re-renders its rows as steps arrive.
    const loss = Number(await (await page.waitForFunction((n) =>
      document.querySelector(`.step-row[data-step="${n}"]`)?.dataset.totalLoss, first, { timeout: LONG })).jsonValue());
    const want = native[first - 1].total_loss;
    assert.ok(Math.abs(loss - want) / Math.abs(want) < 1e-4, `step ${first}: page ${loss}, uninterrupted ${want}`);
    console.log(`resumed after epoch ${k}: step ${first} loss ${loss} (uninterrupted run ${want})`);
    await page.waitForFunction(() => /finished after 3 epochs/.test(document.querySelector('#tune-status')?.textContent ?? ''),
      null, { timeout: LONG, polling: 500 });
    const table = await page.$('#tune-steps-table');
    assert.equal(Number(await table.getAttribute('data-steps')), 3 * perEpoch, 'every step of the three epochs');
    assert.equal(Number(await table.getAttribute('data-epochs')), 3);
    assert.equal(await page.$('#resume-offer'), null);
    // λ and its scale per group are drawn for the real-world target
    for (const id of ['#curve-lambda', '#curve-scale']) assert.ok(await page.$(id), `${id} is drawn`);

    // A finished run is not kept: a reload offers nothing.
    await page.reload();
    await waitForRows(page, 45);
    await page.waitForTimeout(1000);
    assert.equal(await page.$('#resume-offer'), null, 'nothing to resume after a finished run');

    // Storage that is full: the run goes on, and the page says it is not kept.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(app.url).origin, quotaSize: 4096 });
    await page.click('details.editor summary');
    await page.fill('#edit-professions', professions);
    await measured(page, () => page.click('button:has-text("Measure with these")'));
    await page.click('button[role=tab]:has-text("Tune")');
    await page.click('#tune-start');
    await page.waitForFunction(() => /cannot be kept in the browser's storage/.test(document.querySelector('.notice')?.textContent ?? ''),
      null, { timeout: LONG, polling: 200 });
    const warning = await page.textContent('.notice');
    console.log(`full storage: ${warning}`);
    await page.waitForSelector('.step-row[data-step="4"]', { timeout: LONG });
    await page.click('#tune-stop');
    await page.waitForSelector('#tune-start:not([disabled])', { timeout: LONG });
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(app.url).origin });
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    server.server.close();
  }
});

e2e('a GPU lost in the middle of a run: a message, every result kept, and the run goes on on the CPU', async () => {
  // The equal target: its steps on SwiftShader take half as long as the real-world target's.
  const { professions, native, perEpoch } = smallRun('equal');
  const server = await hubServer({ 'fixtures/tiny-bert': { dir: FIXTURE } });
  const page = await chrome.context.newPage();
  const errors = errorsOf(page);
  try {
    await smallBenchmarkOnWebgpu(page, server, professions);
    const before = await chartValues(page);
    await startSmallRun(page, 'equal');
    // The GPU goes away as a driver reset would take it.
    const worker = page.workers().find((w) => w.url().includes('walf-worker-loader'));
    assert.ok(worker, 'the engine worker');
    assert.equal(await worker.evaluate(() => { self.walfDevices.forEach((d) => d.destroy()); return self.walfDevices.length; }), 1);
    const offer = page.locator('.notice button:has-text("Continue on the CPU")');
    await offer.waitFor({ timeout: LONG });
    const message = await page.textContent('.notice');
    assert.match(message, /GPU stopped working; every result so far is kept/);
    await shot(page, 'gpu-lost');
    // Every result so far is still on the page: the run's steps, and the chart.
    const stepsBefore = Number(await page.getAttribute('#tune-steps-table', 'data-steps'));
    assert.doesNotMatch(message, /Backtrace/);
    await page.click('button[role=tab]:has-text("Probe")');
    assertClose(await chartValues(page), before, 0, 'the chart after the GPU was lost');
    await page.click('button[role=tab]:has-text("Tune")');
    assert.ok(stepsBefore >= perEpoch, `${stepsBefore} steps shown`);
    await offer.click();
    await page.waitForFunction(() => /CPU/.test(document.querySelector('.model-status')?.textContent ?? ''),
      null, { timeout: LONG, polling: 200 });
    // The kept run goes on on the CPU from its last kept epoch.
    await page.waitForSelector('#resume-offer', { timeout: LONG });
    const [, epochsDone] = (await page.textContent('#resume-offer')).match(/after epoch (\d+) of at most 3/) ?? [];
    const k = Number(epochsDone);
    assert.ok(k >= 1 && k < 3, `kept after epoch ${k}`);
    await page.click('#resume-run');
    const first = k * perEpoch + 1;
    const loss = Number(await (await page.waitForFunction((n) =>
      document.querySelector(`.step-row[data-step="${n}"]`)?.dataset.totalLoss, first, { timeout: LONG })).jsonValue());
    const want = native[first - 1].total_loss;
    // epochs trained on the GPU, then on the CPU: the same run to the GPU's rounding
    assert.ok(Math.abs(loss - want) / Math.abs(want) < 1e-3, `step ${first}: page ${loss}, native ${want}`);
    console.log(`GPU lost after epoch ${k} (${message.trim()}); on the CPU, step ${first} loss ${loss} (native ${want})`);
    await page.click('#tune-stop');
    await page.waitForSelector('#tune-start:not([disabled])', { timeout: LONG });
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    server.server.close();
  }
});

e2e('a classroom lesson runs from its first step to its sixth on the bundled model', async () => {
  const page = await chrome.context.newPage();
  await page.setViewportSize({ width: 1400, height: 900 });
  const errors = errorsOf(page);
  const want = nativeProbe(['--split', 'test', '--target', 'equal']);
  const step = async (n) => page.waitForSelector(`section.lesson[data-step="${n}"]`, { timeout: LONG });
  try {
    await page.goto(`${app.url}?lesson=1&backend=cpu`);
    // 1. Predict: six professions, the class's guesses
    await step(1);
    await page.waitForFunction(() => document.querySelectorAll('.lesson-guess').length === 6, null,
      { timeout: LONG, polling: 200 });
    assert.equal(await page.$('button[role=tab]:visible'), null, 'the tabs give way to the lesson');
    const names = await page.$$eval('.lesson-guess', (li) => li.map((l) => l.dataset.profession));
    const guesses = new Map(names.map((n, i) => [n, i % 2 === 0 ? 'she' : 'he']));
    for (const [i, name] of names.entries()) {
      await page.click(`#lesson-guess-${i} .lean-${guesses.get(name)}`);
    }
    assert.equal(await page.getAttribute('#lesson-guess-0 .lean-she', 'aria-pressed'), 'true');
    await shot(page, 'lesson-1-predict');
    // 2. Reveal: the model's numbers are `walf probe`'s, each guess marked, the correlation said
    await page.click('#lesson-next');
    await step(2);
    const rows = await page.$$eval('.lesson-reveal tbody tr', (tr) => tr.map((r) => [r.dataset.profession, r.dataset.right]));
    assert.equal(rows.length, 6);
    let right = 0;
    for (const [name, marked] of rows) {
      const leansShe = want.get(name) > 0.5;
      const expected = (guesses.get(name) === 'she') === leansShe;
      assert.equal(marked, String(expected), `${name}: P(female) ${want.get(name)}, guessed ${guesses.get(name)}`);
      right += expected ? 1 : 0;
    }
    assert.equal(await page.textContent('#lesson-score'), `${right} of 6 guesses were right.`);
    assert.match(await page.textContent('#lesson-correlation'), /Spearman ρ = -?\d\.\d\d/);
    assert.equal((await page.$$('#probe-chart .chart-row')).length, want.size, 'then all of them');
    await shot(page, 'lesson-2-reveal');
    // 3. Choose a target, and the sentence to compare
    await page.click('#lesson-next');
    await step(3);
    await page.click('#lesson-target-real-world');
    assert.equal(await page.getAttribute('#lesson-target-real-world', 'aria-pressed'), 'true');
    await page.fill('#lesson-sentence', '[MASK] is a nurse.');
    await shot(page, 'lesson-3-choose');
    // 4. Tune: a short WALF run with the classroom preset; the chart moves with it
    await page.click('#lesson-next');
    await step(4);
    await page.waitForSelector('#lesson-tune-start:not([disabled])', { timeout: LONG });
    await page.fill('#lesson-steps', '3');
    await page.press('#lesson-steps', 'Tab');
    await page.click('#lesson-tune-start');
    await page.waitForFunction(() => /^Done/.test(document.querySelector('#lesson-tune-status')?.textContent ?? ''),
      null, { timeout: LONG, polling: 500 });
    assert.match(await page.textContent('#lesson-tune-status'), /step limit \(3 steps\)/);
    // the tuned model measured: each profession's dot after beside the one before
    await page.waitForFunction((n) => document.querySelectorAll('#probe-chart .chart-row[data-p-female-after]').length === n,
      want.size, { timeout: LONG, polling: 500 });
    await shot(page, 'lesson-4-tune');
    // 5. What did it cost: the masked-LM loss and the class's sentence, before and after
    await page.waitForSelector('#lesson-next:not([disabled])', { timeout: LONG });
    await page.click('#lesson-next');
    await step(5);
    await page.waitForFunction(() => /→/.test(document.querySelector('#lesson-loss')?.textContent ?? '')
      && !/…/.test(document.querySelector('#lesson-fill')?.textContent ?? ''), null, { timeout: LONG, polling: 500 });
    assert.match(await page.textContent('#lesson-loss'), /^\d+\.\d{3} → \d+\.\d{3} \([+-]\d+\.\d%\)$/);
    assert.match(await page.textContent('#lesson-fill'), /^\d+\.\d% before → \d+\.\d% after$/);
    await shot(page, 'lesson-5-cost');
    // 6. Share: a link with the tuned result, which opens as any link does
    await page.waitForSelector('#lesson-next:not([disabled])', { timeout: LONG });
    await page.click('#lesson-next');
    await step(6);
    const link = await page.inputValue('#lesson-link');
    assert.match(link, /#v1\./);
    await shot(page, 'lesson-6-share');
    const opened = await chrome.context.newPage();
    await opened.goto(link.replace(/^[^#]*/, app.url));
    await opened.waitForSelector('#tune-shared, .shared-banner', { timeout: LONG });
    assert.match(await opened.textContent('.shared-banner'), /real-world/);
    await opened.close();
    await page.click('#lesson-end');
    await page.waitForSelector('button[role=tab]', { state: 'visible', timeout: LONG });
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});
