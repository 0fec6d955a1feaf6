import { XMLParser } from 'fast-xml-parser';

/*
 * S3's XML, read and written as the SDK does: text kept verbatim (a key may be " 007" or
 * "true"), XML's entities and character references decoded, and each element that can
 * repeat (a listed object, a deleted key, a per-key error) an array even when it is alone.
 */

const REPEATED = new Set(['ListBucketResult.Contents', 'DeleteResult.Deleted', 'DeleteResult.Error']);

const parser = new XMLParser({
  ignoreAttributes: true,
  ignoreDeclaration: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: true,
  isArray: (_name, jpath) => typeof jpath === 'string' && REPEATED.has(jpath),
});

/** The document, or undefined for text that is not XML (a proxy's page). */
export function parseXml(text: string): unknown {
  try {
    return parser.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

// The SDK's escaping of element text, line breaks included: a key is sent as it is named.
const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '"': '&quot;',
  "'": '&apos;',
  '<': '&lt;',
  '>': '&gt;',
  '\r': '&#x0D;',
  '\n': '&#x0A;',
  '\u0085': '&#x85;',
  '\u2028': '&#x2028;',
};

export function escapeXml(text: string): string {
  return text.replace(/[&"'<>\r\n\u0085\u2028]/g, (char) => ESCAPES[char]!);
}
