// Node prints these deprecations only for calls from outside node_modules. In the bundle
// (scripts/build.mjs) the dependencies run from dist/, so calls Node stays quiet about in an
// installed package would print on every start of the webhook and the tools: url.parse()
// in node-fetch (under the Kubernetes client), express's parseurl and aws4, and punycode in
// tr46. Our own code uses neither API.
const DEPENDENCY_DEPRECATIONS = new Set(['DEP0169', 'DEP0040']);

/** Drops the deprecation warnings that only bundled dependencies raise. */
export function quietDependencyDeprecations(target: NodeJS.Process = process): void {
  const emitWarning = target.emitWarning.bind(target) as (...args: unknown[]) => void;
  target.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = codeOf(warning, rest);
    if (code !== undefined && DEPENDENCY_DEPRECATIONS.has(code)) return;
    emitWarning(warning, ...rest);
  }) as NodeJS.Process['emitWarning'];
}

// emitWarning(warning, type, code) or emitWarning(warning, { type, code }).
function codeOf(warning: string | Error, rest: unknown[]): string | undefined {
  if (warning instanceof Error && 'code' in warning) return String(warning.code);
  const [second, third] = rest;
  if (typeof second === 'object' && second !== null) return (second as { code?: string }).code;
  return typeof third === 'string' ? third : undefined;
}
