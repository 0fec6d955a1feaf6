import type { AgentSettings } from '../settings.js';

/*
 * The server-side encryption every write asks for when S3_SSE is set (absent: the bucket's
 * default applies), in the two spellings of one setting: the lean requests' headers and the
 * SDK's parameters (CreateMultipartUpload, CopyObject).
 */

export type EncryptionSettings = Pick<AgentSettings, 'sse' | 'sseKmsKeyId'>;

export function encryptionHeaders(settings: EncryptionSettings): Record<string, string> {
  const headers: Record<string, string> = {};
  if (settings.sse === undefined) return headers;
  headers['x-amz-server-side-encryption'] = settings.sse;
  if (settings.sseKmsKeyId !== undefined) headers['x-amz-server-side-encryption-aws-kms-key-id'] = settings.sseKmsKeyId;
  return headers;
}

export function encryptionParameters(settings: EncryptionSettings): { ServerSideEncryption?: EncryptionSettings['sse']; SSEKMSKeyId?: string } {
  if (settings.sse === undefined) return {};
  return { ServerSideEncryption: settings.sse, ...(settings.sseKmsKeyId === undefined ? {} : { SSEKMSKeyId: settings.sseKmsKeyId }) };
}
