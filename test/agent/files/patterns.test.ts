import { describe, expect, it } from 'vitest';
import { DEFAULT_EXCLUDE } from '../../../src/agent/settings.js';
import { compileExcludes } from '../../../src/agent/files/patterns.js';

const defaults = compileExcludes(DEFAULT_EXCLUDE.split(','));

describe('exclude patterns (rclone-style)', () => {
  it('prunes excluded directories at any depth', () => {
    expect(defaults.prunesDir('node_modules')).toBe(true);
    expect(defaults.prunesDir('app/web/node_modules')).toBe(true);
    expect(defaults.prunesDir('repos')).toBe(true);
    expect(defaults.prunesDir('.venv')).toBe(true);
    expect(defaults.prunesDir('pkg/__pycache__')).toBe(true);
  });

  it('keeps directories that only resemble an excluded one', () => {
    expect(defaults.prunesDir('node_modules_backup')).toBe(false);
    expect(defaults.prunesDir('my-repos')).toBe(false);
    expect(defaults.prunesDir('src')).toBe(false);
  });

  it('excludes files below an excluded tree, wherever it is', () => {
    expect(defaults.excludesFile('node_modules/left-pad/index.js')).toBe(true);
    expect(defaults.excludesFile('a/b/repos/x/y/z.txt')).toBe(true);
    expect(defaults.excludesFile('notes/repos.md')).toBe(false);
  });

  it('keeps "*" inside one segment and lets "**" cross "/"', () => {
    const matcher = compileExcludes(['*.log', 'cache/**/*.tmp']);
    expect(matcher.excludesFile('debug.log')).toBe(true);
    expect(matcher.excludesFile('deep/dir/debug.log')).toBe(true);
    expect(matcher.excludesFile('cache/a/b/c.tmp')).toBe(true);
    expect(matcher.excludesFile('cache/c.tmp')).toBe(true);
    expect(matcher.excludesFile('debug.log.txt')).toBe(false);
    expect(matcher.prunesDir('cache')).toBe(false);
  });

  it('anchors patterns with a leading "/" at the sync root', () => {
    const matcher = compileExcludes(['/build/**']);
    expect(matcher.prunesDir('build')).toBe(true);
    expect(matcher.prunesDir('src/build')).toBe(false);
  });

  it('matches dot files and directories', () => {
    const matcher = compileExcludes(['*.swp', '.cache/']);
    expect(matcher.excludesFile('.notes.swp')).toBe(true);
    expect(matcher.prunesDir('x/.cache')).toBe(true);
  });
});
