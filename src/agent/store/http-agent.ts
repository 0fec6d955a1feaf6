import type { AgentOptions } from 'node:http';

/*
 * The options of the socket pool the agent sends S3 requests through (s3-endpoint.ts's,
 * which the SDK client shares): keep-alive, sized to the transfer pool, and the cluster's
 * proxy. HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured by Node's own agents when given
 * `proxyEnv` (Node >= 24.5, the image's runtime). A private CA reaches the pool through
 * NODE_EXTRA_CA_CERTS, which Node reads at start.
 */
export function socketPoolOptions(workers: number, env: NodeJS.ProcessEnv = process.env): AgentOptions {
  const proxied = Boolean(env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy);
  return { keepAlive: true, maxSockets: workers, maxFreeSockets: workers, ...(proxied ? { proxyEnv: env } : {}) };
}
