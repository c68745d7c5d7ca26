// The committed bundle in node/console-dist/ is what `node build.mjs` makes from these sources:
// rebuilding into a temporary directory reproduces it byte for byte.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('rebuilding reproduces node/console-dist byte for byte', () => {
  const out = mkdtempSync(join(tmpdir(), 'console-dist-'));
  try {
    execFileSync(process.execPath, [new URL('../build.mjs', import.meta.url).pathname, out]);
    for (const name of ['index.html', 'app.js', 'app.css']) {
      const committed = readFileSync(new URL(`../../node/console-dist/${name}`, import.meta.url));
      const rebuilt = readFileSync(join(out, name));
      assert.ok(rebuilt.length > 100, `${name} is not empty`);
      assert.ok(committed.equals(rebuilt), `${name} differs from a fresh build: run \`node build.mjs\` in console/ and commit`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
