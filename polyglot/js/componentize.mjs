#!/usr/bin/env node
// Builds the JavaScript guest with componentize-js' API:
//   node componentize.mjs <guest.js> <wit dir> <world> <out.wasm>
//
// Why not the `componentize-js` CLI: componentize-js 0.22 runs its WIT
// splicer (itself a component, transpiled by jco) on whatever
// @bytecodealliance/preview2-shim is installed, and relies on the old
// default preopen of the whole filesystem. preview2-shim 0.26 starts with
// no preopens, so the CLI fails with "reading file <wit>: No such file or
// directory". Here we preopen exactly the two directories it reads.
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { componentize } from '@bytecodealliance/componentize-js';
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';

const [source, wit, world, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: componentize.mjs <guest.js> <wit dir> <world> <out.wasm>');
  process.exit(2);
}
const sourceDir = dirname(resolve(source));
const witDir = resolve(wit);
_setPreopens({ [sourceDir]: sourceDir, [witDir]: witDir });

const { component } = await componentize({
  sourcePath: resolve(source),
  witPath: witDir,
  worldName: world,
  // The runner needs no HTTP; the rest (stdio for errors, random, clocks)
  // stays as componentize-js' defaults.
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(out, component);
console.error(`componentize-js: wrote ${out} (${component.length} bytes)`);
