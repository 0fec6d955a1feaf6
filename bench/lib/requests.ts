export type RequestCounts = Record<string, number>;

// Metrics v3 are computed on every scrape (v2's request counters are cached for 10 s), so a
// scrape right after a tool exits already includes all of its requests.
const METRIC = /^minio_api_requests_total\{([^}]*)\}\s+([0-9.eE+]+)$/;

export async function scrapeRequests(endpoint: string): Promise<RequestCounts> {
  const response = await fetch(`${endpoint}/minio/metrics/v3/api/requests`);
  if (!response.ok) throw new Error(`minio metrics: HTTP ${response.status}`);
  return parseRequests(await response.text());
}

/** Requests per S3 API name from MinIO's Prometheus text. */
export function parseRequests(text: string): RequestCounts {
  const counts: RequestCounts = {};
  for (const line of text.split('\n')) {
    const match = METRIC.exec(line.trim());
    if (!match) continue;
    const name = /name="([^"]+)"/.exec(match[1]!)?.[1];
    if (name) counts[name] = (counts[name] ?? 0) + Number(match[2]);
  }
  return counts;
}

export function diffRequests(after: RequestCounts, before: RequestCounts): RequestCounts {
  const diff: RequestCounts = {};
  for (const [name, value] of Object.entries(after)) {
    const delta = value - (before[name] ?? 0);
    if (delta > 0) diff[name] = delta;
  }
  return diff;
}

// Columns users reason about when they pay per request: writes, reads, metadata reads, lists.
const CLASSES: Array<[string, RegExp]> = [
  ['PUT', /^(PutObject|UploadPart|NewMultipartUpload|CreateMultipartUpload|CompleteMultipartUpload|CopyObject|PutObjectPart)$/],
  ['GET', /^GetObject$/],
  ['HEAD', /^HeadObject$/],
  ['LIST', /^ListObjects(V1|V2)?$/],
  ['DELETE', /^(DeleteObject|DeleteMultipleObjects|DeleteObjects)$/],
];

export function classify(counts: RequestCounts): Record<string, number> {
  const out: Record<string, number> = { PUT: 0, GET: 0, HEAD: 0, LIST: 0, DELETE: 0, other: 0 };
  for (const [name, value] of Object.entries(counts)) {
    const cls = CLASSES.find(([, pattern]) => pattern.test(name))?.[0] ?? 'other';
    out[cls] = (out[cls] ?? 0) + value;
  }
  return out;
}
