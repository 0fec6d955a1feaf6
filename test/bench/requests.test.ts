import { describe, expect, it } from 'vitest';
import { classify, diffRequests, parseRequests } from '../../bench/lib/requests.js';

// As MinIO's /minio/metrics/v3/api/requests prints it (captured from the pinned server).
const SCRAPE = `# HELP minio_api_requests_incoming_total Total number of incoming requests
# TYPE minio_api_requests_incoming_total gauge
minio_api_requests_incoming_total{type="s3"} 0
# HELP minio_api_requests_total Total number of requests
# TYPE minio_api_requests_total counter
minio_api_requests_total{name="PutBucket",server="127.0.0.1:35467",type="s3"} 1
minio_api_requests_total{name="PutObject",server="127.0.0.1:35467",type="s3"} 10012
minio_api_requests_total{name="HeadObject",server="127.0.0.1:35467",type="s3"} 3
minio_api_requests_total{name="ListObjectsV2",server="127.0.0.1:35467",type="s3"} 2
minio_api_requests_total{name="PutObjectPart",server="127.0.0.1:35467",type="s3"} 40
# HELP minio_api_requests_errors_total Total number of requests with (4xx and 5xx) errors
# TYPE minio_api_requests_errors_total counter
minio_api_requests_errors_total{name="HeadObject",server="127.0.0.1:35467",type="s3"} 3
`;

describe('request accounting from MinIO metrics', () => {
  it('reads the total per API and ignores the other series', () => {
    expect(parseRequests(SCRAPE)).toEqual({
      PutBucket: 1,
      PutObject: 10012,
      HeadObject: 3,
      ListObjectsV2: 2,
      PutObjectPart: 40,
    });
  });

  it('attributes to a tool only the requests made while it ran', () => {
    const before = { PutObject: 100, ListObjectsV2: 2 };
    const after = { PutObject: 103, ListObjectsV2: 2, GetObject: 7 };
    expect(diffRequests(after, before)).toEqual({ PutObject: 3, GetObject: 7 });
  });

  it('groups APIs into the classes a bill shows, multipart parts counting as writes', () => {
    expect(classify(parseRequests(SCRAPE))).toEqual({ PUT: 10052, GET: 0, HEAD: 3, LIST: 2, DELETE: 0, other: 1 });
  });
});
