// The conformance flow interpreter for JavaScript, shared by the
// componentize-js guest (polyglot/js/guest.js) and the Node host on the
// jco-transpiled store (polyglot/node/run-flow.mjs). Both see the same
// bindings shape (jco's): records with camelCase fields, `undefined` for
// `none`, `Uint8Array` for `list<u8>`, variants as `{tag, val}`, and a
// failed `result` thrown as an error whose `payload` is the `error` variant.

/** The WIT name of a thrown store error's variant, or `undefined` if the
 * throw was something else (a bug, which the caller rethrows). */
export function variantName(e) {
  const payload = e && typeof e === 'object' && 'payload' in e ? e.payload : undefined;
  if (payload && typeof payload.tag === 'string') return payload.tag;
  return undefined;
}

function hexToBytes(hex) {
  if (hex.length % 2 !== 0) throw new Error(`odd-length hex ${hex}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(bytes) {
  if (bytes === undefined) return null;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function jsonOut(text) {
  return text === undefined ? null : JSON.parse(text);
}

function jsonArg(c) {
  return 'json-text' in c ? c['json-text'] : JSON.stringify(c.json);
}

function pathSegments(path) {
  return path.map((seg) => ('key' in seg ? { tag: 'key', val: seg.key } : { tag: 'index', val: seg.index }));
}

/** JSON equality that ignores object key order. */
export function sameJson(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && sameJson(a[k], b[k]));
}

function config(directory, flow) {
  const cfg = flow.config || {};
  return {
    directory,
    maxKeyBytes: undefined,
    maxValueBytes: cfg['max-value-bytes'],
    maxSessionBytes: undefined,
    maxKeys: undefined,
    maxLiveSessions: undefined,
    idleTimeoutSeconds: undefined,
    absoluteTimeoutSeconds: undefined,
    activityGranularitySeconds: undefined,
    busyTimeoutMs: undefined,
    lockLeaseMs: undefined,
    durability: undefined,
    sharedDirectory: undefined,
    checkDirectory: undefined,
    fileNameSecret: undefined,
    signingKeys: undefined,
    cookie: {
      name: undefined, path: undefined, domain: undefined, secure: undefined,
      httpOnly: undefined, sameSite: undefined, persistent: undefined,
    },
  };
}

function dispose(resource) {
  const d = Symbol.dispose && resource[Symbol.dispose];
  if (typeof d === 'function') d.call(resource);
}

/** A case names a session that no earlier case bound (because it failed). */
class MissingSession extends Error {
  constructor(name) {
    super(`no session ${name}`);
    this.outcome = `runner: no session ${name}`;
  }
}

/** One case's value on success; throws the store's error. */
function play(state, c) {
  const { store, sessions, ids } = state;
  const key = c.key ?? '';
  const idArg = () => ('var' in c.id ? ids[c.id.var] : c.id.literal);
  switch (c.op) {
    case 'create':
      sessions.set(c.as, store.create());
      return null;
    case 'load': {
      const found = store.load(idArg());
      if (found !== undefined && c.as !== undefined) sessions.set(c.as, found);
      return found !== undefined;
    }
    case 'destroy-id':
      return store.destroyId(idArg());
    case 'cookie-value-from-header':
      return store.cookieValueFromHeader(c.header) ?? null;
  }
  const s = sessions.get(c.session);
  // An earlier failed case never bound it: report, do not abort the flow.
  if (s === undefined) throw new MissingSession(c.session);
  const none = () => null;
  switch (c.op) {
    case 'id': ids[c.save] = s.id(); return null;
    case 'is-new': return s.isNew();
    case 'get': return bytesToHex(s.get(key));
    case 'get-json': return jsonOut(s.getJson(key));
    case 'set': return none(s.set(key, hexToBytes(c.cbor)));
    case 'set-json': return none(s.setJson(key, jsonArg(c)));
    case 'remove': return s.remove(key);
    case 'take': return bytesToHex(s.take(key));
    case 'take-json': return jsonOut(s.takeJson(key));
    case 'contains': return s.contains(key);
    case 'keys': return Array.from(s.keys());
    case 'len': return s.len();
    case 'clear': return none(s.clear());
    case 'destroy': return none(s.destroy());
    case 'regenerate': return none(s.regenerate());
    case 'set-in': return none(s.setIn(key, pathSegments(c.path), hexToBytes(c.cbor)));
    case 'set-in-json': return none(s.setInJson(key, pathSegments(c.path), jsonArg(c)));
    case 'remove-in': return s.removeIn(key, pathSegments(c.path));
    case 'append': return s.append(key, hexToBytes(c.cbor));
    case 'append-json': return s.appendJson(key, jsonArg(c));
    default: throw new Error(`unknown op ${c.op}`);
  }
}

/**
 * Plays `flowJson` against `sessions.Store` opened on `directory` and
 * returns the report object. Throws (a string) when the flow cannot be
 * played at all.
 */
export function runFlow(sessionsApi, flowJson, directory, runnerName) {
  let flow;
  try {
    flow = JSON.parse(flowJson);
    if (!Array.isArray(flow.cases)) throw new Error('no cases');
  } catch (e) {
    throw `malformed flow: ${e}`;
  }
  let store;
  try {
    store = sessionsApi.Store.open(config(directory, flow));
  } catch (e) {
    throw `store.open failed: ${variantName(e) ?? e} ${JSON.stringify(e?.payload?.val ?? '')}`;
  }
  const state = { store, sessions: new Map(), ids: {} };
  const cases = [];
  try {
    for (const c of flow.cases) {
      let actual;
      try {
        actual = { ok: play(state, c) };
      } catch (e) {
        const name = e instanceof MissingSession ? e.outcome : variantName(e);
        if (name === undefined) throw `case ${JSON.stringify(c.name)}: ${e?.stack ?? e}`;
        actual = { error: name };
      }
      cases.push({ name: c.name, actual, pass: sameJson(actual, c.expect) });
    }
  } finally {
    // Drop the handles now, so the store's destructors run (they record
    // each session's expiry for `sweep`).
    for (const s of state.sessions.values()) dispose(s);
    dispose(store);
  }
  return { runner: runnerName, cases, ids: state.ids };
}
