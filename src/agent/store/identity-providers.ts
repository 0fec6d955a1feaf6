import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { socketPoolOptions } from './http-agent.js';

// The AWS SDK's providers of a workload identity, loaded by credentials.ts only in that
// mode. Static imports here, a dynamic import of this module there: the bundle resolves
// these packages to their CommonJS builds, whose named exports a dynamic import of the
// package itself would not expose.
export { fromTokenFile } from '@aws-sdk/credential-provider-web-identity';
export { fromHttp } from '@aws-sdk/credential-provider-http';

// STS is reached like S3: through HTTPS_PROXY unless NO_PROXY names it (the SDK's default
// handler would go direct). One exchange at a time needs no more than two sockets.
export function stsRequestHandler(): NodeHttpHandler {
  const options = socketPoolOptions(2);
  return new NodeHttpHandler({ httpAgent: new HttpAgent(options), httpsAgent: new HttpsAgent(options), connectionTimeout: 5_000, requestTimeout: 30_000 });
}
