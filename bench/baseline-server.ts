import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

// The floor the webhook is measured against: a bare node:https server doing only what any
// webhook must (read the body, JSON.parse it, answer a response of the webhook's own size),
// with the same TLS settings and the same certificate, under the same client in the same
// run. Settings come from the environment, as the webhook's do.
const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};
const answer = readFileSync(env('ANSWER_FILE'));
const server = createServer(
  { cert: readFileSync(env('TLS_CERT_FILE')), key: readFileSync(env('TLS_KEY_FILE')), minVersion: 'TLSv1.2' },
  (req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ready');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length }).end(answer);
    });
  },
);
server.listen(Number(env('PORT')), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
