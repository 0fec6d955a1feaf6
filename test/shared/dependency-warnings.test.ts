import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { quietDependencyDeprecations } from '../../src/shared/dependency-warnings.js';

// A process stand-in whose emitWarning records what it would print.
function fakeProcess(): { target: NodeJS.Process; printed: unknown[][] } {
  const printed: unknown[][] = [];
  const target = Object.assign(new EventEmitter(), { emitWarning: (...args: unknown[]) => void printed.push(args) });
  return { target: target as unknown as NodeJS.Process, printed };
}

describe('deprecations only bundled dependencies raise', () => {
  it('drops url.parse() and punycode deprecations in each calling form, and keeps every other warning', () => {
    const { target, printed } = fakeProcess();
    quietDependencyDeprecations(target);
    target.emitWarning('`url.parse()` behavior is not standardized', 'DeprecationWarning', 'DEP0169');
    target.emitWarning('The `punycode` module is deprecated', { type: 'DeprecationWarning', code: 'DEP0040' });
    target.emitWarning(Object.assign(new Error('url.parse'), { name: 'DeprecationWarning', code: 'DEP0169' }));
    target.emitWarning('Buffer() is deprecated', 'DeprecationWarning', 'DEP0005');
    target.emitWarning('something else');
    expect(printed).toEqual([['Buffer() is deprecated', 'DeprecationWarning', 'DEP0005'], ['something else']]);
  });
});
