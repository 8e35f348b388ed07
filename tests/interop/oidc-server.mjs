// A real OpenID Connect provider (the certified `oidc-provider` package) on 127.0.0.1 for the
// interop test: device flow, refresh-token rotation, revocation, a public native client, and
// short-lived access tokens (120 s, so auth-app-server always finds them stale).
//
// Prints one line {"issuer": "..."} on stdout when ready. GET /__stats answers how many
// requests reached the token and revocation endpoints.

import http from 'node:http';
import Provider from 'oidc-provider';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'interop-client',
    client_name: 'auth-app-server interop',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
  }],
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
  },
  scopes: ['openid', 'offline_access'],
  claims: { openid: ['sub'], email: ['email'] },
  rotateRefreshToken: true,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: 120,
    IdToken: 3600,
    RefreshToken: 86400,
    DeviceCode: 600,
    Grant: 86400,
    Interaction: 3600,
    Session: 86400,
  },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, email: `${sub}@example.com` }),
  }),
});

const stats = { token: 0, revocation: 0 };
const callback = provider.callback();
server.on('request', (req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/__stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.method === 'POST' && path === '/token') stats.token += 1;
  if (req.method === 'POST' && path === '/token/revocation') stats.revocation += 1;
  callback(req, res);
});

console.log(JSON.stringify({ issuer }));
