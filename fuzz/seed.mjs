// Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/ from the project's real files
// (fixture models, the bundled model, the benchmark data) and from links and requests written the
// way the app writes them. The corpora are generated, never committed. Usage: node fuzz/seed.mjs
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { deflateRawSync } from 'node:zlib';

const ROOT = resolve(import.meta.dirname, '..');
const CORPUS = join(ROOT, 'fuzz', 'corpus');
const FIXTURES = ['bert', 'bert-legacy', 'distilbert', 'roberta'].map((m) => join(ROOT, 'tests/fixtures/models', m));
const BUNDLED = join(ROOT, 'public/models/brown-bert');

function put(target, name, data) {
  mkdirSync(join(CORPUS, target), { recursive: true });
  writeFileSync(join(CORPUS, target, name), data);
}

// A share link as the app writes it: JSON, raw deflate, base64url, version prefix.
const link = (result) => `v1.${deflateRawSync(JSON.stringify(result), { level: 9 }).toString('base64url')}`;

// Seeds are (re)written in place: what a fuzzer has added to a corpus stays, and a fuzzer that
// is running keeps its folder.
for (const dir of [...FIXTURES, BUNDLED]) {
  const name = dir.split('/').pop();
  put('config_json', name, readFileSync(join(dir, 'config.json')));
  put('tokenizer_json', name, readFileSync(join(dir, 'tokenizer.json')));
}
// the tiny models only: libFuzzer's inputs stay small
for (const dir of FIXTURES) put('safetensors', dir.split('/').pop(), readFileSync(join(dir, 'model.safetensors')));

const tables = ['professions.tsv', 'templates.tsv', 'gendered_phrases.tsv']
  .map((f) => readFileSync(join(ROOT, 'public/data', f)));
const sep = Buffer.from([0xff]);
put('benchmark_tsv', 'bundled', Buffer.concat([tables[0], sep, tables[1], sep, tables[2]]));
const head = tables.map((t) => Buffer.from(t.toString().split('\n').slice(0, 4).join('\n')));
put('benchmark_tsv', 'short', Buffer.concat([head[0], sep, head[1], sep, head[2]]));

const professions = [
  { name: 'nurse', group: 'female_dominated', female_share: 0.87, p_female: 0.61 },
  { name: 'carpenter', group: 'male_dominated', female_share: 0.03, p_female: 0.2 },
  { name: 'baker', group: 'balanced', female_share: 0.5, p_female: 0.4 },
];
const plain = { model: 'bert-base-uncased', split: 'test', professions };
put('share_link', 'plain', link(plain));
put('share_link', 'tuned', link({
  ...plain,
  professions: professions.map((p) => ({ ...p, p_female_after: 0.5 })),
  tuning: {
    target: 'equal', lr: 2e-5, gamma: 0.1, beta: 0.95, batch_size: 8, epochs: 3,
    curve: Array.from({ length: 20 }, (_, i) => ({ step: i, kl: 0.1 / (i + 1), mlm_loss: 2.0 })),
  },
}));

const edits = { professions_tsv: null, templates_tsv: null, phrases_tsv: null };
const requests = {
  load: { kind: 'load', source: { kind: 'bundled', base: 'models/brown-bert' }, backend: 'auto' },
  hub: { kind: 'load', source: { kind: 'hub', id: 'bert-base-uncased', base: 'https://huggingface.co' }, backend: 'cpu' },
  probe: { kind: 'probe', job: 2, split: 'test', benchmark: edits },
  fill: { kind: 'fill', job: 3, text: '[MASK] is a nurse.', top: 10 },
  tune: {
    kind: 'tune_start', job: 4, benchmark: edits,
    settings: { target: 'real-world', gamma: 0.1, beta: 0.95, lr: 2e-5, batch_size: 8, max_epochs: 50, patience: 5, max_steps: null, dropout: true },
  },
  lm_loss: { kind: 'lm_loss', job: 5, text: 'the nurse said that she would come.' },
  pause: { kind: 'tune_pause' },
  restore: { kind: 'tune_restore', job: 6 },
  saved: { kind: 'saved_run' },
  discard: { kind: 'discard_saved_run' },
};
for (const [name, request] of Object.entries(requests)) put('engine_request', name, JSON.stringify(request));
