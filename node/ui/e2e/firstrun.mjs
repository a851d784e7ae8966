// Browser test of the first-run page: a fresh data folder, `orchmind` alone.
// 1. The page lists the base found in an Ollama store laid out as Ollama
//    does, and the recommended bases; one is pulled from a local fake Ollama
//    registry (slowed down) with a moving progress bar, then the node starts
//    on it and the page becomes the node's UI.
// 2. In another fresh folder, in Portuguese, the local model is picked with "Use".
// Usage: node firstrun.mjs ORCHMIND_BIN MODEL ARTIFACTS_DIR
import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [bin, model, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'orchmind-firstrun-'));
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
const procs = [];
const fail = (msg) => { console.error('firstrun: ' + msg); for (const p of procs) p.kill(); process.exit(1); };

// A real GGUF of the test model, laid out in an Ollama store.
const gguf = join(work, 'tiny.gguf');
execFileSync(bin, ['model', 'convert', model, '--out', gguf, '--quant', 'q8_0'], { stdio: 'inherit' });
const blob = readFileSync(gguf);
const digest = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const manifest = (b) => JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: digest(Buffer.from('{}')), size: 2 },
  layers: [{ mediaType: 'application/vnd.ollama.image.model', digest: digest(b), size: b.length }],
});
const store = join(work, 'ollama');
mkdirSync(join(store, 'blobs'), { recursive: true });
mkdirSync(join(store, 'manifests', 'registry.ollama.ai', 'library', 'tiny'), { recursive: true });
writeFileSync(join(store, 'blobs', digest(blob).replace(':', '-')), blob);
writeFileSync(join(store, 'manifests', 'registry.ollama.ai', 'library', 'tiny', '1b'), manifest(blob));

// A fake Ollama registry serving gemma3:270m (the same weights), slowly.
const blobs = { [digest(blob)]: blob, [digest(Buffer.from('{}'))]: Buffer.from('{}') };
const registry = createServer(async (req, res) => {
  const m = req.url.match(/^\/v2\/library\/gemma3\/(manifests|blobs)\/(.+)$/);
  if (!m) { res.writeHead(404).end(); return; }
  if (m[1] === 'manifests') {
    if (m[2] !== '270m') { res.writeHead(404).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'); return; }
    res.writeHead(200, { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' }).end(manifest(blob));
    return;
  }
  const b = blobs[m[2]];
  if (!b) { res.writeHead(404).end(); return; }
  res.writeHead(200, { 'Content-Length': b.length, 'Content-Type': 'application/octet-stream' });
  const step = Math.max(4096, Math.ceil(b.length / 40));
  for (let off = 0; off < b.length; off += step) {
    res.write(b.subarray(off, off + step));
    await sleep(50);
  }
  res.end();
});
await new Promise(r => registry.listen(0, '127.0.0.1', r));
const registryURL = `http://127.0.0.1:${registry.address().port}`;

async function firstRun(name, act) {
  const home = join(work, name);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env = { ...process.env, ORCHMIND_HOME: home, OLLAMA_MODELS: store, HF_HOME: join(work, 'hf'),
    ORCHMIND_OLLAMA_REGISTRY: registryURL, ORCHMIND_NO_BROWSER: '1' };
  for (const kv of [['api', `127.0.0.1:${port}`], ['listen', '/ip4/127.0.0.1/tcp/0'], ['mdns', 'false'], ['public-dht', 'off']]) {
    execFileSync(bin, ['config', 'set', ...kv], { env, stdio: 'inherit' });
  }
  const p = spawn(bin, [], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  procs.push(p);
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; ; i++) {
    try { if ((await fetch(url + 'api/setup/models')).ok) break; } catch {}
    if (i > 300) fail(name + ': the setup page did not start');
    await sleep(100);
  }
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(120000);
    await page.goto(url);
    await page.waitForSelector('#local tr[data-spec="ollama:tiny:1b"]');
    const rec = await page.$$eval('#recommended tbody tr', rows => rows.map(r => r.dataset.spec));
    for (const want of ['ollama:gemma3:270m', 'ollama:gemma3:1b', 'ollama:qwen3:0.6b', 'ollama:smollm2:360m', 'ollama:llama3.2:1b']) {
      if (!rec.includes(want)) fail(`${name}: recommended list lacks ${want}: ${rec}`);
    }
    await act(page);
    // The node replaces the setup page on the same address.
    await page.waitForFunction(() => (document.querySelector('#base-line')?.textContent || '').length > 0);
    const line = await page.textContent('#base-line');
    await page.screenshot({ path: join(artifacts, `firstrun-${name}-node.png`), fullPage: true });
    return line;
  } finally {
    await browser.close();
    p.kill();
  }
}

const pulled = await firstRun('pull', async (page) => {
  await page.screenshot({ path: join(artifacts, 'firstrun-1-choose.png'), fullPage: true });
  await page.click('#recommended tr[data-spec="ollama:gemma3:270m"] button');
  await page.waitForFunction(() => { const b = document.querySelector('#pull-bar'); return b.value > 0 && b.value < b.max; });
  await page.screenshot({ path: join(artifacts, 'firstrun-2-pulling.png'), fullPage: true });
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('Starting the node'));
});
if (!pulled.startsWith('gemma3:270m')) fail('after pulling, the node runs ' + pulled);
const picked = await firstRun('local', async (page) => {
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('#local-title').textContent === 'Neste computador');
  await page.screenshot({ path: join(artifacts, 'firstrun-3-pt.png'), fullPage: true });
  await page.click('#local tr[data-spec="ollama:tiny:1b"] button');
});
if (!picked.startsWith('tiny:1b')) fail('after picking the local model, the node runs ' + picked);
registry.close();
console.log('firstrun: local model listed, recommended listed, pull with progress → node, pick local → node: ok');
