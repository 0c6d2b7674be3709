/**
 * A URL path pattern: a RegExp, or a string where `*` matches any run of
 * characters (slashes included) and everything else is literal. A string
 * without `*` matches that exact path. Matched against the path without the
 * query string.
 */
export type UrlPattern = string | RegExp;

function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

/** One matcher for a list of patterns; an empty or missing list matches nothing. */
export function compilePatterns(patterns: readonly UrlPattern[] | undefined): (path: string) => boolean {
  if (!patterns || patterns.length === 0) return () => false;
  const res = patterns.map((p) => {
    if (p instanceof RegExp) return new RegExp(p.source, p.flags.replace(/[gy]/g, ''));
    if (typeof p !== 'string') throw new TypeError(`URL pattern must be a string or RegExp, got ${typeof p}`);
    return globToRegExp(p);
  });
  return (path) => res.some((re) => re.test(path));
}

/** Path part of a request target (`/a/b?x=1` -> `/a/b`). */
export function pathOf(url: string | undefined): string {
  if (!url) return '/';
  const q = url.search(/[?#]/);
  return q === -1 ? url : url.slice(0, q);
}
