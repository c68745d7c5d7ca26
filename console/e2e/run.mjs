// Drives the console in headless Chromium (Debian's /usr/bin/chromium, through playwright-core)
// for tests/tests/console.rs, which starts the cluster, writes the data, runs the tampering proxy
// and asserts on the JSON this prints. Settings come from the environment:
//
//   CONSOLE_E2E_NODE      https origin of node 1            CONSOLE_E2E_PROXY    http origin of the tampering proxy
//   CONSOLE_E2E_CERTS     node certificate PEM files, ':'   CONSOLE_E2E_KEYS     keys file (all nodes' keys)
//   CONSOLE_E2E_ACCOUNT   account id                        CONSOLE_E2E_TRANSFER transfer id
//   CONSOLE_E2E_BUNDLE    export bundle file                CONSOLE_E2E_SHOTS    screenshot directory
//   CONSOLE_E2E_FORK_PROXY http origin of the proxy that alters consistency proofs
//   CONSOLE_E2E_REMEMBER  a checkpoint (JSON) the browser is to have verified before
//
// Chromium trusts the nodes' TLS certificates by their public keys only
// (--ignore-certificate-errors-spki-list), not by switching certificate checks off.

import { chromium } from 'playwright-core';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const node = env('CONSOLE_E2E_NODE');
const proxy = env('CONSOLE_E2E_PROXY');
const forkProxy = env('CONSOLE_E2E_FORK_PROXY');
const shots = env('CONSOLE_E2E_SHOTS');
const account = env('CONSOLE_E2E_ACCOUNT');
const transfer = env('CONSOLE_E2E_TRANSFER');
const WAIT_MS = 30000;

const spki = env('CONSOLE_E2E_CERTS').split(':').map((file) => {
  const der = new X509Certificate(readFileSync(file)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
});

const profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--ignore-certificate-errors-spki-list=${spki.join(',')}`],
});

const allowed = new Set([new URL(node).origin, new URL(proxy).origin, new URL(forkProxy).origin]);
const result = { offHost: [], consoleErrors: [], failedRequests: [], screenshots: [] };
context.on('request', (r) => {
  const url = new URL(r.url());
  if (url.protocol !== 'data:' && !allowed.has(url.origin)) result.offHost.push(r.url());
});
// Nothing may leave for another host, even if the page tried: such a request is aborted (and
// recorded above, which fails the test).
await context.route('**/*', (route) => {
  const url = new URL(route.request().url());
  return allowed.has(url.origin) || url.protocol === 'data:' ? route.continue() : route.abort();
});

function watch(page) {
  page.on('console', (m) => {
    if (m.type() === 'error') result.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => result.consoleErrors.push(String(e)));
  page.on('requestfailed', (r) => result.failedRequests.push(`${r.url()}: ${r.failure()?.errorText}`));
}

async function shot(page, name) {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  result.screenshots.push(path);
}

const text = (page, selector) => page.locator(selector).innerText();
const steps = (page) => page.locator('#verification .steps li').allInnerTexts();

try {
  const page = await context.newPage();
  watch(page);

  // Cluster: all three members, and the banner that says they agree on the root.
  await page.goto(`${node}/console`);
  await page.locator('#members tr[data-member]').nth(2).waitFor({ timeout: WAIT_MS });
  await page.locator('#agreement.good').waitFor({ timeout: WAIT_MS });
  result.members = await page.locator('#members tr[data-member]').evaluateAll((rows) =>
    rows.map((r) => ({ id: r.dataset.member, root: r.dataset.root, role: r.children[1].textContent })));
  result.agreement = await text(page, '#agreement');
  await page.locator('#checkpoints tr td').first().waitFor({ state: 'attached', timeout: WAIT_MS });
  await shot(page, 'cluster');

  // Trust: the keys file the test collected from every node.
  await page.goto(`${node}/console#proofs`);
  await page.setInputFiles('#keys-file', env('CONSOLE_E2E_KEYS'));
  await page.locator('#keys li').nth(2).waitFor({ timeout: WAIT_MS });
  result.keys = await page.locator('#keys li').count();

  // Account and transfer pages.
  await page.goto(`${node}/console#account/${account}`);
  await page.locator(`[data-account="${account}"]`).waitFor({ timeout: WAIT_MS });
  result.account = await text(page, '#account');
  await shot(page, 'account');
  await page.goto(`${node}/console#transfer/${transfer}`);
  await page.locator(`[data-transfer="${transfer}"]`).waitFor({ timeout: WAIT_MS });
  result.transfer = await text(page, '#transfer');
  await shot(page, 'transfer');

  // Verify the transfer in the browser, from its page's button.
  await page.locator('#transfer a.button').click();
  await page.locator('#verification [data-outcome="verified"], #verification [data-outcome="failed"]').waitFor({ timeout: WAIT_MS });
  result.verify = { outcome: await page.locator('#verification [data-outcome]').getAttribute('data-outcome'), steps: await steps(page) };
  result.remembered = await page.evaluate(() => localStorage.getItem('ron-console/checkpoint'));
  await page.locator('#checkpoints .good').nth(2).waitFor({ timeout: WAIT_MS });
  result.checkpointsVerified = await page.locator('#checkpoints .good').count();

  // An export bundle, verified offline in the page.
  await page.setInputFiles('#bundle-file', env('CONSOLE_E2E_BUNDLE'));
  await page.locator('#bundle [data-outcome]').waitFor({ timeout: WAIT_MS });
  result.bundle = { outcome: await page.locator('#bundle [data-outcome]').getAttribute('data-outcome'), text: await text(page, '#bundle') };
  await shot(page, 'proofs');

  // Readable on a phone: the cluster page at a phone's viewport.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${node}/console#cluster`);
  await page.locator('#agreement.good').waitFor({ timeout: WAIT_MS });
  result.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  await shot(page, 'phone-cluster');

  // The same console through the proxy that alters one hash of every inclusion proof.
  const lied = await context.newPage();
  watch(lied);
  await lied.goto(`${proxy}/console#proofs`);
  await lied.setInputFiles('#keys-file', env('CONSOLE_E2E_KEYS'));
  await lied.locator('#keys li').nth(2).waitFor({ timeout: WAIT_MS });
  await lied.goto(`${proxy}/console#verify/transfer/${transfer}`);
  await lied.locator('#verification [data-outcome="verified"], #verification [data-outcome="failed"]').waitFor({ timeout: WAIT_MS });
  result.tampered = { outcome: await lied.locator('#verification [data-outcome]').getAttribute('data-outcome'), steps: await steps(lied) };
  await shot(lied, 'tampered');

  // A browser that verified an earlier checkpoint, and a server that cannot prove the newer one
  // extends it (the proxy alters one hash of the consistency proof): refused as a fork.
  const forked = await context.newPage();
  watch(forked);
  await forked.goto(`${forkProxy}/console#proofs`);
  await forked.setInputFiles('#keys-file', env('CONSOLE_E2E_KEYS'));
  await forked.locator('#keys li').nth(2).waitFor({ timeout: WAIT_MS });
  await forked.evaluate((cp) => localStorage.setItem('ron-console/checkpoint', cp), env('CONSOLE_E2E_REMEMBER'));
  await forked.goto(`${forkProxy}/console#verify/transfer/${transfer}`);
  await forked.locator('#verification [data-outcome="verified"], #verification [data-outcome="failed"]').waitFor({ timeout: WAIT_MS });
  result.forked = { outcome: await forked.locator('#verification [data-outcome]').getAttribute('data-outcome'), steps: await steps(forked) };
  result.forkedRemembered = await forked.evaluate(() => localStorage.getItem('ron-console/checkpoint'));
  await shot(forked, 'forked');
} catch (e) {
  result.error = String(e.stack ?? e);
  // What the pages showed when it failed, for the report.
  for (const [i, p] of context.pages().entries()) await shot(p, `failed-${i}`).catch(() => {});
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
