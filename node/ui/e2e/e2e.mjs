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
const server = spawn(bin, ['serve', '--model', model, '--addr', `127.0.0.1:${port}`, '--adapters-dir', join(work, 'adapters')],
  { stdio: ['ignore', 'inherit', 'inherit'] });
const fail = (msg) => { console.error('e2e: ' + msg); server.kill(); process.exit(1); };

for (let i = 0; ; i++) {
  try { if ((await fetch(url + 'api/info')).ok) break; } catch {}
  if (i > 100) fail('the server did not start');
  await new Promise(r => setTimeout(r, 100));
}
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
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
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
  server.kill();
}
