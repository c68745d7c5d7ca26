// The console's verifier: what docs/PROOFS.md specifies and the Rust SDK checks
// (ledger/src/{merkle,proof,checkpoint,canonical,export}.rs, client/src/verify.rs), in plain
// JavaScript for the browser. Pure functions, no I/O: app.js fetches, this module decides.
// Export bundles are bundle.js's. Every refusal is a VerifyError whose `code` is the name of the Rust variant that refuses the
// same answer (`InclusionFailed` carries the ProofError name in `proof`), so the unit tests
// can hold both verifiers to the same results.

import { blake3 } from '@noble/hashes/blake3.js';
import { sha512 } from '@noble/hashes/sha2.js';
import * as ed from '@noble/ed25519';

// Synchronous SHA-512 for Ed25519, so verification needs no WebCrypto and runs the same in
// Node's test runner and in the browser.
ed.hashes.sha512 = sha512;

export const MERKLE_VERSION = 0x01;
export const CHECKPOINT_DOMAIN = 'ron-ledger/checkpoint/v1\u0000';
export const CLUSTER_ID_BYTES_MAX = 256;
export const KID_BYTES_MAX = 256;
const U64_MAX = (1n << 64n) - 1n;
const U128_MAX = (1n << 128n) - 1n;

/** Why an answer was not accepted; `code` names the Rust VerifyError/BundleError variant. */
export class VerifyError extends Error {
  constructor(code, message, detail = {}) {
    super(message);
    this.name = 'VerifyError';
    this.code = code;
    Object.assign(this, detail);
  }
}

/** A proof failure (ledger::proof::ProofError), wrapped by the caller. */
export class ProofError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ProofError';
    this.code = code;
  }
}

// ---- wire forms (PROOFS.md §6) -----------------------------------------------------------

/** Lower-case hex of exactly `bytes` bytes (any length when omitted). */
export function fromHex(text, bytes, what = 'hex') {
  if (typeof text !== 'string' || !/^([0-9a-f]{2})*$/.test(text)) {
    throw new VerifyError('Malformed', `${what}: not lower-case hex`);
  }
  if (bytes !== undefined && text.length !== 2 * bytes) {
    throw new VerifyError('Malformed', `${what}: expected ${bytes} bytes, got ${text.length / 2}`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A canonical decimal string (digits, no leading zero) within `max`, as a BigInt. */
export function decimal(text, what = 'number', max = U64_MAX) {
  if (typeof text !== 'string' || !/^(0|[1-9][0-9]*)$/.test(text)) {
    throw new VerifyError('Malformed', `${what}: not a canonical decimal string`);
  }
  const v = BigInt(text);
  if (v > max) throw new VerifyError('Malformed', `${what}: out of range`);
  return v;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- hashes and proofs (PROOFS.md §2-4) -------------------------------------------------

export function leafHash(data) {
  return blake3(concat(Uint8Array.of(0x00, MERKLE_VERSION), data));
}

export function nodeHash(left, right) {
  return blake3(concat(Uint8Array.of(0x01, MERKLE_VERSION), left, right));
}

export function emptyRoot() {
  return blake3(Uint8Array.of(0x02, MERKLE_VERSION));
}

/** The largest power of two strictly below n (n > 1). */
function split(n) {
  let k = 1n;
  while (k << 1n < n) k <<= 1n;
  return k;
}

/** Path length of an inclusion proof for leaf m of n (the PATH recursion). */
export function inclusionPathLength(m, n) {
  let len = 0;
  while (n > 1n) {
    const k = split(n);
    if (m < k) n = k;
    else {
      m -= k;
      n -= k;
    }
    len++;
  }
  return len;
}

/** Path length of a consistency proof from m to n leaves, 0 < m < n (the SUBPROOF recursion). */
export function consistencyPathLength(m, n) {
  let len = 0;
  let complete = true;
  while (m !== n) {
    const k = split(n);
    if (m <= k) n = k;
    else {
      m -= k;
      n -= k;
      complete = false;
    }
    len++;
  }
  return complete ? len : len + 1;
}

const wrongLength = (expected, actual) =>
  new ProofError('WrongPathLength', `proof path has ${actual} elements, expected ${expected}`);

/** The root an inclusion proof leads to from `leaf` (a leaf hash); throws ProofError. */
export function inclusionRoot(leaf, index, size, path) {
  if (size === 0n) throw new ProofError('EmptyTree', 'the empty tree has no leaves');
  if (index >= size) {
    throw new ProofError('IndexOutOfRange', `leaf index ${index} is not in a tree of size ${size}`);
  }
  const expected = inclusionPathLength(index, size);
  if (path.length !== expected) throw wrongLength(expected, path.length);
  let f = index;
  let s = size - 1n;
  let r = leaf;
  for (const p of path) {
    if (s === 0n) throw wrongLength(expected, path.length);
    if ((f & 1n) === 1n || f === s) {
      r = nodeHash(p, r);
      while ((f & 1n) === 0n && f !== 0n) {
        f >>= 1n;
        s >>= 1n;
      }
    } else {
      r = nodeHash(r, p);
    }
    f >>= 1n;
    s >>= 1n;
  }
  if (s !== 0n) throw wrongLength(expected, path.length);
  return r;
}

export function verifyInclusion(leaf, index, size, path, root) {
  if (!equalBytes(inclusionRoot(leaf, index, size, path), root)) {
    throw new ProofError('RootMismatch', 'proof does not lead to the expected root');
  }
}

export function verifyConsistency(oldSize, newSize, path, oldRoot, newRoot) {
  if (oldSize > newSize) {
    throw new ProofError('OldSizeExceedsNew', `old size ${oldSize} is larger than new size ${newSize}`);
  }
  const expected = oldSize === 0n || oldSize === newSize ? 0 : consistencyPathLength(oldSize, newSize);
  if (path.length !== expected) throw wrongLength(expected, path.length);
  const oldMismatch = () => new ProofError('OldRootMismatch', 'consistency proof does not reproduce the old root');
  const newMismatch = () => new ProofError('NewRootMismatch', 'consistency proof does not reproduce the new root');
  if (oldSize === 0n) {
    if (!equalBytes(oldRoot, emptyRoot())) throw oldMismatch();
    if (newSize === 0n && !equalBytes(newRoot, emptyRoot())) throw newMismatch();
    return;
  }
  if (oldSize === newSize) {
    if (!equalBytes(oldRoot, newRoot)) throw newMismatch();
    return;
  }
  const powerOfTwo = (oldSize & (oldSize - 1n)) === 0n;
  const rest = powerOfTwo ? path : path.slice(1);
  const first = powerOfTwo ? oldRoot : path[0];
  let f = oldSize - 1n;
  let s = newSize - 1n;
  while ((f & 1n) === 1n) {
    f >>= 1n;
    s >>= 1n;
  }
  let fr = first;
  let sr = first;
  for (const c of rest) {
    if (s === 0n) throw wrongLength(expected, path.length);
    if ((f & 1n) === 1n || f === s) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while ((f & 1n) === 0n && f !== 0n) {
        f >>= 1n;
        s >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    f >>= 1n;
    s >>= 1n;
  }
  if (s !== 0n) throw wrongLength(expected, path.length);
  if (!equalBytes(fr, oldRoot)) throw oldMismatch();
  if (!equalBytes(sr, newRoot)) throw newMismatch();
}

// ---- leaves (PROOFS.md §1) ---------------------------------------------------------------

const RECORD_LEAF_BYTES = 131;
const EXPIRY_LEAF_BYTES = 25;

function reader(data) {
  let at = 1;
  const uint = (bytes) => {
    let v = 0n;
    for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[at + i]);
    at += bytes;
    return v;
  };
  return { uint, skip: (n) => data.slice(at, (at += n)) };
}

/** Decode a leaf preimage (ledger::canonical::decode_leaf); throws LeafUndecodable. */
export function decodeLeaf(data) {
  const bad = (why) => new VerifyError('LeafUndecodable', `leaf data does not decode: ${why}`);
  if (data.length === 0) throw bad('empty');
  const kind = data[0];
  const expected = { 1: RECORD_LEAF_BYTES, 2: RECORD_LEAF_BYTES, 3: EXPIRY_LEAF_BYTES }[kind];
  if (expected === undefined) throw bad(`unknown kind ${kind}`);
  if (data.length !== expected) throw bad(`kind ${kind} is ${expected} bytes, got ${data.length}`);
  const r = reader(data);
  if (kind === 1) {
    const account = {
      id: r.uint(16), debits_pending: r.uint(16), debits_posted: r.uint(16),
      credits_pending: r.uint(16), credits_posted: r.uint(16), user_data_128: r.uint(16),
      user_data_64: r.uint(8), user_data_32: r.uint(4), ledger: r.uint(4), code: r.uint(2),
      flags: r.uint(2), timestamp: r.uint(8),
    };
    if (r.skip(4).some((b) => b !== 0)) throw bad('non-zero account padding');
    return { kind: 'account', account, result: Number(r.uint(2)) };
  }
  if (kind === 2) {
    const transfer = {
      id: r.uint(16), debit_account_id: r.uint(16), credit_account_id: r.uint(16),
      amount: r.uint(16), pending_id: r.uint(16), user_data_128: r.uint(16),
      user_data_64: r.uint(8), user_data_32: r.uint(4), timeout: r.uint(4), ledger: r.uint(4),
      code: r.uint(2), flags: r.uint(2), timestamp: r.uint(8),
    };
    return { kind: 'transfer', transfer, result: Number(r.uint(2)) };
  }
  return { kind: 'expiry', pending_id: r.uint(16), timestamp: r.uint(8) };
}

export function describeLeaf(event) {
  if (event.kind === 'account') return `account ${event.account.id}`;
  if (event.kind === 'transfer') return `transfer ${event.transfer.id}`;
  return `expiry of ${event.pending_id}`;
}

// ---- trusted keys and checkpoints (PROOFS.md §5) -----------------------------------------

/**
 * Trusted keys from a keys file: `{"<kid>": "<hex>"}` or the `ronctl keys` / keys endpoint shape
 * `{"cluster_id", "keys": {...}, "history": [...]}`. Returns `{clusterId, keys: Map(kid ->
 * {publicKey, first, last})}`; refuses what the Rust reader refuses (weak keys, a history entry
 * naming a key the file lacks, unknown fields).
 */
export function parseKeys(json) {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new VerifyError('MalformedKeySet', 'a keys file is a JSON object');
  }
  const shaped = 'keys' in json;
  const allowed = ['cluster_id', 'keys', 'history'];
  if (shaped) {
    for (const k of Object.keys(json)) {
      if (!allowed.includes(k)) throw new VerifyError('MalformedKeySet', `unknown field ${k}`);
    }
  }
  const plain = shaped ? json.keys : json;
  const keys = new Map();
  for (const [kid, hex] of Object.entries(plain ?? {})) {
    const publicKey = fromHex(hex, 32, `key ${kid}`);
    let point;
    try {
      point = ed.Point.fromBytes(publicKey, false);
    } catch {
      throw new VerifyError('MalformedKey', `key ${kid}: not an Ed25519 public key`);
    }
    if (point.isSmallOrder()) throw new VerifyError('MalformedKey', `key ${kid}: weak key`);
    keys.set(kid, { publicKey, first: 0n, last: null });
  }
  for (const record of (shaped && json.history) || []) {
    const k = keys.get(record.kid);
    if (!k || toHex(k.publicKey) !== record.public_key) {
      throw new VerifyError('MalformedKey', `history names key ${record.kid} the file does not carry`);
    }
    k.first = decimal(record.first_tree_size, 'first_tree_size');
    k.last = record.last_tree_size == null ? null : decimal(record.last_tree_size, 'last_tree_size');
  }
  const clusterId = shaped && typeof json.cluster_id === 'string' ? json.cluster_id : null;
  return { clusterId, keys };
}

/** A signed checkpoint from its JSON (strict fields), with BigInt sizes and byte hashes. */
export function parseCheckpoint(json) {
  const fields = ['cluster_id', 'tree_size', 'root', 'timestamp', 'kid', 'signature'];
  if (json === null || typeof json !== 'object') throw new VerifyError('Malformed', 'checkpoint: not an object');
  for (const k of Object.keys(json)) {
    if (!fields.includes(k)) throw new VerifyError('Malformed', `checkpoint: unknown field ${k}`);
  }
  if (typeof json.cluster_id !== 'string' || typeof json.kid !== 'string') {
    throw new VerifyError('Malformed', 'checkpoint: cluster_id and kid are strings');
  }
  return {
    cluster_id: json.cluster_id,
    tree_size: decimal(json.tree_size, 'tree_size'),
    root: fromHex(json.root, 32, 'root'),
    timestamp: decimal(json.timestamp, 'timestamp'),
    kid: json.kid,
    signature: fromHex(json.signature, 64, 'signature'),
  };
}

/** The JSON form of a parsed checkpoint (what the browser stores). */
export function checkpointJson(cp) {
  return {
    cluster_id: cp.cluster_id, tree_size: cp.tree_size.toString(), root: toHex(cp.root),
    timestamp: cp.timestamp.toString(), kid: cp.kid, signature: toHex(cp.signature),
  };
}

function u16be(n) {
  return Uint8Array.of((n >> 8) & 0xff, n & 0xff);
}

function u64be(v) {
  const out = new Uint8Array(8);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The exact bytes a checkpoint's signature covers (Checkpoint::signing_bytes). */
export function signingBytes(cp) {
  const text = new TextEncoder();
  const bounded = (field, value, max) => {
    const bytes = text.encode(value);
    if (bytes.length > max) {
      throw new VerifyError('MalformedCheckpoint', `${field} is ${bytes.length} bytes, at most ${max}`);
    }
    return concat(u16be(bytes.length), bytes);
  };
  return concat(
    text.encode(CHECKPOINT_DOMAIN),
    bounded('cluster_id', cp.cluster_id, CLUSTER_ID_BYTES_MAX),
    u64be(cp.tree_size),
    cp.root,
    u64be(cp.timestamp),
    bounded('kid', cp.kid, KID_BYTES_MAX),
  );
}

/**
 * Strict Ed25519 as ed25519-dalek's verify_strict: noble's RFC 8032 branch (canonical
 * encodings, small-order public keys refused) and, as dalek does, a small-order R refused too.
 */
export function verifyStrict(signature, message, publicKey) {
  try {
    if (ed.Point.fromBytes(signature.slice(0, 32), false).isSmallOrder()) return false;
  } catch {
    return false;
  }
  return ed.verify(signature, message, publicKey, { zip215: false });
}

/** SignedCheckpoint::verify: the signature by the trusted key of its kid, within its range. */
export function verifyCheckpointSignature(cp, trusted) {
  const key = trusted.keys.get(cp.kid);
  if (!key) throw new VerifyError('UnknownKid', `checkpoint signed by unknown key id "${cp.kid}"`);
  const message = signingBytes(cp);
  if (!verifyStrict(cp.signature, message, key.publicKey)) {
    throw new VerifyError('BadSignature', 'checkpoint signature does not verify');
  }
  if (cp.tree_size < key.first || (key.last !== null && cp.tree_size > key.last)) {
    throw new VerifyError('OutsideKeyRange', `key ${cp.kid} signs sizes ${key.first}..${key.last ?? ''}, not ${cp.tree_size}`);
  }
}

/** check_checkpoint: signature, then the cluster (configured, or pinned by the remembered one). */
export function checkCheckpoint(cp, trusted, clusterId) {
  verifyCheckpointSignature(cp, trusted);
  if (clusterId != null && clusterId !== cp.cluster_id) {
    throw new VerifyError('WrongCluster', `checkpoint is for cluster "${cp.cluster_id}", expected "${clusterId}"`);
  }
}

/** plan_advance: 'first', 'same', or {from} (needs a consistency proof); throws on stale/fork. */
export function planAdvance(remembered, offered) {
  if (!remembered) return 'first';
  if (offered.tree_size < remembered.tree_size) {
    throw new VerifyError('StaleCheckpoint',
      `stale checkpoint: tree size ${offered.tree_size} is older than the accepted ${remembered.tree_size}`);
  }
  if (offered.tree_size === remembered.tree_size) {
    if (equalBytes(offered.root, remembered.root)) return 'same';
    throw fork(remembered, offered, null);
  }
  return { from: remembered.tree_size };
}

function fork(r, o, proofError) {
  const how = proofError ? `consistency proof: ${proofError.message}` : 'same size, different root';
  return new VerifyError('Fork',
    `fork: checkpoint of size ${o.tree_size} root ${toHex(o.root)} does not extend the accepted size ${r.tree_size} root ${toHex(r.root)} (${how})`,
    { proof: proofError ? proofError.code : null });
}

/** A consistency proof answer `{old_size, new_size, path}` parsed strictly. */
export function parseConsistency(json) {
  return {
    old_size: decimal(json.old_size, 'old_size'),
    new_size: decimal(json.new_size, 'new_size'),
    path: parsePath(json.path),
  };
}

export function parsePath(path) {
  if (!Array.isArray(path)) throw new VerifyError('Malformed', 'path: not a list');
  return path.map((h, i) => fromHex(h, 32, `path[${i}]`));
}

/** check_consistency: the proof is from the remembered size to the offered one and verifies. */
export function checkConsistency(remembered, offered, proof) {
  for (const [field, expected, found] of [
    ['old_size', remembered.tree_size, proof.old_size],
    ['new_size', offered.tree_size, proof.new_size],
  ]) {
    if (expected !== found) {
      throw new VerifyError('WrongProofShape', `${field}: asked for ${expected}, the proof is for ${found}`, { field });
    }
  }
  try {
    verifyConsistency(proof.old_size, proof.new_size, proof.path, remembered.root, offered.root);
  } catch (e) {
    if (e instanceof ProofError) throw fork(remembered, offered, e);
    throw e;
  }
}

/** The inclusion answer `{proof: {leaf_index, tree_size, path}, leaf_data, root}` parsed strictly. */
export function parseInclusionAnswer(json) {
  const p = json && json.proof;
  if (!p) throw new VerifyError('Malformed', 'inclusion answer: no proof');
  return {
    proof: {
      leaf_index: decimal(p.leaf_index, 'leaf_index'),
      tree_size: decimal(p.tree_size, 'tree_size'),
      path: parsePath(p.path),
    },
    leaf_data: fromHex(json.leaf_data, undefined, 'leaf_data'),
    root: fromHex(json.root, 32, 'root'),
  };
}

/**
 * check_inclusion: `query` is {leaf: BigInt} | {transfer: BigInt} | {account: BigInt}.
 * Returns {leafIndex, event}. `step(name, detail)` is told of each check that passed.
 */
export function checkInclusion(query, cp, answer, step = () => {}) {
  const proof = answer.proof;
  if (proof.tree_size !== cp.tree_size) {
    throw new VerifyError('WrongProofShape', `tree_size: asked for ${cp.tree_size}, the proof is for ${proof.tree_size}`, { field: 'tree_size' });
  }
  if (query.leaf !== undefined && proof.leaf_index !== query.leaf) {
    throw new VerifyError('WrongProofShape', `leaf_index: asked for ${query.leaf}, the proof is for ${proof.leaf_index}`, { field: 'leaf_index' });
  }
  step('proof shape', `tree size ${proof.tree_size} is the checkpoint's; leaf index ${proof.leaf_index}`);
  if (!equalBytes(answer.root, cp.root)) {
    throw new VerifyError('RootMismatch', `answer's root ${toHex(answer.root)} is not the checkpoint's root ${toHex(cp.root)}`);
  }
  step('answer root', 'equals the checkpoint root');
  const event = decodeLeaf(answer.leaf_data);
  step('leaf decodes', describeLeaf(event));
  for (const kind of ['transfer', 'account']) {
    if (query[kind] === undefined) continue;
    if (event.kind !== kind || event[kind].id !== query[kind]) {
      throw new VerifyError('LeafMismatch', `leaf is ${describeLeaf(event)}, expected ${kind} ${query[kind]}`);
    }
    if (event.result !== 0) {
      throw new VerifyError('NotApplied', `leaf records the event rejected with result code ${event.result}`, { result: event.result });
    }
    step('leaf names it', `${kind} ${query[kind]}, applied (result ok)`);
  }
  try {
    verifyInclusion(leafHash(answer.leaf_data), proof.leaf_index, proof.tree_size, proof.path, cp.root);
  } catch (e) {
    if (e instanceof ProofError) {
      throw new VerifyError('InclusionFailed', `inclusion proof does not verify: ${e.message}`, { proof: e.code });
    }
    throw e;
  }
  step('inclusion path', `${proof.path.length} hashes lead from the leaf hash to the checkpoint root`);
  return { leafIndex: proof.leaf_index, event };
}

/** A u128 id typed by a person: canonical decimal within range. */
export function parseId(text) {
  return decimal(text.trim(), 'id', U128_MAX);
}

/**
 * Accept an offered checkpoint after the remembered one, as the SDK does (PROOFS.md §9): the
 * remembered checkpoint is verified again, the offered one must be signed by a trusted key, name
 * the cluster (`clusterId`, else the remembered one's), and extend the remembered tree —
 * `consistency(from, to)` fetches the proof when it is larger. Returns the checkpoint to
 * remember. `step(name, detail)` is told of each check that passed.
 */
export async function acceptCheckpoint({ remembered, offered, trusted, clusterId, consistency, step = () => {} }) {
  if (remembered) {
    try {
      verifyCheckpointSignature(remembered, trusted);
    } catch (e) {
      throw new VerifyError('RememberedInvalid', `the remembered checkpoint no longer verifies: ${e.message}`);
    }
  }
  checkCheckpoint(offered, trusted, clusterId ?? remembered?.cluster_id ?? null);
  step('checkpoint signature', `Ed25519 by trusted key ${offered.kid}, cluster ${offered.cluster_id}, size ${offered.tree_size}`);
  const plan = planAdvance(remembered, offered);
  if (plan === 'first') {
    step('consistency', 'no checkpoint remembered yet: this one becomes the anchor');
  } else if (plan === 'same') {
    step('consistency', `same size and root as the remembered checkpoint (${remembered.tree_size})`);
  } else {
    const proof = await consistency(plan.from, offered.tree_size);
    checkConsistency(remembered, offered, proof);
    step('consistency', `${proof.path.length} hashes prove size ${offered.tree_size} extends the remembered ${remembered.tree_size}`);
  }
  return offered;
}
