#!/usr/bin/env node
// The store under a second host runtime: Node.js, on the store component
// transpiled to an ES module by `jco transpile`, with WASI from
// @bytecodealliance/preview2-shim.
//
//   node run-flow.mjs flow --bindings <out>/sqlite_sessions.js --dir <host dir> --flow <flow.json>
//       plays the conformance flow, prints the report JSON on stdout
//   node run-flow.mjs read --bindings <out>/sqlite_sessions.js --dir <host dir> --id <session id>
//       loads one session and prints {"found", "values": {key: json}} on stdout
//
// The guest sees only <host dir>, as /sessions: the shim's default preopen
// is the host's whole filesystem, so we replace it with `_setPreopens`.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { runFlow } from '../js/flow.js';

const GUEST_DIR = '/sessions';

const { positionals, values: opts } = parseArgs({
  allowPositionals: true,
  options: {
    bindings: { type: 'string' },
    dir: { type: 'string' },
    flow: { type: 'string' },
    id: { type: 'string' },
  },
});
const mode = positionals[0];
if (!['flow', 'read'].includes(mode) || !opts.bindings || !opts.dir) {
  console.error('usage: run-flow.mjs flow|read --bindings FILE --dir DIR [--flow FILE | --id ID]');
  process.exit(2);
}
const bindings = resolve(opts.bindings);

// The shim module the transpiled bindings import: resolved from their
// location, so both get the same module instance (and so the same preopens).
const shimPath = createRequire(bindings).resolve('@bytecodealliance/preview2-shim/filesystem');
const fsShim = await import(pathToFileURL(shimPath).href);

// WORKAROUND (preview2-shim 0.26.1; README "Known issues"): `openAt` throws
// `unsupported` whenever the descriptor flags include `mutate-directory`,
// and wasi-libc sets that flag on every read-write `open()`, so SQLite could
// not open a session file. The shim enforces `mutate-directory` nowhere
// else (it is the flag's only use), so clearing it before the call changes
// nothing but the spurious rejection. It patches the class in memory for
// this process only; nothing on disk is modified. Remove it once the store
// no longer sets the flag (custom VFS) or the shim accepts it.
let strippedMutateDirectory = 0;
{
  const proto = fsShim.types.Descriptor.prototype;
  const openAt = proto.openAt;
  proto.openAt = function openAtWithoutMutateDirectory(pathFlags, path, openFlags, descriptorFlags) {
    if (descriptorFlags && descriptorFlags.mutateDirectory) {
      strippedMutateDirectory++;
      descriptorFlags = { ...descriptorFlags, mutateDirectory: false };
    }
    return openAt.call(this, pathFlags, path, openFlags, descriptorFlags);
  };
}
fsShim._setPreopens({ [GUEST_DIR]: resolve(opts.dir) });

const { sessions } = await import(pathToFileURL(bindings).href);

let out;
if (mode === 'flow') {
  if (!opts.flow) throw new Error('flow mode needs --flow');
  const flowJson = readFileSync(opts.flow, 'utf8');
  out = runFlow(sessions, flowJson, GUEST_DIR, 'node-jco');
} else {
  if (!opts.id) throw new Error('read mode needs --id');
  out = readSession(opts.id);
}
out.shim = { mutateDirectoryStripped: strippedMutateDirectory };
process.stdout.write(JSON.stringify(out) + '\n');

function readSession(id) {
  const store = sessions.Store.open({
    directory: GUEST_DIR,
    cookie: {},
  });
  const session = store.load(id);
  if (session === undefined) return { found: false, values: {} };
  const values = {};
  for (const key of session.keys()) values[key] = JSON.parse(session.getJson(key));
  session[Symbol.dispose]?.();
  store[Symbol.dispose]?.();
  return { found: true, values };
}
