// The browser verifier against docs/proof-vectors.json (what the Rust verifier reproduces in
// ledger/tests/proof_vectors.rs) and against every tampering client/tests/malicious.rs makes a
// lying server commit: each must be refused with the error the Rust SDK gives.
//
// Run: cd console && node --test test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as ed from '@noble/ed25519';
import * as v from '../src/verify.js';
import { BUNDLE_FORMAT, verifyBundle } from '../src/bundle.js';

const vectors = JSON.parse(readFileSync(new URL('../../docs/proof-vectors.json', import.meta.url)));
const hex = (h) => v.fromHex(h);

// ---- an independent tree builder (the generation side of PROOFS.md §2-4) ---------------

function split(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function mth(hashes) {
  if (hashes.length === 0) return v.emptyRoot();
  if (hashes.length === 1) return hashes[0];
  const k = split(hashes.length);
  return v.nodeHash(mth(hashes.slice(0, k)), mth(hashes.slice(k)));
}

function path(m, hashes) {
  if (hashes.length <= 1) return [];
  const k = split(hashes.length);
  return m < k
    ? [...path(m, hashes.slice(0, k)), mth(hashes.slice(k))]
    : [...path(m - k, hashes.slice(k)), mth(hashes.slice(0, k))];
}

function subproof(m, hashes, complete) {
  const n = hashes.length;
  if (m === n) return complete ? [] : [mth(hashes)];
  const k = split(n);
  return m <= k
    ? [...subproof(m, hashes.slice(0, k), complete), mth(hashes.slice(k))]
    : [...subproof(m - k, hashes.slice(k), false), mth(hashes.slice(0, k))];
}

function u64le(i) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(i), true);
  return out;
}

// ---- the vectors -------------------------------------------------------------------------

test('hashes, roots and inclusion proofs match the vectors', () => {
  assert.equal(v.toHex(v.emptyRoot()), vectors.empty_root);
  const leaves = vectors.leaves.map((_, i) => v.leafHash(u64le(i)));
  assert.deepEqual(leaves.map(v.toHex), vectors.leaves);
  assert.equal(vectors.trees.length, 10);
  let proofs = 0;
  for (const tree of vectors.trees) {
    const size = Number(tree.size);
    assert.equal(v.toHex(mth(leaves.slice(0, size))), tree.root, `root of ${size}`);
    assert.equal(tree.inclusion.length, size);
    for (const p of tree.inclusion) {
      const m = Number(p.leaf_index);
      assert.deepEqual(path(m, leaves.slice(0, size)).map(v.toHex), p.path, `path ${m} of ${size}`);
      v.verifyInclusion(leaves[m], BigInt(m), BigInt(size), p.path.map(hex), hex(tree.root));
      // Every other leaf, and the proof for the wrong index, must fail.
      if (size > 1) {
        const other = (m + 1) % size;
        assert.throws(() => v.verifyInclusion(leaves[other], BigInt(m), BigInt(size), p.path.map(hex), hex(tree.root)),
          { code: 'RootMismatch' });
      }
      proofs++;
    }
  }
  assert.equal(proofs, 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 13 + 16);
});

test('consistency proofs match the vectors, and a wrong root or path is refused', () => {
  const leaves = vectors.leaves.map((_, i) => v.leafHash(u64le(i)));
  assert.equal(vectors.consistency.length, 12);
  for (const c of vectors.consistency) {
    const m = BigInt(c.proof.old_size);
    const n = BigInt(c.proof.new_size);
    if (m > 0n && m < n) {
      const generated = subproof(Number(m), leaves.slice(0, Number(n)), true);
      assert.deepEqual(generated.map(v.toHex), c.proof.path, `${m} -> ${n}`);
    }
    v.verifyConsistency(m, n, c.proof.path.map(hex), hex(c.old_root), hex(c.new_root));
    if (m > 0n && m < n) {
      assert.throws(() => v.verifyConsistency(m, n, c.proof.path.map(hex), hex(c.new_root), hex(c.new_root)),
        { code: /OldRootMismatch|NewRootMismatch/ });
      assert.throws(() => v.verifyConsistency(m, n, [...c.proof.path.map(hex), leaves[0]], hex(c.old_root), hex(c.new_root)),
        { code: 'WrongPathLength' });
    }
  }
  assert.throws(() => v.verifyConsistency(5n, 4n, [], leaves[0], leaves[0]), { code: 'OldSizeExceedsNew' });
  assert.throws(() => v.verifyConsistency(0n, 5n, [], leaves[0], leaves[0]), { code: 'OldRootMismatch' });
});

test('the checkpoint vector: key from seed, signing bytes, signature', () => {
  const c = vectors.checkpoint;
  assert.equal(v.toHex(ed.getPublicKey(hex(c.seed))), c.public_key);
  const cp = v.parseCheckpoint(c.signed);
  assert.equal(v.toHex(v.signingBytes(cp)), c.signing_bytes);
  const trusted = v.parseKeys({ [cp.kid]: c.public_key });
  v.checkCheckpoint(cp, trusted, 'vector-cluster');
  assert.deepEqual(v.checkpointJson(cp), c.signed);
  // Any byte of the signed statement changed breaks the signature.
  for (const change of [{ tree_size: 5n }, { timestamp: 1004n }, { cluster_id: 'vector-clustes' }, { root: v.leafHash(Uint8Array.of()) }]) {
    assert.throws(() => v.checkCheckpoint({ ...cp, ...change }, trusted, null), { code: 'BadSignature' });
  }
  // Key ranges from a history: a retired key outside its range is refused.
  const ranged = v.parseKeys({ cluster_id: 'vector-cluster', keys: { [cp.kid]: c.public_key },
    history: [{ kid: cp.kid, public_key: c.public_key, first_tree_size: '0', last_tree_size: '3' }] });
  assert.throws(() => v.checkCheckpoint(cp, ranged, null), { code: 'OutsideKeyRange' });
  // Upper-case hex and non-canonical numbers are refused like the Rust parsers do.
  assert.throws(() => v.parseCheckpoint({ ...c.signed, root: c.signed.root.toUpperCase() }), { code: 'Malformed' });
  assert.throws(() => v.parseCheckpoint({ ...c.signed, tree_size: '04' }), { code: 'Malformed' });
  assert.throws(() => v.parseCheckpoint({ ...c.signed, extra: 1 }), { code: 'Malformed' });
  // A small-order (weak) key is refused when loaded.
  const identity = '0100000000000000000000000000000000000000000000000000000000000000';
  assert.throws(() => v.parseKeys({ weak: identity }), { code: 'MalformedKey' });
});

test('the ledger leaves decode and hash as the vectors say', () => {
  assert.equal(vectors.ledger_leaves.length, 4);
  const kinds = vectors.ledger_leaves.map((l) => {
    assert.equal(v.toHex(v.leafHash(hex(l.data))), l.leaf_hash);
    return v.decodeLeaf(hex(l.data));
  });
  assert.deepEqual(kinds.map((e) => e.kind), ['account', 'account', 'transfer', 'transfer']);
  assert.deepEqual(kinds.map((e) => e.result === 0), [true, true, true, false]);
  const bad = hex(vectors.ledger_leaves[0].data);
  assert.throws(() => v.decodeLeaf(bad.slice(0, 130)), { code: 'LeafUndecodable' });
  assert.throws(() => v.decodeLeaf(Uint8Array.of(9, ...bad.slice(1))), { code: 'LeafUndecodable' });
  const padded = bad.slice();
  padded[126] = 1;
  assert.throws(() => v.decodeLeaf(padded), { code: 'LeafUndecodable', message: /padding/ });
});

test('the export bundle vector verifies', () => {
  const b = vectors.export_bundle;
  const trusted = v.parseKeys({ [b.checkpoint.kid]: vectors.checkpoint.public_key });
  const r = verifyBundle(b, trusted);
  assert.deepEqual([r.events, r.accounts, r.transfers, r.rejected], [3n, 1, 2, 1]);
});

// ---- a lying server (client/tests/malicious.rs) --------------------------------------------

const CLUSTER = 'malicious-test';
const KID = 'node-1';
const SEED = new Uint8Array(32).fill(0x42);
const INTRUDER = new Uint8Array(32).fill(0x13);

function u128le(x, bytes = 16) {
  const out = new Uint8Array(bytes);
  let n = BigInt(x);
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function accountLeaf(id, ts) {
  const d = new Uint8Array(131);
  d[0] = 1;
  d.set(u128le(id), 1);
  d.set(u128le(1, 4), 109); // ledger
  d.set(u128le(1, 2), 113); // code
  d.set(u128le(ts, 8), 117);
  return d;
}

function transferLeaf(id, debit, credit, amount, ts, result) {
  const d = new Uint8Array(131);
  d[0] = 2;
  d.set(u128le(id), 1);
  d.set(u128le(debit), 17);
  d.set(u128le(credit), 33);
  d.set(u128le(amount), 49);
  d.set(u128le(1, 4), 113);
  d.set(u128le(1, 2), 117);
  d.set(u128le(ts, 8), 121);
  d.set(u128le(result, 2), 129);
  return d;
}

/** Like honest_leaves: 4 accounts, transfers 100..=105, a rejected 106, then 107..=112. */
function honestLeaves() {
  const leaves = [1, 2, 3, 4].map((id) => accountLeaf(id, 10));
  for (let id = 100; id <= 112; id++) {
    const rejected = id === 106;
    leaves.push(transferLeaf(id, rejected ? 99 : 1 + ((id + 1) % 4), 1 + (id % 4), 5, 20 + id, rejected ? 38 : 0));
  }
  return leaves;
}

function sign(seed, kid, cluster, leaves, size) {
  const cp = { cluster_id: cluster, tree_size: BigInt(size), root: mth(leaves.slice(0, size).map(v.leafHash)),
    timestamp: 7n, kid, signature: new Uint8Array(64) };
  cp.signature = ed.sign(v.signingBytes(cp), seed);
  return cp;
}

const trusted = () => v.parseKeys({ [KID]: v.toHex(ed.getPublicKey(SEED)) });

/** The fake server's inclusion answer for `query`, with one tampering (malicious.rs `inclusion`). */
function inclusion(leaves, size, query, tamper) {
  let index;
  if (query.leaf !== undefined) index = Number(query.leaf);
  else {
    index = leaves.findIndex((d, i) => i < size && (() => {
      const e = v.decodeLeaf(d);
      const any = tamper === 'ServeRejected';
      if (query.transfer !== undefined) return e.kind === 'transfer' && e.transfer.id === query.transfer && (e.result === 0 || any);
      return e.kind === 'account' && e.account.id === query.account;
    })());
  }
  let proofSize = size;
  if (tamper === 'OtherLeaf' || tamper === 'OtherLeafIndex') index = (index + 1) % size;
  if (tamper === 'OtherTreeSize') proofSize = size - 1;
  const hashes = leaves.map(v.leafHash);
  const p = path(index, hashes.slice(0, proofSize));
  const data = leaves[index].slice();
  let root = mth(hashes.slice(0, proofSize));
  if (tamper === 'LeafData') data[49] ^= 1;
  if (tamper === 'ReorderPath') [p[0], p[1]] = [p[1], p[0]];
  if (tamper === 'TruncatePath') p.pop();
  if (tamper === 'ExtraPath') p.push(hashes[0]);
  if (tamper === 'AnswerRoot') root = hashes[0];
  // Through the wire form, as the browser gets it.
  return v.parseInclusionAnswer({
    proof: { leaf_index: String(index), tree_size: String(proofSize), path: p.map(v.toHex) },
    leaf_data: v.toHex(data), root: v.toHex(root),
  });
}

test('the honest server verifies (the_honest_server_verifies)', () => {
  const leaves = honestLeaves();
  const cp = sign(SEED, KID, CLUSTER, leaves, 12);
  v.checkCheckpoint(cp, trusted(), CLUSTER);
  const steps = [];
  const t = v.checkInclusion({ transfer: 101n }, cp, inclusion(leaves, 12, { transfer: 101n }), (s) => steps.push(s));
  assert.equal(t.leafIndex, 5n);
  assert.equal(t.event.transfer.amount, 5n);
  assert.deepEqual(steps, ['proof shape', 'answer root', 'leaf decodes', 'leaf names it', 'inclusion path']);
  assert.equal(v.checkInclusion({ account: 3n }, cp, inclusion(leaves, 12, { account: 3n })).leafIndex, 2n);
  const rejected = v.checkInclusion({ leaf: 10n }, cp, inclusion(leaves, 12, { leaf: 10n }));
  assert.equal(rejected.event.transfer.id, 106n);
  assert.notEqual(rejected.event.result, 0);
});

test('lying proofs are refused (lying_proofs_are_refused)', () => {
  const leaves = honestLeaves();
  const cp = sign(SEED, KID, CLUSTER, leaves, 12);
  const cases = [
    ['LeafData', { code: 'InclusionFailed', proof: 'RootMismatch' }],
    ['OtherLeaf', { code: 'LeafMismatch', message: /leaf is transfer 102, expected transfer 101/ }],
    ['ReorderPath', { code: 'InclusionFailed', proof: 'RootMismatch' }],
    ['TruncatePath', { code: 'InclusionFailed', proof: 'WrongPathLength' }],
    ['ExtraPath', { code: 'InclusionFailed', proof: 'WrongPathLength' }],
    ['OtherTreeSize', { code: 'WrongProofShape', field: 'tree_size', message: 'tree_size: asked for 12, the proof is for 11' }],
    ['OtherLeafIndex', { code: 'LeafMismatch' }],
    ['AnswerRoot', { code: 'RootMismatch' }],
  ];
  assert.equal(cases.length + 1, 9, 'the nine cases of malicious.rs');
  for (const [tamper, expected] of cases) {
    assert.throws(() => v.checkInclusion({ transfer: 101n }, cp, inclusion(leaves, 12, { transfer: 101n }, tamper)),
      expected, tamper);
  }
  assert.throws(() => v.checkInclusion({ transfer: 106n }, cp, inclusion(leaves, 12, { transfer: 106n }, 'ServeRejected')),
    (e) => e.code === 'NotApplied' && e.result !== 0);
  // By leaf index: another leaf's proof is a wrong shape; a reordered path fails inclusion.
  assert.throws(() => v.checkInclusion({ leaf: 5n }, cp, inclusion(leaves, 12, { leaf: 5n }, 'OtherLeafIndex')),
    { code: 'WrongProofShape', field: 'leaf_index' });
  assert.throws(() => v.checkInclusion({ leaf: 5n }, cp, inclusion(leaves, 12, { leaf: 5n }, 'ReorderPath')),
    { code: 'InclusionFailed' });
});

test('lying checkpoints are refused (lying_checkpoints_are_refused)', async () => {
  const leaves = honestLeaves();
  const accept = (offered, clusterId = CLUSTER) =>
    v.acceptCheckpoint({ remembered: null, offered, trusted: trusted(), clusterId, consistency: assert.fail });
  await assert.rejects(accept(sign(INTRUDER, 'intruder', CLUSTER, leaves, 12)),
    { code: 'UnknownKid', message: /"intruder"/ });
  const bad = sign(SEED, KID, CLUSTER, leaves, 12);
  bad.signature[0] ^= 1;
  await assert.rejects(accept(bad), { code: 'BadSignature' });
  await assert.rejects(accept(sign(SEED, KID, 'another-cluster', leaves, 12)), { code: 'WrongCluster' });
  // Without a configured cluster the remembered checkpoint pins it.
  const first = sign(SEED, KID, CLUSTER, leaves, 8);
  await assert.rejects(v.acceptCheckpoint({ remembered: first, offered: sign(SEED, KID, 'another-cluster', leaves, 8),
    trusted: trusted(), clusterId: null, consistency: assert.fail }), { code: 'WrongCluster' });
});

test('forks and replays are refused (forks_and_replays_are_refused)', async () => {
  const honest = honestLeaves();
  const forked = honestLeaves();
  forked[6] = transferLeaf(102, 4, 3, 1005, 122, 0);
  const consistencyOf = (leaves) => async (from, to) => v.parseConsistency({
    old_size: String(from), new_size: String(to),
    path: subproof(Number(from), leaves.slice(0, Number(to)).map(v.leafHash), true).map(v.toHex),
  });
  const accept = (remembered, offered, leaves) =>
    v.acceptCheckpoint({ remembered, offered, trusted: trusted(), clusterId: CLUSTER, consistency: consistencyOf(leaves) });
  const first = await accept(null, sign(SEED, KID, CLUSTER, honest, 8), honest);
  assert.equal(first.tree_size, 8n);
  // The same size with another history.
  await assert.rejects(accept(first, sign(SEED, KID, CLUSTER, forked, 8), forked), { code: 'Fork', proof: null });
  // A larger tree that does not extend the accepted one: 8 is a power of two, so the new root differs.
  await assert.rejects(accept(first, sign(SEED, KID, CLUSTER, forked, 12), forked), { code: 'Fork', proof: 'NewRootMismatch' });
  // A consistency proof for other sizes is a wrong shape.
  const shifted = async (from, to) => (await consistencyOf(honest)(from - 1n, to));
  await assert.rejects(v.acceptCheckpoint({ remembered: first, offered: sign(SEED, KID, CLUSTER, honest, 12),
    trusted: trusted(), clusterId: CLUSTER, consistency: shifted }), { code: 'WrongProofShape', field: 'old_size' });
  // The honest history grows; then an older checkpoint is replayed.
  const grown = await accept(first, sign(SEED, KID, CLUSTER, honest, 12), honest);
  assert.equal(grown.tree_size, 12n);
  await assert.rejects(accept(grown, sign(SEED, KID, CLUSTER, honest, 8), honest),
    { code: 'StaleCheckpoint', message: /tree size 8 is older than the accepted 12/ });
  // A remembered checkpoint that no longer verifies (tampered local storage) stops verification.
  const spoiled = { ...grown, root: honest[0] };
  await assert.rejects(accept(spoiled, sign(SEED, KID, CLUSTER, honest, 12), honest), { code: 'RememberedInvalid' });
});

test('tampered bundles name the first failing item (ronctl_verify_names_the_first_failing_item)', () => {
  const leaves = honestLeaves();
  const hashes = leaves.map(v.leafHash);
  const cp = sign(SEED, KID, CLUSTER, leaves, 17);
  const bundleOf = (from, to) => ({
    format: BUNDLE_FORMAT, cluster_id: CLUSTER, from: String(from), to: String(to),
    checkpoint: v.checkpointJson(cp),
    events: Array.from({ length: to - from }, (_, i) => ({
      index: String(from + i), data: v.toHex(leaves[from + i]), proof: path(from + i, hashes).map(v.toHex),
    })),
  });
  const honest = bundleOf(2, 15);
  const copy = () => structuredClone(honest);
  const tamperedData = copy();
  const data = hex(tamperedData.events[3].data);
  data[60] ^= 0x80;
  tamperedData.events[3].data = v.toHex(data);
  const reordered = copy();
  const p = reordered.events[5].proof;
  [p[0], p[1]] = [p[1], p[0]];
  const truncated = copy();
  truncated.events[0].proof.pop();
  const gap = copy();
  gap.events.splice(4, 1);
  gap.events.push(gap.events[3]);
  const badSignature = copy();
  badSignature.checkpoint.signature = (badSignature.checkpoint.signature[0] === '0' ? '1' : '0') + badSignature.checkpoint.signature.slice(1);
  const intruderKeys = v.parseKeys({ [KID]: v.toHex(ed.getPublicKey(new Uint8Array(32).fill(1))) });
  const r = verifyBundle(honest, trusted());
  assert.equal(r.events, 13n);
  const cases = [
    [tamperedData, trusted(), /^event 5: proof: /],
    [reordered, trusted(), /^event 7: proof: /],
    [truncated, trusted(), /^event 2: proof: proof path has/],
    [gap, trusted(), /^event 6: carries index 7/],
    [badSignature, trusted(), /^checkpoint: checkpoint signature does not verify/],
    [honest, intruderKeys, /^checkpoint: checkpoint signature does not verify/],
  ];
  for (const [bundle, keys, message] of cases) {
    assert.throws(() => verifyBundle(bundle, keys), { message });
  }
  assert.throws(() => verifyBundle({ format: 1 }, trusted()), { code: 'Format' });
});
