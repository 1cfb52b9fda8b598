// Local HTTP servers for the end-to-end tests: the built app (dist/), and a stand-in for the
// Hugging Face Hub that serves fixture models at the Hub's `resolve` addresses.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.json': 'application/json',
  '.tsv': 'text/tab-separated-values',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown',
  '.safetensors': 'application/octet-stream',
};

function listen(server) {
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

// `replaced`: { '/path': text } served instead of the built files (a broken helper script).
export async function staticServer(root, replaced = {}) {
  root = resolve(root);
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path in replaced) {
      const body = Buffer.from(replaced[path]);
      res.writeHead(200, { 'content-type': TYPES[extname(path)], 'content-length': body.length });
      res.end(body);
      return;
    }
    let file = normalize(join(root, path));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': body.length });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await listen(server);
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// repos: { 'owner/name': { dir, files?: { name: Buffer | null } } }; a null file is a 404.
// Weights are sent in small slow chunks, so that the page's progress bar can be seen.
export async function hubServer(repos) {
  const log = [];
  const server = createServer(async (req, res) => {
    const cors = { 'access-control-allow-origin': '*' };
    const m = new URL(req.url, 'http://x').pathname.match(/^\/(.+)\/resolve\/main\/([^/]+)$/);
    const repo = m && repos[decodeURIComponent(m[1])];
    log.push(req.url);
    if (!repo) {
      res.writeHead(404, cors).end('Repository not found');
      return;
    }
    const name = m[2];
    let body = repo.files?.[name];
    if (body === null) {
      res.writeHead(404, cors).end('Entry not found');
      return;
    }
    if (body === undefined) {
      try {
        body = await readFile(join(repo.dir, name));
      } catch {
        res.writeHead(404, cors).end('Entry not found');
        return;
      }
    }
    res.writeHead(200, { ...cors, 'content-type': 'application/octet-stream', 'content-length': body.length });
    if (name.endsWith('.safetensors')) {
      const chunk = Math.max(4096, Math.ceil(body.length / 40));
      for (let i = 0; i < body.length; i += chunk) {
        res.write(body.subarray(i, i + chunk));
        await sleep(40);
      }
      res.end();
    } else {
      res.end(body);
    }
  });
  await listen(server);
  return { server, log, url: `http://127.0.0.1:${server.address().port}` };
}
