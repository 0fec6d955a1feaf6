import type { Failure } from './store.js';

/*
 * A bucket addressed with the wrong S3_REGION. AWS answers 301 PermanentRedirect (with
 * x-amz-bucket-region) or 400 AuthorizationHeaderMalformed ("the region 'us-east-1' is
 * wrong; expecting 'eu-west-1'"), MinIO and Ceph the latter; retrying the same signature
 * cannot succeed, so it is a permanent failure that names the region to set.
 */

const REGION_CODES = ['PermanentRedirect', 'AuthorizationHeaderMalformed', 'IllegalLocationConstraintException', 'InvalidRegion'];

export function isRegionError(codes: ReadonlySet<string>, status: unknown): boolean {
  return status === 301 || REGION_CODES.some((code) => codes.has(code));
}

export function regionFailure(message: string, bucketRegion: string | undefined): Failure {
  // The header of AWS's redirect, else the message of a malformed-authorization answer.
  const region = bucketRegion ?? /expecting '([a-z0-9-]+)'/.exec(message)?.[1];
  const fix = region === undefined ? 'set S3_REGION to the region the bucket is in' : `the bucket is in ${region}: set S3_REGION=${region}`;
  return { kind: 'wrong region', detail: `${fix} (${message})` };
}
