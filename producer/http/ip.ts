import { BlockList, isIP } from 'node:net';

/**
 * Which proxies in front of the app may be believed about the client address
 * (`X-Forwarded-For`):
 * - `false` / `undefined` / `0` (default): none; the client is the socket's peer.
 * - `true`: every hop; the client is the left-most address of the header (only
 *   safe when the proxy in front overwrites the header).
 * - a number `n`: the `n` proxies nearest the app; the client is the `n`-th address
 *   from the right of `socket, ...X-Forwarded-For` (1 = one proxy in front).
 * - a list of IPs / CIDRs (and the presets `loopback`, `linklocal`, `uniquelocal`):
 *   hops from these addresses are trusted; the client is the first untrusted
 *   address walking right to left.
 * - a function `(address, hop) => boolean`, hop 0 being the socket's peer.
 */
export type TrustProxy = boolean | number | readonly string[] | ((address: string, hop: number) => boolean);

export type IpResolver = (socketAddress: string | undefined | null, forwardedFor: string | readonly string[] | undefined) => string | null;

const PRESETS: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** Address as written in a header or by the socket: v4-mapped v6, brackets, ports and zones removed. `null` when not an IP. */
export function normalizeIp(raw: string | undefined | null): string | null {
  if (!raw) return null;
  let s = raw.trim().replace(/^"|"$/g, '');
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end > 0) s = s.slice(1, end);
  } else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(s)) {
    s = s.slice(0, s.lastIndexOf(':'));
  }
  const zone = s.indexOf('%');
  if (zone > 0) s = s.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(s);
  if (mapped) s = mapped[1]!;
  return isIP(s) ? s.toLowerCase() : null;
}

function compileList(entries: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of entries.flatMap((e) => PRESETS[e] ?? [e])) {
    const [addr, bits] = entry.split('/');
    const ip = normalizeIp(addr);
    if (!ip) throw new TypeError(`trustProxy: not an IP address or CIDR: ${JSON.stringify(entry)}`);
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) {
      list.addAddress(ip, family);
    } else {
      const prefix = Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) {
        throw new TypeError(`trustProxy: bad prefix length in ${JSON.stringify(entry)}`);
      }
      list.addSubnet(ip, prefix, family);
    }
  }
  return (address) => list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

function forwardedList(header: string | readonly string[] | undefined): string[] {
  if (header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join(',');
  return text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Builds the resolver once (configuration errors throw here, at start-up, never
 * per request). An unparsable hop ends the walk: the last good address is the client.
 */
export function createIpResolver(trust: TrustProxy | undefined): IpResolver {
  if (trust === undefined || trust === false || trust === 0) return (socket) => normalizeIp(socket);
  let trusted: (address: string, hop: number) => boolean;
  if (trust === true) trusted = () => true;
  else if (typeof trust === 'number') {
    if (!Number.isInteger(trust) || trust < 0) throw new TypeError(`trustProxy: hop count must be a non-negative integer, got ${trust}`);
    trusted = (_a, hop) => hop < trust;
  } else if (typeof trust === 'function') trusted = trust;
  else {
    const inList = compileList(trust);
    trusted = (address) => inList(address);
  }
  return (socket, forwardedFor) => {
    let client = normalizeIp(socket);
    if (client === null) return null;
    const hops = forwardedList(forwardedFor).reverse();
    for (let hop = 0; hop < hops.length; hop++) {
      if (!trusted(client, hop)) break;
      const next = normalizeIp(hops[hop]);
      if (next === null) break;
      client = next;
    }
    return client;
  };
}
