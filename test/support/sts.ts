import aws4 from 'aws4';
import type { MinioInfo } from './minio.js';

export interface TemporaryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: string;
}

function field(xml: string, name: string): string {
  const value = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
  if (value === undefined) throw new Error(`STS answer without ${name}: ${xml.slice(0, 500)}`);
  return value;
}

function credentialsOf(xml: string): TemporaryCredentials {
  return {
    accessKeyId: field(xml, 'AccessKeyId'),
    secretAccessKey: field(xml, 'SecretAccessKey'),
    sessionToken: field(xml, 'SessionToken'),
    expiration: field(xml, 'Expiration'),
  };
}

// MinIO's STS AssumeRole: temporary credentials (with a session token) for a user's keys,
// what AWS STS gives a role session.
export async function assumeRole(minio: MinioInfo, user: { accessKey: string; secretKey: string }, durationSeconds = 900): Promise<TemporaryCredentials> {
  const url = new URL(minio.endpoint);
  const body = `Action=AssumeRole&DurationSeconds=${durationSeconds}&Version=2011-06-15`;
  const signed = aws4.sign(
    { host: url.host, path: '/', method: 'POST', service: 'sts', region: minio.region, body, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    { accessKeyId: user.accessKey, secretAccessKey: user.secretKey },
  );
  const response = await fetch(minio.endpoint, { method: 'POST', headers: signed.headers as Record<string, string>, body });
  const text = await response.text();
  if (!response.ok) throw new Error(`AssumeRole: HTTP ${response.status}: ${text.slice(0, 500)}`);
  return credentialsOf(text);
}
