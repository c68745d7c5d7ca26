// Builds the console into node/console-dist/ (committed; the node embeds it with include_bytes!):
// src/app.js with its imports bundled by esbuild into one ES module, and the static page and
// style sheet copied. Deterministic: the same sources and lockfile give the same bytes, which
// test/bundle.test.js checks against the committed files.
//
//   node build.mjs [OUT_DIR]      (default ../node/console-dist)

import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, '../node/console-dist'));
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, 'src/app.js')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  charset: 'utf8',
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
});
copyFileSync(join(here, 'static/index.html'), join(out, 'index.html'));
copyFileSync(join(here, 'static/app.css'), join(out, 'app.css'));
