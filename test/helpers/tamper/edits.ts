/**
 * Edits of one field or line of a stored object, as someone without a key
 * would make them: JSON leaves (inside a signed envelope's body too, keeping
 * the signature), the header of a day manifest, lines of a symlink manifest.
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface Leaf {
  path: (string | number)[];
  value: Json;
}

function leaves(v: Json, path: (string | number)[] = [], out: Leaf[] = []): Leaf[] {
  if (Array.isArray(v)) {
    // An array is a leaf too: its edit drops an element.
    if (v.length > 0) out.push({ path, value: v });
    v.forEach((x, i) => leaves(x, [...path, i], out));
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) leaves(x, [...path, k], out);
  } else {
    out.push({ path, value: v });
  }
  return out;
}

function changed(value: Json, delta: number): Json {
  if (Array.isArray(value)) return value.slice(1);
  if (typeof value === 'number') return value + delta;
  if (typeof value === 'boolean') return !value;
  if (value === null) return 0;
  if (typeof value === 'string') {
    if (/^-?\d+$/.test(value)) return (BigInt(value) + BigInt(delta)).toString();
    if (/^[0-9a-f]{8,}$/.test(value)) return value.slice(0, -1) + (value.endsWith('0') ? '1' : '0');
    return `${value}x`;
  }
  return value;
}

function setAt(root: Json, path: readonly (string | number)[], value: Json): Json {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (Array.isArray(root)) return root.map((x, i) => (i === head ? setAt(x, rest, value) : x));
  const obj = root as { [k: string]: Json };
  return { ...obj, [head as string]: setAt(obj[head as string]!, rest, value) };
}

function editValue(doc: Json, pick: number, delta: number): { doc: Json; what: string } {
  const all = leaves(doc);
  if (all.length === 0) return { doc, what: 'no field' };
  const leaf = all[pick % all.length]!;
  return { doc: setAt(doc, leaf.path, changed(leaf.value, delta)), what: `${leaf.path.join('.') || '(root)'}: ${short(leaf.value)} -> ${short(changed(leaf.value, delta))}` };
}

const short = (v: Json) => {
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
};

/** One JSON field changed; in a signed envelope, a field of the body (the signature kept) or the key id. */
export function editJsonLeaf(text: string, pick: number, delta: number): { text: string; what: string } {
  let doc: Json;
  try {
    doc = JSON.parse(text) as Json;
  } catch {
    return { text: `${text} `, what: 'not JSON: a space appended' };
  }
  const env = doc as { format?: Json; body?: Json };
  if (env && typeof env === 'object' && typeof env.body === 'string' && pick % 5 !== 4) {
    try {
      const r = editValue(JSON.parse(env.body) as Json, Math.floor(pick / 5), delta);
      return { text: JSON.stringify({ ...env, body: JSON.stringify(r.doc) }), what: `body.${r.what}` };
    } catch {
      // Not a JSON body: edit the envelope itself below.
    }
  }
  const r = editValue(doc, pick, delta);
  return { text: JSON.stringify(r.doc), what: r.what };
}

/** "AQM1", uint32 LE header length, header JSON, Bloom bits (catalog/day-manifest.ts): one header field changed. */
export function editManifestBin(bytes: Buffer, pick: number, delta: number): { bytes: Buffer; what: string } {
  if (bytes.length < 8 || bytes.subarray(0, 4).toString('latin1') !== 'AQM1') return { bytes: Buffer.concat([bytes, Buffer.from([0])]), what: 'not a manifest: a byte appended' };
  const len = bytes.readUInt32LE(4);
  const header = bytes.subarray(8, 8 + len).toString('utf8');
  const r = editJsonLeaf(header, pick, delta);
  const h = Buffer.from(r.text, 'utf8');
  const lenBuf = Buffer.alloc(4);
  lenBuf.writeUInt32LE(h.length);
  return { bytes: Buffer.concat([bytes.subarray(0, 4), lenBuf, h, bytes.subarray(8 + len)]), what: `header ${r.what}` };
}

/** A symlink manifest with one line dropped or doubled. */
export function editLines(text: string, pick: number): { text: string; what: string } {
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines.length === 0) return { text: 'file:///nonexistent.parquet\n', what: 'a line added to an empty manifest' };
  const i = pick % lines.length;
  const drop = pick % 2 === 0;
  const out = drop ? lines.filter((_, j) => j !== i) : [...lines.slice(0, i + 1), lines[i]!, ...lines.slice(i + 1)];
  return { text: `${out.join('\n')}\n`, what: `line ${i} ${drop ? 'dropped' : 'doubled'}` };
}
