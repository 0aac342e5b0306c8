// `npm start` (after `npm run build`): the local Klaviyo sandbox plus a minimal page that loads the built snippet.
// The full demo storefront replaces this page in its own issue.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../dist/node/emulator/index.js';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const port = Number(process.env.PORT || 8080);
const emulator = await startEmulator({ port: Number(process.env.EMULATOR_PORT || 8081) });
const page = readFileSync(here('minimal/index.html'), 'utf8').replaceAll('{{KLAVIYO_URL}}', emulator.url);

const site = createServer((req, res) => {
  const snippet = req.url?.startsWith('/klaviyo-relay.min.js');
  res.writeHead(200, { 'content-type': snippet ? 'text/javascript' : 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(snippet ? readFileSync(here('../dist/klaviyo-relay.min.js')) : page);
});
site.listen(port, '127.0.0.1', () => {
  console.log(`demo page:       http://127.0.0.1:${site.address().port}/`);
  console.log(`Klaviyo sandbox: ${emulator.url}/`);
});
const stop = async () => {
  site.close();
  await emulator.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
