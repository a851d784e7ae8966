// Hostile pages for the browser test: what any web site the user visits can
// send to the node without a CORS preflight. attackPage is served from
// another origin (another loopback port); sandboxPage runs the same attack
// inside a sandboxed iframe, whose requests carry "Origin: null".

// fetches are no-cors POSTs with text/plain bodies that hold JSON (the old
// API parsed them), plus one multipart upload built from a Blob.
const fetches = (t) => [
  { path: '/api/train', body: JSON.stringify({ data: t.data, name: 'pwned-train' }) },
  { path: '/api/train/plan', body: JSON.stringify({ data: t.data, name: 'pwned-plan' }) },
  { path: '/api/adapters/load', body: JSON.stringify({ path: t.adapter, name: 'pwned-load' }) },
  { path: '/api/adapters/unload', body: JSON.stringify({ name: 'facts' }) },
  { path: '/api/swarm/pull', body: JSON.stringify({ cid: t.cid, name: 'pwned-pull' }) },
  { path: '/api/swarm/publish', body: JSON.stringify({ name: 'facts' }) },
];
const uploadPath = '/api/train';

// forms are classic form posts into hidden frames: text/plain with the
// name='{"…":"' value='"}' trick that makes the body JSON, urlencoded, and
// multipart.
const forms = (t) => [
  { path: '/api/train', enctype: 'text/plain', fields: [[`{"data":${JSON.stringify(t.data)},"name":"pwned-form","x":"`, '"}']] },
  { path: '/api/adapters/load', enctype: 'application/x-www-form-urlencoded', fields: [['path', t.adapter], ['name', 'pwned-form-load']] },
  { path: '/api/swarm/pull', enctype: 'multipart/form-data', fields: [['cid', t.cid]] },
  { path: '/api/swarm/publish', enctype: 'text/plain', fields: [['{"name":"facts","x":"', '"}']] },
];

// attacksPerPage lists the path of every POST one page sends, in order.
export const attacksPerPage = [
  ...fetches({}).map(f => f.path), uploadPath, ...forms({}).map(f => f.path),
];

// script is the attack; done() runs when every request has been sent.
const script = (t, done) => `
const api = ${JSON.stringify(t.api)};
(async () => {
  const sent = [];
  for (const a of ${JSON.stringify(fetches(t))}) {
    sent.push(fetch(api + a.path, { mode: 'no-cors', method: 'POST', body: a.body }).catch(() => {}));
  }
  const fd = new FormData();
  fd.append('name', 'pwned-upload');
  fd.append('files', new Blob(['{"prompt": "q?", "completion": " a"}\\n'.repeat(40)]), 'evil.jsonl');
  sent.push(fetch(api + ${JSON.stringify(uploadPath)}, { mode: 'no-cors', method: 'POST', body: fd }).catch(() => {}));
  // A request the node accepted may take long (a pull waits for
  // providers): the test judges from the node's side, not from here.
  await Promise.all(sent.map(p => Promise.race([p, new Promise(r => setTimeout(r, 5000))])));
  ${JSON.stringify(forms(t))}.forEach((f, i) => {
    const sink = document.createElement('iframe');
    sink.name = 'sink' + i;
    document.body.append(sink);
    const form = document.createElement('form');
    form.method = 'POST';
    form.action = api + f.path;
    form.enctype = f.enctype;
    form.target = sink.name;
    for (const [n, v] of f.fields) {
      const input = document.createElement('input');
      input.type = 'hidden';
      input.name = n;
      input.value = v;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
  });
  ${done}
})();`;

const html = (body) => `<!doctype html><html><head><meta charset="utf-8"><title>loading</title></head><body>${body}</body></html>`;

export function attackPage(t) {
  return html(`<h1>A page of another site</h1><script>${script(t, "document.title = 'sent';")}</script>`);
}

export function sandboxPage(t) {
  const inner = html(`<p>sandboxed frame</p><script>${script(t, "parent.postMessage('sent', '*');")}</script>`);
  return html(`<h1>A sandboxed frame (Origin: null)</h1>
<iframe id="f" sandbox="allow-scripts allow-forms" width="600" height="300"></iframe>
<script>
addEventListener('message', (e) => { if (e.data === 'sent') document.title = 'sent'; });
document.getElementById('f').srcdoc = ${JSON.stringify(inner).replace(/</g, '\\u003c')};
</script>`);
}
