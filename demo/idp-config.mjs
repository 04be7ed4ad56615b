// Prints the demo OpenID Provider's IDP_CONFIG (test-harness/oidc/idp.mjs reads it) from
// demo/users.json: client `qwen-web-chat` with the secret in OAUTH_CLIENT_SECRET, accepting any
// loopback redirect URI (so the gateway's callback needs no registration), and the demo users.
// Used by scripts/demo.sh and docker-compose.yml.
//
//   OAUTH_CLIENT_SECRET=... node demo/idp-config.mjs [port]
import { readFileSync } from 'node:fs';

const secret = process.env.OAUTH_CLIENT_SECRET;
if (!secret) {
  console.error('OAUTH_CLIENT_SECRET is not set');
  process.exit(2);
}
const { users } = JSON.parse(readFileSync(new URL('./users.json', import.meta.url), 'utf8'));
process.stdout.write(JSON.stringify({
  port: Number(process.argv[2] || 9400),
  clients: [{
    client_id: 'qwen-web-chat',
    client_secret: secret,
    redirect_uris: [],
    post_logout_redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  users,
  extra_scopes: ['chat:read', 'chat:write', 'history:team-a', 'history:team-b'],
}));
