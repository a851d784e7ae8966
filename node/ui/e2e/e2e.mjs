// Browser test of the web UI: upload a small dataset, look at the plan,
// train to 100%, chat with the specialist side by side with the base, see
// it listed. Then the black-box check of the API's cross-site defences:
// pages of another origin (another loopback port) and of a sandboxed frame
// (Origin: null) fire no-cors fetches and form posts at the node (train,
// upload, load, unload, pull, publish); the node must refuse every one and
// nothing may be trained, loaded, uploaded, pulled or published.
// Usage: node e2e.mjs ORCHMIND_BIN MODEL DATASET ARTIFACTS_DIR
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { attackPage, sandboxPage, attacksPerPage } from './attack.mjs';

const [bin, model, dataset, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'orchmind-e2e-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const url = `http://127.0.0.1:${port}/`;
const adaptersDir = join(work, 'adapters');
// A node with its swarm on loopback only (--local-only: no mDNS, NAT port
// mapping, relays or bootstrap peers), so
// that pull and publish are real routes.
const server = spawn(bin, ['node', '--model', model, '--api', `127.0.0.1:${port}`, '--adapters-dir', adaptersDir,
  '--data-dir', join(work, 'data'), '--listen', '/ip4/127.0.0.1/tcp/0', '--local-only'],
  { stdio: ['ignore', 'inherit', 'pipe'] });
// The node's log: refused requests are counted from it.
const refused = [];
let logTail = '';
server.stderr.on('data', (b) => {
  process.stderr.write(b);
  logTail += b.toString();
  const lines = logTail.split('\n');
  logTail = lines.pop();
  for (const l of lines) {
    if (!l.includes('msg="request refused"')) continue;
    const field = (k) => (l.match(new RegExp(` ${k}=("(?:[^"\\\\]|\\\\.)*"|\\S*)`)) || [])[1]?.replace(/^"|"$/g, '') ?? '';
    refused.push({ method: field('method'), path: field('path'), origin: field('origin') });
  }
});
const attacker = createServer();
const fail = (msg) => { console.error('e2e: ' + msg); server.kill(); attacker.close(); process.exit(1); };
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
const api = async (method, path, body) => {
  const r = await fetch(url + path.slice(1), { method, headers: body ? { 'Content-Type': 'application/json' } : {}, body: body && JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) fail(`${method} ${path}: ${r.status} ${j.error}`);
  return j;
};

for (let i = 0; ; i++) {
  try { if ((await fetch(url + 'api/info')).ok) break; } catch {}
  if (i > 300) fail('the node did not start');
  await sleep(100);
}
// The browser talks to the node on 127.0.0.1 and to nothing else: no name
// lookups (every host name fails except 127.0.0.1), no component updates,
// sign-in, safe browsing or other background requests to Google.
const localOnly = [
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-pings',
  '--disable-domain-reliability', '--disable-client-side-phishing-detection', '--no-first-run',
  '--disable-features=OptimizationHints,MediaRouter,DialMediaRouteProvider,Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', ...localOnly] });
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(120000);
  await page.goto(url);
  await page.setInputFiles('#files', dataset);
  await page.fill('#name', 'facts');
  await page.click('#analyse');
  await page.waitForSelector('#plan:not([hidden])');
  await page.screenshot({ path: join(artifacts, '1-plan.png'), fullPage: true });
  await page.click('#start');
  await page.waitForFunction(() => document.querySelector('#pct').textContent === '100%' && !document.querySelector('#try').hidden);
  await page.screenshot({ path: join(artifacts, '2-trained.png'), fullPage: true });
  await page.click('#try');
  await page.fill('#prompt', 'Who helps the farmer?');
  await page.click('#send');
  await page.waitForFunction(() => document.querySelector('#out-spec').textContent.includes('The kind girl helps the farmer.'));
  const base = await page.textContent('#out-base');
  if (base.includes('The kind girl helps the farmer.')) fail('the base model already knew the answer: the test proves nothing');
  await page.screenshot({ path: join(artifacts, '3-chat.png'), fullPage: true });
  // The conversation is kept: a second turn adds to it, in both columns.
  await page.fill('#prompt', 'What is the name of the red dog?');
  await page.click('#send');
  await page.waitForFunction(() => document.querySelectorAll('#out-spec p').length === 4 && !document.querySelector('#send').disabled);
  if ((await page.locator('#out-base p').count()) !== 4) fail('the base model\'s column did not keep the conversation');
  // A new conversation starts empty and the plain question is answered as taught.
  await page.click('#new-chat');
  await page.fill('#prompt', 'What is the name of the red dog?');
  await page.click('#send');
  await page.waitForFunction(() => document.querySelector('#out-spec').textContent.includes('The red dog is named Max.'));
  if ((await page.locator('#out-spec p').count()) !== 2) fail('New conversation did not start afresh');
  await page.screenshot({ path: join(artifacts, '3b-conversation.png'), fullPage: true });
  await page.click('#tab-adapters');
  await page.waitForFunction(() => document.querySelector('#loaded').textContent.includes('facts'));
  await page.screenshot({ path: join(artifacts, '4-adapters.png'), fullPage: true });
  console.log('e2e: upload → plan → train 100% → chat → listed: ok; screenshots in ' + artifacts);

  // Documents and spreadsheets: the picker keeps a .docx and a .csv (it
  // once dropped everything but .txt/.md/.jsonl/.json), shows the column
  // fields for the spreadsheet, and the plan reads both files.
  {
    const p = await browser.newPage();
    p.setDefaultTimeout(120000);
    await p.goto(url);
    let csv = 'id;pedido_do_cliente;resposta_final\n';
    for (let i = 0; i < 20; i++) csv += `${i};Qual é o pedido ${i}?;O pedido ${i} saiu hoje.\n`;
    await p.setInputFiles('#files', [
      { name: 'pedidos.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) },
      { name: 'farm.docx', mimeType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', buffer: readFileSync('trainer/data/testdata/docs/farm.docx') },
    ]);
    await p.waitForSelector('#csv-cols:not([hidden])');
    if (!(await p.textContent('#chosen')).startsWith('2 ')) fail('the picker did not keep the .csv and the .docx: ' + await p.textContent('#chosen'));
    await p.fill('#qcol', 'pedido_do_cliente');
    await p.fill('#acol', 'resposta_final');
    await p.fill('#name', 'docs');
    await p.click('#analyse');
    await p.waitForSelector('#plan:not([hidden])');
    const files = await p.textContent('#summary dd');
    if (files.trim() !== '2') fail('the plan did not read both files: files = ' + files);
    await p.screenshot({ path: join(artifacts, '4b-documents.png'), fullPage: true });
    await p.close();
    console.log('e2e: .csv with named columns + .docx → plan: ok');
  }

  // --- hostile pages ---
  const uploadsBefore = readdirSync(join(adaptersDir, '.uploads')).length;
  const target = {
    api: url.replace(/\/$/, ''),
    data: resolve(dataset), // a file the user can read, outside the node's folders
    adapter: join(adaptersDir, 'facts'),
    cid: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
  };
  attacker.on('request', (req, res) => {
    const body = req.url === '/attack.html' ? attackPage(target) : req.url === '/sandbox.html' ? sandboxPage(target) : null;
    res.writeHead(body ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(body ?? 'not found');
  });
  await new Promise(r => attacker.listen(0, '127.0.0.1', r));
  const other = `http://127.0.0.1:${attacker.address().port}`;
  for (const [pageName, origin] of [['attack.html', other], ['sandbox.html', 'null']]) {
    const p = await browser.newPage();
    await p.goto(`${other}/${pageName}`);
    await p.waitForFunction(() => document.title === 'sent', null, { timeout: 30000 });
    await p.screenshot({ path: join(artifacts, `5-${pageName.replace('.html', '')}.png`) });
    // Form posts land in frames: give them time to reach the node.
    const want = attacksPerPage;
    for (let i = 0; refused.filter(r => r.origin === origin).length < want.length && i < 100; i++) await sleep(100);
    const got = refused.filter(r => r.origin === origin);
    for (const w of want) {
      if (!got.some(r => r.method === 'POST' && r.path === w)) fail(`the node did not refuse POST ${w} from a page of origin ${origin} (refused: ${JSON.stringify(got)})`);
    }
    if (got.length !== want.length) fail(`${got.length} requests from origin ${origin} were refused, ${want.length} expected: ${JSON.stringify(got)}`);
    await p.close();
  }
  // Nothing happened: the one adapter loaded is still the one trained
  // through the UI, no job runs, no upload or folder was added, nothing
  // was pulled or published.
  await sleep(1000);
  const ad = await api('GET', '/api/adapters');
  const loaded = ad.loaded.map(a => a.name), local = ad.local.map(a => a.name);
  if (loaded.join() !== 'facts' || local.join() !== 'facts') fail(`the hostile pages changed the adapters: loaded ${loaded}, local ${local}`);
  const info = await api('GET', '/api/info');
  if (info.training) fail(`a hostile page started training job ${info.training}`);
  const uploadsAfter = readdirSync(join(adaptersDir, '.uploads')).length;
  if (uploadsAfter !== uploadsBefore) fail(`a hostile page stored an upload (${uploadsBefore} → ${uploadsAfter})`);
  const found = await api('POST', '/api/swarm/search', { query: '' });
  if (found.results.length) fail(`a hostile page published: ${JSON.stringify(found.results)}`);
  // The same publish from a real client works and shows in the search:
  // the check above could have seen one.
  const pub = await api('POST', '/api/swarm/publish', { name: 'facts' });
  const found2 = await api('POST', '/api/swarm/search', { query: '' });
  if (!found2.results.some(r => r.cid === pub.cid)) fail(`the control publish ${pub.cid} is not found by search: the check proves nothing`);
  console.log(`e2e: ${2 * attacksPerPage.length} no-cors fetches and form posts from ${other} and a sandboxed frame (Origin null): all refused; nothing trained, loaded, uploaded, pulled or published: ok`);
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
  attacker.close();
  server.kill();
}
