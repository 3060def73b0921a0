const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page a browser gets with its 401: inline styles only, no script, so it needs no asset behind the token. */
export function loginPage(error: string | null): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>Vigil console: sign in</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;display:grid;place-items:center;min-height:100vh;margin:0;background:Canvas;color:CanvasText}
form{display:grid;gap:.6rem;padding:2rem;border:1px solid #8886;border-radius:8px;min-width:20rem}
h1{font-size:1.2rem;margin:0 0 .4rem}input,button{font:inherit;padding:.45rem .6rem;border-radius:5px;border:1px solid #8888}
button{cursor:pointer;background:#2563eb;color:#fff;border-color:#2563eb}.err{color:#dc2626}small{opacity:.75}
</style></head><body>
<form method="post" action="/login">
<h1>Vigil console</h1>
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${error ? `<div class="err" role="alert">${escapeHtml(error)}</div>` : ""}
<button type="submit">Sign in</button>
<small>The token is <code>console.token</code> in the Vigil configuration.</small>
</form></body></html>
`;
}
