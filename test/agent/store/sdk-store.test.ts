import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { contentTypeFor } from '../../../src/agent/store/content-type.js';
import { S3Store, type EncryptionSettings } from '../../../src/agent/store/sdk-store.js';

// What the adapter sends, without a server: a middleware records each command's input and
// answers it itself. MinIO without a KMS refuses SSE headers, so the integration tier
// cannot show them.
function recordingStore(encryption: EncryptionSettings) {
  const client = new S3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  const sent: Array<{ command: string; input: Record<string, unknown> }> = [];
  const answers: Record<string, object> = {
    CreateMultipartUploadCommand: { UploadId: 'upload-1' },
    UploadPartCommand: { ETag: '"part"' },
    // What S3 names every stored object with (a 2xx without one is not an S3 answer).
    PutObjectCommand: { ETag: '"stored"' },
    CompleteMultipartUploadCommand: { ETag: '"whole-2"' },
  };
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const command = context.commandName ?? '';
      sent.push({ command: command.replace(/Command$/, ''), input: args.input as Record<string, unknown> });
      return { output: { $metadata: {}, ...answers[command] }, response: {} } as never;
    },
    { step: 'initialize', name: 'answerLocally' },
  );
  return { store: new S3Store(client, 'bucket', encryption), sent };
}

const signal = new AbortController().signal;
const info = { size: 3, etag: '"e"', metadata: { mtime: '1.000000' }, headers: { contentType: 'text/markdown; charset=utf-8' } };

async function everyWrite(store: S3Store): Promise<void> {
  await store.put('p/s/artifacts/a.md', 'abc', { metadata: { mtime: '1.000000' } }, signal);
  await store.put('p/s/artifacts/b.bin', Readable.from([Buffer.from('abc')]), { contentLength: 3 }, signal);
  await store.putMultipart('p/s/artifacts/big.tar', Readable.from([Buffer.alloc(9 * 2 ** 20)]), {}, signal);
  await store.copyOnto('p/s/artifacts/a.md', info, signal);
}

describe('S3 adapter requests', () => {
  it.each([
    ['AES256', { sse: 'AES256' as const }, { ServerSideEncryption: 'AES256' }],
    ['aws:kms with a key', { sse: 'aws:kms' as const, sseKmsKeyId: 'arn:aws:kms:eu-west-1:1:key/k' }, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'arn:aws:kms:eu-west-1:1:key/k' }],
    ['aws:kms, the bucket key', { sse: 'aws:kms' as const }, { ServerSideEncryption: 'aws:kms' }],
  ])('S3_SSE=%s: every PutObject, CreateMultipartUpload and CopyObject asks for it', async (_, encryption, headers) => {
    const { store, sent } = recordingStore(encryption);
    await everyWrite(store);
    const writes = sent.filter((request) => ['PutObject', 'CreateMultipartUpload', 'CopyObject'].includes(request.command));
    expect(writes.map((request) => request.command)).toEqual(['PutObject', 'PutObject', 'CreateMultipartUpload', 'CopyObject']);
    for (const write of writes) {
      expect(write.input).toMatchObject(headers);
      if (!('SSEKMSKeyId' in headers)) expect(write.input.SSEKMSKeyId).toBeUndefined();
    }
  });

  it('without S3_SSE sends no encryption header: the bucket default applies', async () => {
    const { store, sent } = recordingStore({});
    await everyWrite(store);
    expect(sent.length).toBeGreaterThanOrEqual(4);
    for (const request of sent) {
      expect(request.input.ServerSideEncryption).toBeUndefined();
      expect(request.input.SSEKMSKeyId).toBeUndefined();
    }
  });

  it('uploads carry a Content-Type from the file name; the refresh copy keeps the object\'s own', async () => {
    const { store, sent } = recordingStore({});
    await everyWrite(store);
    const types = Object.fromEntries(
      sent
        .filter((request) => request.command !== 'UploadPart' && request.command !== 'CompleteMultipartUpload')
        .map((request) => [`${request.command} ${String(request.input.Key)}`, request.input.ContentType]),
    );
    expect(types).toEqual({
      'PutObject p/s/artifacts/a.md': 'text/markdown; charset=utf-8',
      'PutObject p/s/artifacts/b.bin': 'application/octet-stream',
      'CreateMultipartUpload p/s/artifacts/big.tar': 'application/x-tar',
      'CopyObject p/s/artifacts/a.md': 'text/markdown; charset=utf-8',
    });
  });

  it.each([
    ['notes.md', 'text/markdown; charset=utf-8'],
    ['README.TXT', 'text/plain; charset=utf-8'],
    ['metadata.json', 'application/json'],
    ['history.jsonl', 'application/jsonl'],
    ['index.html', 'text/html; charset=utf-8'],
    ['a/b/style.css', 'text/css; charset=utf-8'],
    ['main.js', 'text/javascript; charset=utf-8'],
    ['main.ts', 'text/plain; charset=utf-8'],
    ['run.py', 'text/x-python; charset=utf-8'],
    ['shot.png', 'image/png'],
    ['photo.JPG', 'image/jpeg'],
    ['photo.jpeg', 'image/jpeg'],
    ['anim.gif', 'image/gif'],
    ['logo.svg', 'image/svg+xml'],
    ['paper.pdf', 'application/pdf'],
    ['out.zip', 'application/zip'],
    ['out.tar.gz', 'application/gzip'],
    ['out.tar', 'application/x-tar'],
    ['table.csv', 'text/csv; charset=utf-8'],
    ['conf.yaml', 'application/yaml'],
    ['conf.yml', 'application/yaml'],
    ['build.log', 'text/plain; charset=utf-8'],
    ['Makefile', 'application/octet-stream'],
    ['.claude/.credentials', 'application/octet-stream'],
    ['weights.safetensors', 'application/octet-stream'],
  ])('%s is %s', (key, type) => {
    expect(contentTypeFor(key)).toBe(type);
  });
});
