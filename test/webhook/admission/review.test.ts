import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reviewJson } from '../../../src/webhook/admission/review.js';

describe('reviewJson', () => {
  const base64 = fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('base64'));
  it('is JSON.stringify of any response, patch or none, whatever its other fields hold', () => {
    fc.assert(
      fc.property(fc.string(), fc.option(base64, { nil: undefined }), fc.array(fc.string(), { maxLength: 3 }), (uid, patch, warnings) => {
        const response = {
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: { uid, allowed: true, ...(patch === undefined ? {} : { patchType: 'JSONPatch', patch }), warnings },
        };
        expect(reviewJson(response)).toBe(JSON.stringify(response));
      }),
      { numRuns: 1000 },
    );
    const tricky = { response: { uid: '"patch":""', patch: 'W10=' } };
    expect(reviewJson(tricky)).toBe(JSON.stringify(tricky));
  });
});
