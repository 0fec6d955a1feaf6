// The AWS SDK's providers of a workload identity, loaded by credentials.ts only in that
// mode. Static imports here, a dynamic import of this module there: the bundle resolves
// these packages to their CommonJS builds, whose named exports a dynamic import of the
// package itself would not expose.
export { fromTokenFile } from '@aws-sdk/credential-provider-web-identity';
export { fromHttp } from '@aws-sdk/credential-provider-http';
