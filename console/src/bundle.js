// Export bundles (docs/PROOFS.md §7), verified offline as ledger::export::verify_bundle and
// `ronctl verify` do: same checks, same order, the first failing item named the same way.

import {
  VerifyError, decimal, decodeLeaf, fromHex, leafHash, parseCheckpoint, parsePath,
  verifyCheckpointSignature, verifyInclusion,
} from './verify.js';

export const BUNDLE_FORMAT = 'ron-ledger-export/1';
export const BUNDLE_EVENTS_MAX = 65536n;

/** verify_bundle; returns a report or throws VerifyError naming the first failing item. */
export function verifyBundle(json, trusted) {
  if (json === null || typeof json !== 'object') throw new VerifyError('Malformed', 'not an export bundle');
  if (json.format !== BUNDLE_FORMAT) throw new VerifyError('Format', `unsupported bundle format ${JSON.stringify(json.format)}`);
  const cp = parseCheckpoint(json.checkpoint);
  if (json.cluster_id !== cp.cluster_id) {
    throw new VerifyError('ClusterMismatch', `bundle is for cluster "${json.cluster_id}", its checkpoint for "${cp.cluster_id}"`);
  }
  try {
    verifyCheckpointSignature(cp, trusted);
  } catch (e) {
    throw new VerifyError(e.code, `checkpoint: ${e.message}`);
  }
  const from = decimal(json.from, 'from');
  const to = decimal(json.to, 'to');
  if (from >= to || to > cp.tree_size) {
    throw new VerifyError('Range', `range [${from}, ${to}) is empty or beyond the checkpoint's ${cp.tree_size} leaves`);
  }
  const count = to - from;
  if (count > BUNDLE_EVENTS_MAX) throw new VerifyError('TooManyEvents', `${count} events; a bundle carries at most ${BUNDLE_EVENTS_MAX}`);
  if (!Array.isArray(json.events) || BigInt(json.events.length) !== count) {
    throw new VerifyError('EventCount', `${json.events?.length} events for a range of ${count}`);
  }
  const report = { checkpoint: cp, from, to, events: count, accounts: 0, transfers: 0, expiries: 0, rejected: 0 };
  json.events.forEach((event, i) => {
    const index = from + BigInt(i);
    const fail = (why) => new VerifyError('Event', `event ${index}: ${why}`, { index });
    if (decimal(event.index, 'index') !== index) throw fail(`carries index ${event.index}`);
    const data = fromHex(event.data, undefined, 'data');
    let decoded;
    try {
      decoded = decodeLeaf(data);
    } catch (e) {
      throw fail(`leaf: ${e.message}`);
    }
    try {
      verifyInclusion(leafHash(data), index, cp.tree_size, parsePath(event.proof), cp.root);
    } catch (e) {
      throw fail(`proof: ${e.message}`);
    }
    if (decoded.kind === 'expiry') report.expiries++;
    else {
      report[`${decoded.kind}s`]++;
      if (decoded.result !== 0) report.rejected++;
    }
  });
  return report;
}

