import picomatch from 'picomatch';

export interface ExcludeMatcher {
  // Whether a directory (path relative to its sync root) is pruned: nothing below it is read.
  prunesDir(relativeDir: string): boolean;
  excludesFile(relativePath: string): boolean;
}

type Test = (candidate: string) => boolean;

interface Compiled {
  anchored: boolean;
  file: Test;
  // Set for patterns that exclude a whole tree ("x/**"): matched against directories.
  dir: Test | undefined;
}

// rclone filter semantics: a pattern without a leading "/" is unanchored (it matches at
// any depth), "*" stays within one path segment and "**" crosses "/".
function compile(pattern: string): Compiled {
  const anchored = pattern.startsWith('/');
  const body = anchored ? pattern.slice(1) : pattern;
  const options = { dot: true };
  const treeBody = body.endsWith('/**') ? body.slice(0, -3) : body.endsWith('/') ? body.slice(0, -1) : undefined;
  return {
    anchored,
    file: picomatch(body.endsWith('/') ? `${body}**` : body, options),
    dir: treeBody === undefined || treeBody === '' ? undefined : picomatch(treeBody, options),
  };
}

// Every tail of the path that starts at a segment boundary: "a/b/c", "b/c", "c".
function tails(relativePath: string): string[] {
  const segments = relativePath.split('/');
  return segments.map((_, index) => segments.slice(index).join('/'));
}

function matches(compiled: Compiled, test: Test, relativePath: string, pathTails: readonly string[]): boolean {
  if (compiled.anchored) return test(relativePath);
  return pathTails.some((tail) => test(tail));
}

// The tails are computed once per path, not once per pattern: the walk asks this for every
// file it lists.
export function compileExcludes(patterns: readonly string[]): ExcludeMatcher {
  const compiled = patterns.map(compile);
  const treePatterns = compiled.filter((entry) => entry.dir !== undefined);
  return {
    prunesDir: (relativeDir) => {
      if (treePatterns.length === 0) return false;
      const pathTails = tails(relativeDir);
      return treePatterns.some((entry) => entry.dir !== undefined && matches(entry, entry.dir, relativeDir, pathTails));
    },
    excludesFile: (relativePath) => {
      if (compiled.length === 0) return false;
      const pathTails = tails(relativePath);
      return compiled.some((entry) => matches(entry, entry.file, relativePath, pathTails));
    },
  };
}
