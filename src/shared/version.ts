import manifest from '../../package.json' with { type: 'json' };

// The package manifest's version, so the one in status annotations, metadata.json and logs
// is the one that was built: the bundle (scripts/build.mjs) carries it inside.
export const VERSION: string = manifest.version;
