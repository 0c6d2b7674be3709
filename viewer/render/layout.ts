import type { Viewer } from '../auth';
import { describeScope } from '../scope';
import { type Markup, html } from './html';

export interface PageFrame {
  title: string;
  viewer: Viewer | null;
  /** The CSRF token for the sign-out form (pages of a signed-in session). */
  csrf: string | null;
  body: Markup;
}

/**
 * The frame of every page: a skip link, a landmark per region and a heading
 * first, so keyboard and screen-reader users get straight to the content; the
 * stylesheet uses relative units only, so 200 % zoom reflows instead of scrolling sideways.
 */
export function page(frame: PageFrame): string {
  const v = frame.viewer;
  const signOut =
    v && v.via === 'session' && frame.csrf
      ? html`<form method="post" action="/signout" class="signout"><input type="hidden" name="_csrf" value="${frame.csrf}"><button type="submit">Sign out</button></form>`
      : null;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${frame.title} · audit viewer</title>
<link rel="stylesheet" href="/static/viewer.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<nav aria-label="Main"><a href="/">Search</a></nav>
${v ? html`<p class="who">Signed in as <strong>${v.identity}</strong> <span class="scope">(${describeScope(v.scope)})</span></p>${signOut}` : null}
</header>
<main id="main" tabindex="-1">
<h1>${frame.title}</h1>
${frame.body}
</main>
</body>
</html>
`.text;
}

/** Relative units and system fonts only; no script anywhere (the CSP forbids it). */
export const STYLESHEET = `
:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.4; }
body { margin: 0 auto; max-width: 80rem; padding: 0 1rem 2rem; }
.skip { position: absolute; left: -100vw; }
.skip:focus { left: 1rem; top: 1rem; background: Canvas; padding: .5rem; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: baseline; justify-content: space-between; border-bottom: 1px solid GrayText; }
header form { display: inline; }
a:focus, button:focus, input:focus, select:focus { outline: .2rem solid Highlight; outline-offset: .1rem; }
form.search { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: .5rem 1rem; align-items: end; margin: 1rem 0; }
label { display: flex; flex-direction: column; font-weight: 600; }
input, select, button { font: inherit; padding: .3rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid GrayText; padding: .3rem .4rem; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
.events { display: block; overflow-x: auto; }
.diff del { text-decoration: line-through; }
.diff ins { text-decoration: underline; }
.exports, .pager { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0; }
.empty { font-style: italic; }
.error { border: .15rem solid; padding: .5rem; }
`;
