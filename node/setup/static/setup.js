'use strict';
// The first-run page: list bases, pull one with progress, make it the base.
const $ = (id) => document.getElementById(id);

const T = {
  en: {
    intro: 'First run: choose the base model your specialists will be trained on.',
    local: 'On this computer', none: "No base models found in orchmind's folder, Ollama's store or the Hugging Face cache.",
    model: 'Model', from: 'From', size: 'Size', arch: 'Architecture', quant: 'Quantization', fits: 'Fits for training',
    rec: 'Recommended small bases', name: 'Name', download: 'Download', other: 'Or pull another:', pull: 'Pull', use: 'Use',
    pulling: 'Pulling', free: (n) => n + ' of memory free for training.', yes: 'yes', no: 'no', needs: 'needs',
    asking: 'asking the registry…', of: 'of', done: 'done: ', starting: (m) => 'Starting the node with ' + m + '…',
    stopped: 'the pull stopped before the end: try again (it resumes)',
  },
  pt: {
    intro: 'Primeira execução: escolha o modelo base sobre o qual seus especialistas serão treinados.',
    local: 'Neste computador', none: 'Nenhum modelo base encontrado na pasta do orchmind, no Ollama ou no cache do Hugging Face.',
    model: 'Modelo', from: 'Origem', size: 'Tamanho', arch: 'Arquitetura', quant: 'Quantização', fits: 'Cabe para treinar',
    rec: 'Modelos base pequenos recomendados', name: 'Nome', download: 'Download', other: 'Ou baixe outro:', pull: 'Baixar', use: 'Usar',
    pulling: 'Baixando', free: (n) => n + ' de memória livre para treinar.', yes: 'sim', no: 'não', needs: 'precisa de',
    asking: 'consultando o registro…', of: 'de', done: 'pronto: ', starting: (m) => 'Iniciando o nó com ' + m + '…',
    stopped: 'o download parou antes do fim: tente de novo (ele continua de onde parou)',
  },
};
let lang = localStorage.getItem('orchmind.lang') || ((navigator.language || '').toLowerCase().startsWith('pt') ? 'pt' : 'en');
const t = (k, ...a) => { const v = (T[lang] || T.en)[k] ?? T.en[k] ?? k; return typeof v === 'function' ? v(...a) : v; };
let last = null;

function applyLang() {
  document.documentElement.lang = lang === 'pt' ? 'pt-BR' : 'en';
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $('lang').textContent = lang === 'pt' ? 'EN' : 'PT';
  if (last) render(last);
}
$('lang').addEventListener('click', () => { lang = lang === 'pt' ? 'en' : 'pt'; localStorage.setItem('orchmind.lang', lang); applyLang(); });

function human(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + ' GB';
  if (n >= 1e6) return (n / 1e6).toFixed(0) + ' MB';
  if (n >= 1e3) return (n / 1e3).toFixed(0) + ' KB';
  return n + ' B';
}

function showError(msg) {
  const e = $('error');
  e.textContent = msg;
  e.hidden = !msg;
}

function fitsText(m) {
  if (m.fits === 'yes') return t('yes') + ' (' + t('needs') + ' ~' + human(m.need) + ')';
  if (m.fits === 'no') return t('no') + ': ' + t('needs') + ' ~' + human(m.need);
  return '? (' + t('needs') + ' ~' + human(m.need) + ')';
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function button(td, label, onclick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', onclick);
  td.appendChild(b);
  return b;
}

async function load() {
  const r = await fetch('/api/setup/models');
  const d = await r.json();
  if (!r.ok) throw new Error(d.error || r.statusText);
  last = d;
  render(d);
}

function render(d) {
  $('free').textContent = d.free > 0 ? t('free', human(d.free)) : '';
  const lb = $('local').querySelector('tbody');
  lb.replaceChildren();
  $('local').hidden = d.local.length === 0;
  $('local-none').hidden = d.local.length !== 0;
  for (const m of d.local) {
    const tr = document.createElement('tr');
    tr.dataset.spec = m.spec;
    cell(tr, m.spec);
    cell(tr, m.source);
    cell(tr, human(m.size));
    cell(tr, m.problem ? '? (' + m.problem + ')' : (m.arch || '-'));
    cell(tr, m.quant || '-');
    cell(tr, fitsText(m), m.fits === 'no' ? 'no' : '');
    button(cell(tr, ''), t('use'), () => use(m.spec));
    lb.appendChild(tr);
  }
  const rb = $('recommended').querySelector('tbody');
  rb.replaceChildren();
  for (const m of d.recommended) {
    const tr = document.createElement('tr');
    tr.dataset.spec = m.spec;
    cell(tr, m.title);
    cell(tr, m.spec.replace(/^ollama:/, ''));
    cell(tr, human(m.size));
    cell(tr, fitsText(m), m.fits === 'no' ? 'no' : '');
    const td = cell(tr, '');
    if (m.here) button(td, t('use'), () => use(m.spec));
    else button(td, t('pull'), () => pull(m.spec));
    rb.appendChild(tr);
  }
}

function busy(on) {
  for (const b of document.querySelectorAll('button')) b.disabled = on;
}

async function pull(name) {
  showError('');
  busy(true);
  $('pulling').hidden = false;
  $('pull-name').textContent = name;
  $('pull-bar').value = 0;
  $('pull-text').textContent = t('asking');
  try {
    const r = await fetch('/api/setup/pull', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name }),
    });
    if (!r.ok) {
      const d = await r.json().catch(() => ({}));
      throw new Error(d.error || r.statusText);
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let result = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = 'message', data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        const d = JSON.parse(data || '{}');
        if (event === 'progress') {
          $('pull-bar').max = d.total || 1;
          $('pull-bar').value = d.done;
          $('pull-text').textContent = human(d.done) + ' ' + t('of') + ' ' + human(d.total);
        } else if (event === 'error') {
          throw new Error(d.error);
        } else if (event === 'done') {
          result = d;
        }
      }
    }
    if (!result) throw new Error(t('stopped'));
    $('pull-bar').value = $('pull-bar').max;
    $('pull-text').textContent = t('done') + result.path;
    await use(result.spec);
  } catch (e) {
    showError(String(e.message || e));
    busy(false);
  }
}

async function use(spec) {
  showError('');
  busy(true);
  try {
    const r = await fetch('/api/setup/use', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: spec }),
    });
    const d = await r.json();
    if (!r.ok) throw new Error(d.error || r.statusText);
    $('status').textContent = t('starting', d.model);
    waitForNode();
  } catch (e) {
    showError(String(e.message || e));
    busy(false);
  }
}

// The node replaces this page on the same address once its base is loaded.
function waitForNode() {
  setTimeout(async () => {
    try {
      const r = await fetch('/api/info');
      const d = await r.json();
      if (d.base && !d.setup) {
        location.reload();
        return;
      }
    } catch (e) { /* the node is starting */ }
    waitForNode();
  }, 500);
}

$('other').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const n = $('other-name').value.trim();
  if (n) pull(n);
});

applyLang();
load().catch((e) => showError(String(e.message || e)));
