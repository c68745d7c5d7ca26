// The console page: fetches from this node's public read API (same origin only, no capability)
// and renders with DOM calls (never innerHTML, so no answer can inject markup). Every proof is
// checked here with verify.js; the server is trusted for nothing it shows as verified.

import * as v from './verify.js';
import { verifyBundle } from './bundle.js';

const POLL_MS = 5000;
const SAMPLES_MAX = 60; // 5 minutes of 5 s samples
const PAGE_LIMIT = 20;
const KEYS_STORE = 'ron-console/keys';
const CHECKPOINT_STORE = 'ron-console/checkpoint';

const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'polyline', 'line'].includes(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, val] of Object.entries(attrs)) if (val != null) el.setAttribute(k, val);
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : String(c));
  return el;
}

function show(id, ...children) {
  $(id).replaceChildren(...children.flat().filter((c) => c != null));
}

const short = (hash) => (hash ? `${hash.slice(0, 12)}…` : '—');
const link = (kind, id) => h('a', { href: `#${kind}/${id}` }, `${kind} ${id}`);
const table = (rows) => h('table', {}, rows.map(([k, val]) => h('tr', {}, h('th', {}, k), h('td', {}, val ?? '—'))));

/** GET a JSON answer from this node; errors carry the API's reason. */
async function get(path) {
  const r = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    const reason = body?.error?.reason ?? `status ${r.status}`;
    throw new Error(`${reason}${body?.error?.message ? `: ${body.error.message}` : ''}`);
  }
  return body;
}

function failure(e) {
  return h('p', { class: 'error' }, String(e.message ?? e));
}

// ---- cluster -----------------------------------------------------------------------------

const samples = [];
const leaderChanges = [];
let lastLeader;
let lastMembers = [];

async function refreshCluster() {
  const cluster = await get('/v1/cluster');
  const self = cluster.members.find((m) => m.id === cluster.node_id)?.status?.ok;
  show('served-by', `node ${cluster.node_id}${self ? ` · ${self.cluster_id}` : ''}`);
  const rows = cluster.members.map((m) => {
    const s = m.status.ok;
    if (!s) return h('tr', { 'data-member': m.id }, h('td', {}, m.id), h('td', { colspan: 8, class: 'error' }, m.status.error));
    const safe = s.safe_mode ? h('span', { class: 'bad' }, `${s.safe_mode_reason}: ${s.safe_mode}`) : 'no';
    return h('tr', { 'data-member': m.id, 'data-root': s.root ?? '' },
      h('td', {}, m.id), h('td', { class: `role-${s.role}` }, s.role), h('td', {}, s.term),
      h('td', {}, s.applied_index ?? '—'), h('td', {}, s.committed_index ?? '—'), h('td', {}, s.tree_size ?? '—'),
      h('td', { class: 'hash', title: s.root ?? '' }, short(s.root)), h('td', {}, safe),
      h('td', {}, `${s.version.release} (${String(s.version.commit).slice(0, 12)})`));
  });
  show('members', h('tr', {}, ['id', 'role', 'term', 'applied', 'committed', 'tree size', 'root', 'safe mode', 'version'].map((c) => h('th', {}, c))), rows);

  const views = cluster.members.map((m) => m.status.ok).filter(Boolean);
  const roots = new Set(views.map((s) => `${s.tree_size}/${s.root}`));
  const agreement = $('agreement');
  if (views.length === cluster.members.length && roots.size === 1) {
    agreement.className = 'banner good';
    agreement.textContent = `All ${views.length} members have the same root ${short(views[0].root)} at tree size ${views[0].tree_size}.`;
  } else {
    agreement.className = 'banner warn';
    agreement.textContent = `${views.length} of ${cluster.members.length} members answered; ${roots.size} distinct (tree size, root) pairs (members still applying differ for a moment).`;
  }
  const leader = self?.leader ?? null;
  if (leader !== lastLeader) {
    const was = lastLeader === undefined ? 'when this page opened' : `after ${lastLeader ?? 'none'}`;
    leaderChanges.unshift(`${new Date().toLocaleTimeString()}: leader ${leader ?? 'none'} (term ${self?.term}), ${was}`);
    leaderChanges.length = Math.min(leaderChanges.length, 20);
    lastLeader = leader;
    show('leaders', leaderChanges.map((t) => h('li', {}, t)));
  }
  lastMembers = cluster.members;
  renderCheckpoints();
  return self;
}

/** The counters the charts need, from Prometheus text. */
function scrape(text) {
  const value = (name) => {
    const m = text.match(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm'));
    return m ? Number(m[1]) : 0;
  };
  return {
    sum: value('committer_batch_latency_seconds_sum'),
    count: value('committer_batch_latency_seconds_count'),
    leaderChanges: value('raft_leader_changes_total'),
  };
}

async function sample(self) {
  const r = await fetch('/metrics', { cache: 'no-store' });
  const m = scrape(await r.text());
  samples.push({ at: performance.now(), events: Number(self?.tree_size ?? 0), ...m });
  if (samples.length > SAMPLES_MAX + 1) samples.shift();
  const rates = [];
  const latencies = [];
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1], samples[i]];
    rates.push(((b.events - a.events) * 1000) / Math.max(1, b.at - a.at));
    latencies.push(b.count > a.count ? ((b.sum - a.sum) / (b.count - a.count)) * 1000 : 0);
  }
  chart('throughput', rates);
  chart('latency', latencies);
  const last = (xs) => (xs.length ? xs[xs.length - 1].toFixed(1) : '—');
  $('throughput-label').textContent = `Events per second: ${last(rates)}`;
  $('latency-label').textContent = `Commit latency (mean ms per batch, on the leader): ${last(latencies)}`;
  $('leader-count').textContent = `Leader changes this node has seen since its process started (raft_leader_changes_total): ${m.leaderChanges}. Seen while this page is open:`;
}

function chart(id, values) {
  const max = Math.max(1e-9, ...values);
  const points = values.map((val, i) => `${(i * 300) / SAMPLES_MAX},${58 - (val / max) * 56}`).join(' ');
  show(id, h('line', { x1: 0, y1: 59, x2: 300, y2: 59, class: 'axis' }), values.length ? h('polyline', { points, class: 'series' }) : null);
}

async function pollCluster() {
  try {
    const self = await refreshCluster();
    await sample(self);
  } catch (e) {
    const agreement = $('agreement');
    agreement.className = 'banner bad';
    agreement.textContent = `Cannot read the cluster: ${e.message}`;
  }
  setTimeout(pollCluster, POLL_MS);
}

// ---- accounts and transfers ---------------------------------------------------------------

function verifyButton(kind, id) {
  return h('a', { class: 'button', href: `#verify/${kind}/${id}` }, 'Verify in this browser');
}

async function showAccount(id, cursor) {
  $('account-id').value = id;
  try {
    const a = await get(`/v1/accounts/${encodeURIComponent(id)}`);
    const page = await get(`/v1/accounts/${encodeURIComponent(id)}/transfers?order=desc&limit=${PAGE_LIMIT}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    const parts = [
      h('div', { class: 'record', 'data-account': a.id },
        table([['id', a.id], ['ledger', a.ledger], ['code', a.code], ['flags', a.flags.join(', ') || 'none'],
          ['debits posted', a.debits_posted], ['debits pending', a.debits_pending],
          ['credits posted', a.credits_posted], ['credits pending', a.credits_pending],
          ['balance (credits − debits, posted)', (BigInt(a.credits_posted) - BigInt(a.debits_posted)).toString()],
          ['created at (cluster ns)', a.timestamp]]),
        verifyButton('account', a.id)),
      h('h3', {}, 'Transfers (newest first)'),
      transferTable(page.transfers),
      page.next_cursor ? h('a', { class: 'button', href: `#account/${a.id}/${page.next_cursor}` }, 'Next page') : null,
    ];
    if (a.flags.includes('history')) {
      const hist = await get(`/v1/accounts/${encodeURIComponent(id)}/balance-history?order=desc&limit=${PAGE_LIMIT}`);
      parts.push(h('h3', {}, 'Balance history (newest first)'), h('div', { class: 'scroll' }, h('table', {},
        h('tr', {}, ['leaf', 'cluster time', 'debits posted', 'credits posted', 'debits pending', 'credits pending'].map((c) => h('th', {}, c))),
        hist.balances.map((b) => h('tr', {}, h('td', {}, b.leaf), h('td', {}, b.timestamp), h('td', {}, b.debits_posted),
          h('td', {}, b.credits_posted), h('td', {}, b.debits_pending), h('td', {}, b.credits_pending))))));
    }
    show('account', parts);
  } catch (e) {
    show('account', failure(e));
  }
}

function transferTable(transfers) {
  return h('div', { class: 'scroll' }, h('table', {},
    h('tr', {}, ['transfer', 'state', 'debit', 'credit', 'amount', 'flags'].map((c) => h('th', {}, c))),
    transfers.map((t) => h('tr', {}, h('td', {}, link('transfer', t.id)), h('td', {}, t.state),
      h('td', {}, link('account', t.debit_account_id)), h('td', {}, link('account', t.credit_account_id)),
      h('td', {}, t.amount), h('td', {}, t.flags.join(', '))))));
}

async function showTransfer(id) {
  $('transfer-id').value = id;
  try {
    const t = await get(`/v1/transfers/${encodeURIComponent(id)}`);
    const resolves = t.flags.includes('post_pending_transfer') ? 'posts' : t.flags.includes('void_pending_transfer') ? 'voids' : null;
    show('transfer', h('div', { class: 'record', 'data-transfer': t.id },
      table([['id', t.id], ['state', h('strong', { class: `state-${t.state}` }, t.state)],
        ['debit account', link('account', t.debit_account_id)], ['credit account', link('account', t.credit_account_id)],
        ['amount', t.amount], ['ledger', t.ledger], ['code', t.code], ['flags', t.flags.join(', ') || 'none'],
        [resolves ? `${resolves} pending transfer` : 'pending transfer', t.pending_id !== '0' ? link('transfer', t.pending_id) : '—'],
        ['timeout (s)', t.timeout], ['cluster time (ns)', t.timestamp]]),
      verifyButton('transfer', t.id)));
  } catch (e) {
    show('transfer', failure(e));
  }
}

// ---- trust: keys and the remembered checkpoint (local storage) --------------------------

function loadTrusted() {
  const text = localStorage.getItem(KEYS_STORE);
  return text ? v.parseKeys(JSON.parse(text)) : null;
}

/** Merge keys files (plain or `ronctl keys` shape) into one stored `{cluster_id, keys, history}`. */
function storeKeys(files) {
  const merged = { cluster_id: undefined, keys: {}, history: [] };
  const stored = localStorage.getItem(KEYS_STORE);
  for (const f of stored ? [JSON.parse(stored), ...files] : files) {
    v.parseKeys(f); // refuse a malformed file before storing anything
    const shaped = 'keys' in f;
    Object.assign(merged.keys, shaped ? f.keys : f);
    if (shaped && f.history) merged.history.push(...f.history.filter((r) => !merged.history.some((x) => x.kid === r.kid)));
    if (shaped && typeof f.cluster_id === 'string') {
      if (merged.cluster_id !== undefined && merged.cluster_id !== f.cluster_id) throw new Error(`keys of two clusters: ${merged.cluster_id} and ${f.cluster_id}`);
      merged.cluster_id = f.cluster_id;
    }
  }
  v.parseKeys(merged);
  localStorage.setItem(KEYS_STORE, JSON.stringify(merged));
}

function remembered() {
  const text = localStorage.getItem(CHECKPOINT_STORE);
  return text ? v.parseCheckpoint(JSON.parse(text)) : null;
}

function renderTrust() {
  let trusted;
  try {
    trusted = loadTrusted();
  } catch (e) {
    show('keys', failure(`stored keys are unreadable: ${e.message}`));
    return;
  }
  show('keys', trusted
    ? h('ul', { class: 'keys' }, [...trusted.keys].map(([kid, k]) => h('li', {}, h('code', {}, kid), ' ', h('span', { class: 'hash' }, short(v.toHex(k.publicKey))),
      k.last !== null ? ` (retired; sizes ${k.first}..${k.last})` : '')))
    : h('p', { class: 'warn' }, 'No trusted keys: nothing can be verified yet.'));
  try {
    const r = remembered();
    show('remembered', r
      ? table([['cluster', r.cluster_id], ['tree size', r.tree_size.toString()], ['root', h('span', { class: 'hash' }, v.toHex(r.root))], ['signed by', r.kid]])
      : h('p', {}, 'None yet: the first checkpoint verified becomes the anchor every later one must extend.'));
  } catch (e) {
    show('remembered', failure(`stored checkpoint is unreadable: ${e.message}`));
  }
  renderCheckpoints();
}

function renderCheckpoints(members = lastMembers) {
  let trusted = null;
  try {
    trusted = loadTrusted();
  } catch { /* shown by renderTrust */ }
  show('checkpoints', h('tr', {}, ['node', 'tree size', 'root', 'kid', 'signature'].map((c) => h('th', {}, c))),
    members.map((m) => {
      const c = m.checkpoint.ok;
      if (!c) return h('tr', {}, h('td', {}, m.id), h('td', { colspan: 4 }, m.checkpoint.error));
      let verdict;
      try {
        if (!trusted) throw new Error('no trusted keys');
        v.verifyCheckpointSignature(v.parseCheckpoint(c), trusted);
        verdict = h('span', { class: 'good' }, '✔ verified here');
      } catch (e) {
        verdict = h('span', { class: 'bad' }, `✘ ${e.message}`);
      }
      return h('tr', {}, h('td', {}, m.id), h('td', {}, c.tree_size), h('td', { class: 'hash', title: c.root }, short(c.root)), h('td', {}, h('code', {}, c.kid)), h('td', {}, verdict));
    }));
}

// ---- verification ------------------------------------------------------------------------

/** Fetch and verify one leaf, showing every step; returns true when verified. */
async function verify(kind, text) {
  if (!['transfer', 'account', 'leaf'].includes(kind)) return false;
  const steps = [];
  const render = (outcome) => show('verification', h('div', { class: `verification ${outcome}`, 'data-outcome': outcome },
    h('h3', {}, `${kind} ${text}: `, outcome === 'verified' ? 'VERIFIED' : outcome === 'failed' ? 'FAILED' : 'checking…'),
    h('ol', { class: 'steps' }, steps.map((s) => h('li', { class: s.ok ? 'ok' : 'fail' }, h('strong', {}, s.name), ' ', s.detail)))));
  const step = (name, detail) => {
    steps.push({ name, detail, ok: true });
    render('running');
  };
  location.hash = '#proofs';
  try {
    const id = v.parseId(text);
    const trusted = loadTrusted();
    if (!trusted) throw new Error('no trusted keys: load a keys file or trust the members\' keys first');
    const offered = v.parseCheckpoint(await get('/v1/checkpoints/latest'));
    step('fetched checkpoint', `tree size ${offered.tree_size}, root ${short(v.toHex(offered.root))}`);
    const cp = await v.acceptCheckpoint({
      remembered: remembered(), offered, trusted, clusterId: trusted.clusterId, step,
      consistency: async (from, to) => v.parseConsistency(await get(`/v1/proofs/consistency?from=${from}&to=${to}`)),
    });
    localStorage.setItem(CHECKPOINT_STORE, JSON.stringify(v.checkpointJson(cp)));
    renderTrust();
    if (kind === 'leaf' && id >= cp.tree_size) {
      throw new v.VerifyError('BeyondCheckpoint', `leaf ${id} is not in the checkpoint's tree of ${cp.tree_size} leaves`);
    }
    const param = kind === 'leaf' ? 'leaf' : `${kind}_id`;
    const answer = v.parseInclusionAnswer(await get(`/v1/proofs/inclusion?tree_size=${cp.tree_size}&${param}=${id}`));
    step('fetched inclusion proof', `leaf ${answer.proof.leaf_index}, ${answer.proof.path.length} path hashes`);
    v.checkInclusion({ [kind]: id }, cp, answer, step);
    render('verified');
    return true;
  } catch (e) {
    steps.push({ name: e.code ?? 'error', detail: e.message, ok: false });
    render('failed');
    renderTrust();
    return false;
  }
}

async function verifyBundleFile(file) {
  try {
    const trusted = loadTrusted();
    if (!trusted) throw new Error('no trusted keys: load a keys file first');
    const r = verifyBundle(JSON.parse(await file.text()), trusted);
    show('bundle', h('p', { class: 'good', 'data-outcome': 'verified' },
      `OK: ${r.events} events [${r.from}, ${r.to}) verified against checkpoint size ${r.checkpoint.tree_size} root ${v.toHex(r.checkpoint.root)} signed by ${r.checkpoint.kid} (${r.accounts} accounts, ${r.transfers} transfers, ${r.expiries} expiries, ${r.rejected} rejected)`));
  } catch (e) {
    show('bundle', h('p', { class: 'bad', 'data-outcome': 'failed' }, `FAILED: ${e.message}`));
  }
}

// ---- wiring ------------------------------------------------------------------------------

function route() {
  const [page, a, b] = (location.hash.slice(1) || 'cluster').split('/');
  if (page === 'verify') {
    verify(a, b);
    return;
  }
  for (const s of document.querySelectorAll('.page')) s.classList.toggle('current', s.id === (page === 'account' ? 'accounts' : page === 'transfer' ? 'transfers' : page));
  if (page === 'account' && a) showAccount(a, b);
  if (page === 'transfer' && a) showTransfer(a);
}

function start() {
  $('account-form').addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = `#account/${$('account-id').value.trim()}`;
  });
  $('transfer-form').addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = `#transfer/${$('transfer-id').value.trim()}`;
  });
  $('verify-form').addEventListener('submit', (e) => {
    e.preventDefault();
    verify($('verify-kind').value, $('verify-id').value.trim());
  });
  $('keys-file').addEventListener('change', async (e) => {
    try {
      storeKeys(await Promise.all([...e.target.files].map(async (f) => JSON.parse(await f.text()))));
    } catch (err) {
      show('keys', failure(`keys file refused: ${err.message}`));
      return;
    }
    renderTrust();
  });
  $('keys-tofu').addEventListener('click', async () => {
    try {
      const cluster = await get('/v1/cluster');
      storeKeys(cluster.members.map((m) => m.keys.ok).filter(Boolean));
      renderTrust();
    } catch (err) {
      show('keys', failure(err));
    }
  });
  $('keys-forget').addEventListener('click', () => {
    localStorage.removeItem(KEYS_STORE);
    renderTrust();
  });
  $('remembered-forget').addEventListener('click', () => {
    localStorage.removeItem(CHECKPOINT_STORE);
    renderTrust();
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files[0]) verifyBundleFile(e.dataTransfer.files[0]);
  });
  $('bundle-file').addEventListener('change', (e) => e.target.files[0] && verifyBundleFile(e.target.files[0]));
  window.addEventListener('hashchange', route);
  renderTrust();
  route();
  pollCluster();
}

start();
