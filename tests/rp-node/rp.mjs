// A relying party built on openid-client (the current major version) at its
// defaults: client_secret_post, PKCE S256, state and nonce checked, ID token
// validated. The only non-default is allowInsecureRequests, because the test
// issuer is http on a loopback address. The user agent part (sign in,
// consent) is plain HTTP with a small cookie jar.
//
// Input (environment): ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
// USERNAME, PASSWORD, and MODE: unset for a plain authorization URL, `par`
// for a pushed authorization request (RFC 9126) with
// buildAuthorizationUrlWithPAR, `par-dpop` for that with the library's
// DPoP (RFC 9449) on every request, `device` for the device authorization
// grant (RFC 8628: initiateDeviceAuthorization, the user agent at
// verification_uri_complete, pollDeviceAuthorizationGrant). Output: one
// JSON line describing what happened; exit status 0 only if every step
// succeeded.
import * as client from 'openid-client';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const issuer = new URL(env('ISSUER'));
const redirectUri = env('REDIRECT_URI');

const config = await client.discovery(
  issuer,
  env('CLIENT_ID'),
  env('CLIENT_SECRET'),
  undefined,
  { execute: [client.allowInsecureRequests] },
);

const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const mode = process.env.MODE ?? 'plain';
const parameters = {
  redirect_uri: redirectUri,
  scope: 'openid email offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: 'S256',
  state,
  nonce,
};
// `par-dpop`: the library's own DPoP (RFC 9449) on every request, with a
// key pair of its making; the proof at the pushed request binds the code.
const DPoP = mode === 'par-dpop'
  ? client.getDPoPHandle(config, await client.randomDPoPKeyPair())
  : undefined;
const options = DPoP ? { DPoP } : undefined;
let authorizeUrl;
let deviceAuthorization;
if (mode === 'par' || mode === 'par-dpop') {
  authorizeUrl = await client.buildAuthorizationUrlWithPAR(config, parameters, options);
} else if (mode === 'plain') {
  authorizeUrl = client.buildAuthorizationUrl(config, parameters);
} else if (mode === 'device') {
  deviceAuthorization = await client.initiateDeviceAuthorization(config, {
    scope: 'openid email offline_access',
  });
  authorizeUrl = new URL(deviceAuthorization.verification_uri_complete);
} else {
  throw new Error(`unknown MODE ${mode}`);
}
// What the browser is sent to: with PAR, client_id and request_uri only.
const sentParameters = [...authorizeUrl.searchParams.keys()].sort();
// The device polls (waiting `interval` seconds before each poll, slowing
// down when told) while the user signs in on the "other device" below.
const polling = deviceAuthorization
  ? client.pollDeviceAuthorizationGrant(config, deviceAuthorization)
  : undefined;

// --- the user agent: follow redirects, keep cookies, fill the two forms.
const jar = new Map();
const send = async (url, init = {}) => {
  const headers = new Headers(init.headers);
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const r = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const c of r.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
  }
  return r;
};
const hidden = (html, name) => {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!m) throw new Error(`no hidden ${name} in the page`);
  return m[1].replaceAll('&amp;', '&').replaceAll('&#x2F;', '/').replaceAll('&quot;', '"').replaceAll('&#x27;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>');
};
let next = authorizeUrl.href;
let callback;
let deviceApproved = false;
for (let i = 0; i < 10 && !callback && !deviceApproved; i++) {
  let r = await send(next);
  if (r.status === 200) {
    const html = await r.text();
    if (html.includes('id="device-approved"')) {
      deviceApproved = true;
      break;
    }
    let form;
    let action;
    if (html.includes('action="/device"')) {
      // verification_uri_complete prefills the code; the user confirms it.
      const code = html.match(/id="user_code"[^>]*value="([^"]*)"/);
      if (!code || code[1] !== deviceAuthorization.user_code) throw new Error('the code is not prefilled');
      form = new URLSearchParams({ csrf: hidden(html, 'csrf'), user_code: code[1] });
      r = await send(new URL('/device', issuer), { method: 'POST', body: form });
      if (r.status !== 303) throw new Error(`unexpected status ${r.status} for the user code`);
      next = new URL(r.headers.get('location'), issuer).href;
      continue;
    }
    form = new URLSearchParams({ csrf: hidden(html, 'csrf'), tx: hidden(html, 'tx') });
    if (html.includes('action="/login"')) {
      action = '/login';
      form.set('username', env('USERNAME'));
      form.set('password', env('PASSWORD'));
    } else if (html.includes('action="/consent"')) {
      action = '/consent';
      form.set('decision', 'allow');
    } else {
      throw new Error(`unexpected page at ${next}`);
    }
    r = await send(new URL(action, issuer), { method: 'POST', body: form });
  }
  if (r.status < 300 || r.status >= 400) throw new Error(`unexpected status ${r.status} at ${next}`);
  const location = new URL(r.headers.get('location'), issuer).href;
  if (location.startsWith(redirectUri)) callback = location;
  next = location;
}
if (!callback && !deviceApproved) throw new Error('the authorization did not come back to the client');

// --- back at the client: the library's own checks.
const tokens = polling
  ? await polling
  : await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  }, undefined, options);
const claims = tokens.claims();
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, options);
const userinfo = await client.fetchUserInfo(config, refreshed.access_token, claims.sub, options);
const active = await client.tokenIntrospection(config, refreshed.access_token);
await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
const afterRevocation = await client.tokenIntrospection(config, refreshed.refresh_token, {
  token_type_hint: 'refresh_token',
});
let refreshAfterRevocation = 'accepted';
try {
  await client.refreshTokenGrant(config, refreshed.refresh_token, undefined, options);
} catch (e) {
  refreshAfterRevocation = e.error ?? e.code ?? String(e);
}

console.log(JSON.stringify({
  mode,
  sent_parameters: sentParameters,
  pushed_authorization_request_endpoint: config.serverMetadata().pushed_authorization_request_endpoint,
  token_endpoint_auth_method: config.clientMetadata().token_endpoint_auth_method ?? 'client_secret_post (default)',
  sub: claims.sub,
  email: claims.email,
  nonce_checked: polling ? claims.nonce === undefined : claims.nonce === nonce,
  device_user_code: deviceAuthorization?.user_code ?? null,
  device_interval: deviceAuthorization?.interval ?? null,
  refreshed: typeof refreshed.access_token === 'string' && refreshed.refresh_token !== tokens.refresh_token,
  token_type: tokens.token_type,
  refreshed_token_type: refreshed.token_type,
  userinfo_email: userinfo.email,
  introspection_active: active.active,
  introspected_token_type: active.token_type,
  introspected_cnf_jkt: active.cnf?.jkt ?? null,
  introspected_client: active.client_id,
  revoked_refresh_active: afterRevocation.active,
  refresh_after_revocation: refreshAfterRevocation,
}));
