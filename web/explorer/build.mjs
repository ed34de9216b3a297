// Builds the Explorer into internal/transport/explorer/dist, which the Go binary embeds: one
// script, one stylesheet and index.html, all served by the binary itself (no fonts, nothing from
// another origin).
//
// The output is committed, so it must depend on nothing but the sources and the esbuild that
// package-lock.json pins: no timestamps, no absolute paths, no source maps. `make assets-check`
// rebuilds it and fails when it differs from the committed files.
import { build } from 'esbuild';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, '../../internal/transport/explorer/dist');

// Everything in dist but its README is this script's output, committed as it writes it. It
// starts by removing all of that, so a file an earlier build wrote and this one does not is not
// left behind to be embedded and committed.
await mkdir(out, { recursive: true });
for (const name of await readdir(out)) {
  if (name !== 'README.md') await rm(path.join(out, name), { recursive: true, force: true });
}

await build({
  entryPoints: [path.join(here, 'src/index.js')],
  outfile: path.join(out, 'app.js'), // its CSS import becomes app.css beside it
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'none',
  logLevel: 'warning',
});

await writeFile(
  path.join(out, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Strata Explorer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/explorer/assets/app.css">
</head>
<body>
<script src="/explorer/assets/app.js"></script>
</body>
</html>
`,
);
