// transformers.js on onnxruntime-web's WASM backend, doing a probe's work: every distinct masked
// sentence of the split through the masked LM in batches, and the log-softmax of the candidate
// ids at each sentence's masked positions. Served by tests/e2e/peer-bench.mjs, which maps
// /tjs/ to the package's browser build, /ort/ to onnxruntime-web's files and /peer-models/ to the
// exported models (tests/reference/export_peer.py).
import { env, AutoTokenizer, AutoModelForMaskedLM } from '/tjs/transformers.min.js';

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = '/peer-models/';
env.useBrowserCache = false;
env.backends.onnx.wasm.wasmPaths = '/ort/';

// One pass over the sentences; returns the seconds it took and each sentence's log-probs.
async function pass(tokenizer, model, sentences, candidates, batch) {
  const maskId = BigInt(tokenizer.mask_token_id);
  const out = [];
  let inModel = 0;
  const started = performance.now();
  for (let start = 0; start < sentences.length; start += batch) {
    const chunk = sentences.slice(start, start + batch);
    const enc = tokenizer(chunk.map((s) => s.text), { padding: true });
    const before = performance.now();
    const { logits } = await model(enc);
    inModel += performance.now() - before;
    const [, len, vocab] = logits.dims;
    const ids = enc.input_ids.data;
    const data = logits.data;
    chunk.forEach((s, row) => {
      let first = 0;
      while (first < len && ids[row * len + first] !== maskId) first++;
      const rows = [];
      for (let k = 0; k < s.n; k++) {
        const at = (row * len + first + k) * vocab;
        let max = -Infinity;
        for (let v = 0; v < vocab; v++) if (data[at + v] > max) max = data[at + v];
        let sum = 0;
        for (let v = 0; v < vocab; v++) sum += Math.exp(data[at + v] - max);
        const lse = max + Math.log(sum);
        rows.push(candidates.map((c) => data[at + c] - lse));
      }
      out.push(rows);
    });
  }
  return { seconds: (performance.now() - started) / 1000, modelSeconds: inModel / 1000, logProbs: out };
}

window.peerProbe = async ({ model: name, threads, batch }) => {
  env.backends.onnx.wasm.numThreads = threads;
  const data = await (await fetch(`/peer-models/${name}/sentences.json`)).json();
  const loadStart = performance.now();
  const tokenizer = await AutoTokenizer.from_pretrained(name);
  const model = await AutoModelForMaskedLM.from_pretrained(name, { dtype: 'fp32', device: 'wasm' });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const cold = await pass(tokenizer, model, data.sentences, data.candidate_ids, batch);
  // the answers checked against PyTorch's before any figure counts
  let largest = 0;
  data.sentences.forEach((s, i) => s.log_probs.forEach((row, k) => row.forEach((want, c) => {
    largest = Math.max(largest, Math.abs(cold.logProbs[i][k][c] - want));
  })));
  const warm = await pass(tokenizer, model, data.sentences, data.candidate_ids, batch);
  await model.dispose();
  return {
    sentences: data.sentences.length,
    loadSeconds,
    coldSeconds: cold.seconds,
    warmSeconds: warm.seconds,
    // the forward passes alone; the rest is tokenizing and the softmax over the vocabulary
    warmModelSeconds: warm.modelSeconds,
    largestDifference: largest,
    crossOriginIsolated: self.crossOriginIsolated,
  };
};
window.peerReady = true;
