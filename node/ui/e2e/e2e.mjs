// Browser test of the web UI: upload a small dataset, look at the plan,
// train to 100%, chat with the specialist side by side with the base, see
// it listed. Usage: node e2e.mjs ORCHMIND_BIN MODEL DATASET ARTIFACTS_DIR
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [bin, model, dataset, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'orchmind-e2e-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const url = `http://127.0.0.1:${port}/`;
const server = spawn(bin, ['serve', '--local-only', '--model', model, '--addr', `127.0.0.1:${port}`, '--adapters-dir', join(work, 'adapters')],
  { stdio: ['ignore', 'inherit', 'inherit'] });
const fail = (msg) => { console.error('e2e: ' + msg); server.kill(); process.exit(1); };

for (let i = 0; ; i++) {
  try { if ((await fetch(url + 'api/info')).ok) break; } catch {}
  if (i > 100) fail('the server did not start');
  await new Promise(r => setTimeout(r, 100));
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
  await page.click('#tab-adapters');
  await page.waitForFunction(() => document.querySelector('#loaded').textContent.includes('facts'));
  await page.screenshot({ path: join(artifacts, '4-adapters.png'), fullPage: true });
  console.log('e2e: upload → plan → train 100% → chat → listed: ok; screenshots in ' + artifacts);
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
  server.kill();
}
