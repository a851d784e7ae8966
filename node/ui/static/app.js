// orchmind web UI: plain JavaScript, no network access beyond this node.
'use strict';

const T = {
  en: {
    'tab.train': 'Train', 'tab.chat': 'Chat', 'tab.adapters': 'Adapters', 'tab.swarm': 'Swarm',
    'train.title': 'Teach the model your own texts',
    'train.intro': 'Drop your files (.txt, .md, .jsonl, .json, .csv, .pdf, .docx, .odt, .html) or pick a folder. Nothing leaves this computer.',
    'train.lossStep': 'loss at each step', 'train.lossAvg': 'average of the last steps', 'train.lossEval': 'loss on held-out examples', 'train.lossNow': 'now',
    'chat.new': 'New conversation', 'chat.you': 'You',
    'sum.shortened': 'Long examples shortened (answers kept whole)',
    'train.drop': 'Drop files or a folder here, or click to choose files',
    'train.pickFiles': 'Choose files', 'train.pickFolder': 'Choose a folder',
    'train.name': 'Name of your specialist', 'train.analyse': 'Look at my data',
    'train.csvHelp': 'Spreadsheet columns (leave empty to find them by name: question/answer, pergunta/resposta, prompt/completion…)',
    'train.qcol': 'Question column', 'train.acol': 'Answer column',
    'train.summary': 'Your data', 'train.settings': 'Settings chosen for you',
    'train.settingsHelp': 'You can change any of them; each one says why it was chosen.',
    'train.setting': 'Setting', 'train.value': 'Value', 'train.why': 'Why',
    'train.start': 'Start training', 'train.progress': 'Training', 'train.eta': 'time left', 'train.tps': 'tokens/s',
    'train.stop': 'Stop', 'train.try': 'Chat with it',
    'train.chosen': n => `${n} file(s) chosen`,
    'train.done': (name, a, b) => `Done: “${name}” is ready and plugged in. Error on your data went from ${a} to ${b}.`,
    'train.stopped': 'Stopped. A checkpoint was saved.',
    'train.failed': 'Training failed: ',
    'sum.examples': 'Examples', 'sum.train': 'For training', 'sum.eval': 'Held out to check progress',
    'sum.tokens': 'Tokens (word pieces)', 'sum.longest': 'Longest example (tokens)', 'sum.duplicates': 'Duplicates removed',
    'sum.skipped': 'Records skipped', 'sum.files': 'Files', 'sum.steps': 'Training steps',
    'chat.title': 'Base model and specialist, side by side', 'chat.adapter': 'Specialist', 'chat.max': 'Length',
    'chat.prompt': 'Your text', 'chat.send': 'Send',
    'chat.greedy': 'Both answers use the most likely words (no randomness), so the difference is the specialist\'s.',
    'chat.base': 'Base model', 'chat.spec': 'Specialist', 'chat.none': '(no specialist plugged in)',
    'ad.title': 'Specialists plugged into the model', 'ad.name': 'Name', 'ad.rank': 'Rank', 'ad.scale': 'Strength',
    'ad.local': 'On this computer', 'ad.base': 'Base model', 'ad.path': 'Adapter folder', 'ad.load': 'Plug in',
    'ad.unload': 'Unplug', 'ad.set': 'Set', 'ad.bake': 'Make fast', 'ad.unbake': 'Undo fast', 'ad.other': 'other base',
    'ad.none': 'None yet.',
    'sw.title': 'Share with other people',
    'sw.off': 'The peer-to-peer network is not running: this page was started with “orchmind serve”. Start “orchmind node” to search, download and publish specialists.',
    'sw.search': 'Search', 'sw.thisBase': 'only for this base model', 'sw.go': 'Search',
    'sw.publish': 'Publish a specialist', 'sw.publishGo': 'Publish', 'sw.pull': 'Download and plug in',
    'sw.published': cid => `Published as ${cid}`, 'sw.peers': n => `${n} peer(s) connected`, 'sw.net': (r, n, by, dht) => `Reachable: ${({public: 'public', 'nat-relay': 'behind NAT, through relays (direct after hole punching)', nat: 'behind NAT, outgoing only', unknown: 'not known yet', 'local-only': 'local-only'})[r] || r} · ${n} orchmind peer(s)${by ? ' (' + by + ')' : ''} · public DHT ${dht ? 'on' : 'off'}`, 'sw.noResults': 'Nothing found.',
  },
  pt: {
    'tab.train': 'Treinar', 'tab.chat': 'Conversar', 'tab.adapters': 'Adaptadores', 'tab.swarm': 'Rede',
    'train.title': 'Ensine o modelo com os seus próprios textos',
    'train.intro': 'Solte seus arquivos (.txt, .md, .jsonl, .json, .csv, .pdf, .docx, .odt, .html) ou escolha uma pasta. Nada sai deste computador.',
    'train.lossStep': 'erro em cada passo', 'train.lossAvg': 'média dos últimos passos', 'train.lossEval': 'erro nos exemplos separados', 'train.lossNow': 'agora',
    'chat.new': 'Nova conversa', 'chat.you': 'Você',
    'sum.shortened': 'Exemplos longos encurtados (respostas inteiras)',
    'train.drop': 'Solte arquivos ou uma pasta aqui, ou clique para escolher arquivos',
    'train.pickFiles': 'Escolher arquivos', 'train.pickFolder': 'Escolher uma pasta',
    'train.name': 'Nome do seu especialista', 'train.analyse': 'Analisar meus dados',
    'train.csvHelp': 'Colunas da planilha (deixe vazio para achá-las pelo nome: question/answer, pergunta/resposta, prompt/completion…)',
    'train.qcol': 'Coluna das perguntas', 'train.acol': 'Coluna das respostas',
    'train.summary': 'Seus dados', 'train.settings': 'Configurações escolhidas para você',
    'train.settingsHelp': 'Você pode mudar qualquer uma; cada uma diz por que foi escolhida.',
    'train.setting': 'Configuração', 'train.value': 'Valor', 'train.why': 'Por quê',
    'train.start': 'Começar o treino', 'train.progress': 'Treinando', 'train.eta': 'tempo restante', 'train.tps': 'tokens/s',
    'train.stop': 'Parar', 'train.try': 'Conversar com ele',
    'train.chosen': n => `${n} arquivo(s) escolhido(s)`,
    'train.done': (name, a, b) => `Pronto: “${name}” está treinado e conectado. O erro nos seus dados caiu de ${a} para ${b}.`,
    'train.stopped': 'Parado. Um ponto de retomada foi salvo.',
    'train.failed': 'O treino falhou: ',
    'sum.examples': 'Exemplos', 'sum.train': 'Para treino', 'sum.eval': 'Separados para medir o progresso',
    'sum.tokens': 'Tokens (pedaços de palavras)', 'sum.longest': 'Maior exemplo (tokens)', 'sum.duplicates': 'Duplicados removidos',
    'sum.skipped': 'Registros ignorados', 'sum.files': 'Arquivos', 'sum.steps': 'Passos de treino',
    'chat.title': 'Modelo base e especialista, lado a lado', 'chat.adapter': 'Especialista', 'chat.max': 'Tamanho',
    'chat.prompt': 'Seu texto', 'chat.send': 'Enviar',
    'chat.greedy': 'As duas respostas usam as palavras mais prováveis (sem sorteio), então a diferença vem do especialista.',
    'chat.base': 'Modelo base', 'chat.spec': 'Especialista', 'chat.none': '(nenhum especialista conectado)',
    'ad.title': 'Especialistas conectados ao modelo', 'ad.name': 'Nome', 'ad.rank': 'Posto', 'ad.scale': 'Intensidade',
    'ad.local': 'Neste computador', 'ad.base': 'Modelo base', 'ad.path': 'Pasta do adaptador', 'ad.load': 'Conectar',
    'ad.unload': 'Desconectar', 'ad.set': 'Aplicar', 'ad.bake': 'Acelerar', 'ad.unbake': 'Desfazer aceleração', 'ad.other': 'outra base',
    'ad.none': 'Nenhum ainda.',
    'sw.title': 'Compartilhar com outras pessoas',
    'sw.off': 'A rede ponto a ponto não está ativa: esta página foi aberta com “orchmind serve”. Use “orchmind node” para buscar, baixar e publicar especialistas.',
    'sw.search': 'Buscar', 'sw.thisBase': 'só para este modelo base', 'sw.go': 'Buscar',
    'sw.publish': 'Publicar um especialista', 'sw.publishGo': 'Publicar', 'sw.pull': 'Baixar e conectar',
    'sw.published': cid => `Publicado como ${cid}`, 'sw.peers': n => `${n} par(es) conectado(s)`, 'sw.net': (r, n, by, dht) => `Alcançável: ${({public: 'público', 'nat-relay': 'atrás de NAT, por relays (direto após hole punching)', nat: 'atrás de NAT, só conexões de saída', unknown: 'ainda não se sabe', 'local-only': 'só local'})[r] || r} · ${n} par(es) orchmind${by ? ' (' + by + ')' : ''} · DHT pública ${dht ? 'ligada' : 'desligada'}`, 'sw.noResults': 'Nada encontrado.',
  },
};

let lang = localStorage.getItem('orchmind.lang') || ((navigator.language || '').toLowerCase().startsWith('pt') ? 'pt' : 'en');
const $ = id => document.getElementById(id);
const t = (k, ...a) => { const v = (T[lang] || T.en)[k] ?? T.en[k] ?? k; return typeof v === 'function' ? v(...a) : v; };

function applyLang() {
  document.documentElement.lang = lang === 'pt' ? 'pt-BR' : 'en';
  document.querySelectorAll('[data-i18n]').forEach(el => { el.textContent = t(el.dataset.i18n); });
  $('lang').textContent = lang === 'pt' ? 'EN' : 'PT';
  refreshAdapters();
}
$('lang').addEventListener('click', () => { lang = lang === 'pt' ? 'en' : 'pt'; localStorage.setItem('orchmind.lang', lang); applyLang(); });

// --- helpers ---
function showError(msg) { const e = $('error'); e.textContent = msg; e.hidden = !msg; }
async function api(method, path, body) {
  // The node takes changes only as JSON (or an upload from this page):
  // every POST says application/json, an empty one included.
  const opt = { method, headers: {} };
  if (body instanceof FormData) opt.body = body;
  else if (body !== undefined || method !== 'GET') { opt.body = JSON.stringify(body ?? {}); opt.headers['Content-Type'] = 'application/json'; }
  const r = await fetch(path, opt);
  const j = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(j.error || `${r.status}`);
  return j;
}
function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const k of kids) e.append(k);
  return e;
}
function button(label, onclick, cls) { const b = el('button', { type: 'button', textContent: label }); b.onclick = onclick; if (cls) b.className = cls; return b; }
const fmt = x => (x === undefined || x === null) ? '—' : (typeof x === 'number' && !Number.isInteger(x) ? x.toPrecision(4) : String(x));
function fmtETA(ns) {
  if (!ns) return '—';
  let s = Math.round(ns / 1e9); const h = Math.floor(s / 3600); s -= h * 3600; const m = Math.floor(s / 60); s -= m * 60;
  return (h ? h + 'h ' : '') + (h || m ? m + 'min ' : '') + s + 's';
}

// --- tabs ---
const tabs = ['train', 'chat', 'adapters', 'swarm'];
function showTab(name) {
  for (const n of tabs) {
    $('tab-' + n).setAttribute('aria-selected', String(n === name));
    $(n).hidden = n !== name;
  }
  if (name !== 'train') refreshAdapters();
}
tabs.forEach(n => $('tab-' + n).addEventListener('click', () => showTab(n)));
document.querySelector('nav').addEventListener('keydown', ev => {
  const i = tabs.findIndex(n => $('tab-' + n).getAttribute('aria-selected') === 'true');
  if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
    const j = (i + (ev.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length;
    showTab(tabs[j]); $('tab-' + tabs[j]).focus();
  }
});

// --- node info ---
let info = null;
async function loadInfo() {
  try {
    info = await api('GET', '/api/info');
    const b = info.base;
    $('base-line').textContent = `${b.name} · ${b.type} · ${b.layers}×${b.dim} · ${b.fingerprint.slice(0, 19)}…`;
    $('sw-off').hidden = info.swarm;
    $('sw-on').disabled = !info.swarm;
    if (info.training) follow(info.training);
  } catch (e) { showError(e.message); }
}

// --- train ---
let chosen = [];
function setChosen(files) {
  // The same extensions the node's data stage reads (trainer/data).
  chosen = files.filter(f => /\.(txt|md|markdown|text|jsonl|json|csv|tsv|pdf|docx|odt|html?|xhtml)$/i.test(f.name));
  $('csv-cols').hidden = !chosen.some(f => /\.(csv|tsv)$/i.test(f.name));
  $('chosen').textContent = t('train.chosen', chosen.length) + (chosen.length ? ': ' + chosen.slice(0, 5).map(f => f.name).join(', ') + (chosen.length > 5 ? '…' : '') : '');
  $('analyse').disabled = chosen.length === 0;
  if (!$('name').value && chosen.length) $('name').value = chosen[0].name.replace(/\..*$/, '').replace(/[^A-Za-z0-9._-]/g, '_');
}
$('pick-files').onclick = () => $('files').click();
$('pick-folder').onclick = () => $('folder').click();
$('files').onchange = e => setChosen([...e.target.files]);
$('folder').onchange = e => setChosen([...e.target.files]);
const drop = $('drop');
drop.onclick = () => $('files').click();
drop.onkeydown = e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); $('files').click(); } };
drop.ondragover = e => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = async e => {
  e.preventDefault(); drop.classList.remove('over');
  const entries = [...e.dataTransfer.items].map(i => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) { setChosen([...e.dataTransfer.files]); return; }
  const out = [];
  const walk = async en => {
    if (en.isFile) { out.push(await new Promise((res, rej) => en.file(res, rej))); return; }
    const rd = en.createReader();
    for (;;) {
      const batch = await new Promise((res, rej) => rd.readEntries(res, rej));
      if (!batch.length) break;
      for (const c of batch) await walk(c);
    }
  };
  for (const en of entries) await walk(en);
  setChosen(out);
};

let upload = null;
const hpFields = [
  ['epochs', 'int'], ['learning_rate', 'float'], ['rank', 'int'], ['alpha', 'float'],
  ['batch_size', 'int'], ['grad_accum', 'int'], ['max_seq_len', 'int'],
  ['warmup_steps', 'int'], ['eval_fraction', 'float'], ['patience', 'int'],
  ['stop_train_loss', 'float'], ['dropout', 'float'],
];
$('analyse').onclick = async () => {
  showError('');
  const fd = new FormData();
  if ($('name').value) fd.append('name', $('name').value);
  if (!$('csv-cols').hidden && $('qcol').value && $('acol').value) {
    fd.append('question_column', $('qcol').value); fd.append('answer_column', $('acol').value);
  }
  for (const f of chosen) fd.append('files', f, f.webkitRelativePath || f.name);
  $('analyse').disabled = true;
  try {
    const p = await api('POST', '/api/train/plan', fd);
    upload = p.upload;
    $('name').value = p.name;
    const s = p.summary, sd = $('summary');
    sd.replaceChildren();
    for (const [k, v] of [['sum.files', s.files], ['sum.examples', s.examples], ['sum.train', s.train], ['sum.eval', s.eval],
      ['sum.tokens', s.tokens], ['sum.longest', s.longest], ['sum.shortened', s.shortened || 0], ['sum.duplicates', s.duplicates],
      ['sum.skipped', (s.skipped || []).length + (s.skip_reasons ? ' (' + Object.entries(s.skip_reasons).map(([r, n]) => n + ' × ' + r).join('; ') + ')' : '')],
      ['sum.steps', p.plan.total_steps]]) sd.append(el('dt', { textContent: t(k) }), el('dd', { textContent: fmt(v) }));
    const tb = document.querySelector('#hp tbody');
    tb.replaceChildren();
    for (const [k, kind] of hpFields) {
      const inp = el('input', { type: 'number', step: kind === 'int' ? '1' : 'any', value: p.plan[k], id: 'hp-' + k });
      inp.dataset.json = k; inp.dataset.kind = kind; inp.dataset.orig = String(p.plan[k]);
      const lab = el('label', { htmlFor: inp.id, textContent: k });
      tb.append(el('tr', {}, el('td', {}, lab), el('td', {}, inp), el('td', { className: 'muted', textContent: (p.plan.why || {})[k] || '' })));
    }
    $('plan').hidden = false;
  } catch (e) { showError(e.message); } finally { $('analyse').disabled = chosen.length === 0; }
};

$('start').onclick = async () => {
  showError('');
  const overrides = {};
  document.querySelectorAll('#hp input').forEach(i => {
    if (i.value !== '' && i.value !== i.dataset.orig) overrides[i.dataset.json] = i.dataset.kind === 'int' ? parseInt(i.value, 10) : parseFloat(i.value);
  });
  try {
    const req = { upload, name: $('name').value, overrides };
    if (!$('csv-cols').hidden && $('qcol').value && $('acol').value) { req.question_column = $('qcol').value; req.answer_column = $('acol').value; }
    const j = await api('POST', '/api/train', req);
    follow(j.id);
  } catch (e) { showError(e.message); }
};

let losses = [], avgs = [], evals = [], jobID = null, source = null;
function follow(id) {
  if (source) source.close();
  jobID = id; losses = []; avgs = []; evals = [];
  $('progress-box').hidden = false; $('try').hidden = true; $('stop').disabled = false; $('start').disabled = true;
  $('train-msg').textContent = '';
  source = new EventSource(`/api/train/${id}/events`);
  source.addEventListener('progress', m => {
    const ev = JSON.parse(m.data);
    if (ev.percent !== undefined) { $('bar').value = ev.percent; $('pct').textContent = Math.round(ev.percent) + '%'; $('bar').setAttribute('aria-valuenow', ev.percent); }
    $('phase').textContent = ev.phase + (ev.message ? ': ' + ev.message : '');
    if (ev.eta_ns) $('eta').textContent = fmtETA(ev.eta_ns);
    if (ev.tokens_per_s) $('tps').textContent = Math.round(ev.tokens_per_s);
    // Each step's own loss, the smoothed line beside it, and the held-out
    // loss when there is an eval split; the final event holds the figures
    // of the summary.
    if (ev.phase === 'train' && ev.loss) { losses.push([ev.step, ev.loss]); if (ev.loss_avg) avgs.push([ev.step, ev.loss_avg]); }
    if (ev.eval_loss) evals.push([ev.step || (losses.length ? losses[losses.length - 1][0] : 0), ev.eval_loss]);
    if (ev.loss) $('loss-now').textContent = ev.loss.toFixed(4) + (ev.eval_loss ? ' · ' + ev.eval_loss.toFixed(4) : '');
    drawChart();
  });
  source.addEventListener('job', m => {
    source.close(); source = null;
    const j = JSON.parse(m.data);
    $('stop').disabled = true; $('start').disabled = false;
    if (j.state === 'done') {
      $('bar').value = 100; $('pct').textContent = '100%'; $('eta').textContent = '0s';
      $('train-msg').textContent = t('train.done', j.name, fmt(j.result && j.result.train_loss_before), fmt(j.result && j.result.train_loss_after));
      $('try').hidden = false;
    } else if (j.state === 'stopped') $('train-msg').textContent = t('train.stopped');
    else showError(t('train.failed') + (j.error || j.state));
    refreshAdapters();
  });
}
$('stop').onclick = async () => { try { await api('POST', `/api/train/${jobID}/stop`); } catch (e) { showError(e.message); } };
$('try').onclick = async () => { await refreshAdapters(); $('chat-adapter').value = $('name').value; showTab('chat'); $('prompt').focus(); };

function drawChart() {
  const c = $('chart'), g = c.getContext('2d'), W = c.width, H = c.height, pad = 30;
  g.clearRect(0, 0, W, H);
  const all = losses.concat(avgs, evals);
  if (all.length < 2) return;
  const xs = all.map(p => p[0]), ys = all.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || 1, y0 = Math.min(...ys), y1 = Math.max(...ys);
  const X = x => pad + (W - 2 * pad) * (x - x0) / ((x1 - x0) || 1), Y = y => H - pad - (H - 2 * pad) * (y - y0) / ((y1 - y0) || 1);
  g.strokeStyle = '#d0d7de'; g.beginPath(); g.moveTo(pad, pad); g.lineTo(pad, H - pad); g.lineTo(W - pad, H - pad); g.stroke();
  g.fillStyle = '#57606a'; g.font = '12px sans-serif';
  g.fillText(y1.toFixed(3), 2, pad - 4); g.fillText(y0.toFixed(3), 2, H - pad + 14);
  const line = (pts, color, width) => { if (pts.length < 1) return; g.strokeStyle = color; g.lineWidth = width; g.beginPath(); pts.forEach((p, i) => i ? g.lineTo(X(p[0]), Y(p[1])) : g.moveTo(X(p[0]), Y(p[1]))); g.stroke(); };
  line(losses, '#9ec5f0', 1); line(avgs, '#0b62c4', 2); line(evals, '#d4a72c', 2);
  g.fillStyle = '#d4a72c'; evals.forEach(p => { g.beginPath(); g.arc(X(p[0]), Y(p[1]), 3, 0, 7); g.fill(); });
  c.setAttribute('aria-label', `loss ${losses.length ? losses[losses.length - 1][1].toFixed(3) : ''}`);
}

// --- chat ---
// Each side keeps its conversation and sends it whole to /api/chat, which
// formats it with the template the specialist was trained with.
let convBase = [], convSpec = [];
function bubble(out, who, text) {
  const p = el('p', { className: who === 'you' ? 'you' : '', textContent: (who === 'you' ? t('chat.you') + ': ' : '') + text });
  out.append(p);
  return p;
}
async function stream(body, out) {
  const p = bubble(out, 'model', '');
  const r = await fetch('/api/chat', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) { const j = await r.json().catch(() => ({})); throw new Error(j.error || r.statusText); }
  const rd = r.body.getReader(), dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { done, value } = await rd.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      const c = JSON.parse(line);
      if (c.error) throw new Error(c.error);
      p.textContent += (c.message || {}).content || '';
    }
  }
  return p.textContent;
}
async function turn(conv, body, out) {
  conv.push({ role: 'user', content: body.prompt });
  bubble(out, 'you', body.prompt);
  const answer = await stream({ ...body.req, messages: conv }, out);
  conv.push({ role: 'assistant', content: answer.trim() });
}
$('send').onclick = async () => {
  showError('');
  const prompt = $('prompt').value.trim(), n = parseInt($('chat-n').value, 10) || 64, ad = $('chat-adapter').value;
  if (!prompt) return;
  const req = { options: { temperature: 0, num_predict: n }, stream: true };
  $('send').disabled = true;
  try {
    await Promise.all([
      turn(convBase, { prompt, req }, $('out-base')),
      ad ? turn(convSpec, { prompt, req: { ...req, adapter: ad } }, $('out-spec')) : Promise.resolve($('out-spec').textContent = t('chat.none')),
    ]);
    $('prompt').value = '';
  } catch (e) { showError(e.message); } finally { $('send').disabled = false; }
};
function newChat() { convBase = []; convSpec = []; $('out-base').replaceChildren(); $('out-spec').replaceChildren(); }
$('new-chat').onclick = newChat;
$('prompt').addEventListener('keydown', e => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('send').click(); } });

// --- adapters ---
async function refreshAdapters() {
  let a;
  try { a = await api('GET', '/api/adapters'); } catch (e) { showError(e.message); return; }
  const sel = $('chat-adapter'), keep = sel.value, pub = $('sw-pub');
  sel.replaceChildren(); pub.replaceChildren();
  for (const x of a.loaded) { sel.append(el('option', { value: x.name, textContent: x.name })); pub.append(el('option', { value: x.name, textContent: x.name })); }
  if ([...sel.options].some(o => o.value === keep)) sel.value = keep;
  $('spec-title').textContent = t('chat.spec') + (sel.value ? ': ' + sel.value : '');
  const tb = document.querySelector('#loaded tbody');
  tb.replaceChildren();
  if (!a.loaded.length) tb.append(el('tr', {}, el('td', { colSpan: 4, className: 'muted', textContent: t('ad.none') })));
  for (const x of a.loaded) {
    const sc = el('input', { type: 'number', step: '0.1', min: '-8', max: '8', value: x.scale, ariaLabel: t('ad.scale') + ' ' + x.name });
    const act = async (fn) => { showError(''); try { await fn(); } catch (e) { showError(e.message); } refreshAdapters(); };
    tb.append(el('tr', {},
      el('td', { textContent: x.name + (x.warning ? ' ⚠' : ''), title: x.warning || x.dir || '' }),
      el('td', { textContent: x.rank }),
      el('td', {}, sc, ' ', button(t('ad.set'), () => act(() => api('POST', '/api/adapters/scale', { name: x.name, scale: parseFloat(sc.value) })))),
      el('td', {},
        button(x.baked ? t('ad.unbake') : t('ad.bake'), () => act(() => api('POST', '/api/adapters/bake', { name: x.name, off: x.baked }))), ' ',
        button(t('ad.unload'), () => act(() => api('POST', '/api/adapters/unload', { name: x.name }))))));
  }
  const lb = document.querySelector('#local tbody');
  lb.replaceChildren();
  for (const x of a.local) {
    if (x.loaded) continue;
    const load = button(t('ad.load'), async () => { showError(''); try { await api('POST', '/api/adapters/load', { path: x.dir }); } catch (e) { showError(e.message); } refreshAdapters(); });
    lb.append(el('tr', {}, el('td', { textContent: x.name }), el('td', { textContent: (x.base_name || '?') + (x.this_base ? '' : ' (' + t('ad.other') + ')') }), el('td', {}, load)));
  }
}
$('chat-adapter').onchange = () => { $('spec-title').textContent = t('chat.spec') + ': ' + $('chat-adapter').value; newChat(); };
$('load').onclick = async () => { showError(''); try { await api('POST', '/api/adapters/load', { path: $('load-path').value }); } catch (e) { showError(e.message); } refreshAdapters(); };

// --- swarm ---
$('sw-go').onclick = async () => {
  showError('');
  try {
    const r = await api('POST', '/api/swarm/search', { query: $('sw-q').value, base_fingerprint: $('sw-this').checked ? 'this' : '' });
    const tb = document.querySelector('#sw-results tbody');
    tb.replaceChildren();
    if (!r.results.length) tb.append(el('tr', {}, el('td', { colSpan: 3, className: 'muted', textContent: t('sw.noResults') })));
    for (const x of r.results) {
      tb.append(el('tr', {}, el('td', { textContent: x.name, title: (x.description || '') + (x.publisher ? '\n' + x.publisher : '') }), el('td', {}, el('code', { textContent: x.cid })),
        el('td', {}, button(t('sw.pull'), async () => { showError(''); try { await api('POST', '/api/swarm/pull', { cid: x.cid }); } catch (e) { showError(e.message); } refreshAdapters(); }))));
    }
    const p = await api('GET', '/api/swarm/peers');
    let txt = t('sw.peers', p.peers.length);
    if (p.network) {
      const by = Object.entries(p.network.by_source || {}).map(([s, n]) => `${s} ${n}`).join(', ');
      txt += ' · ' + t('sw.net', p.network.reachability, p.network.orchmind_peers, by, p.network.public_dht);
    }
    $('sw-peers').textContent = txt;
  } catch (e) { showError(e.message); }
};
$('sw-pub-go').onclick = async () => {
  showError('');
  try { const r = await api('POST', '/api/swarm/publish', { name: $('sw-pub').value }); $('sw-peers').textContent = t('sw.published', r.cid); } catch (e) { showError(e.message); }
};

applyLang();
loadInfo();
