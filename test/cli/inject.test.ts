import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';

const root = new URL('../../', import.meta.url).pathname;
const cli = `${root}dist/cli.js`;
const fixture = (path: string) => `${root}test/fixtures/${path}`;

function inject(args: string[], options: { input?: string; env?: Record<string, string> } = {}) {
  const result = spawnSync(process.execPath, [cli, 'inject', ...args], {
    input: options.input,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', ...options.env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('session-storage inject (built binary)', { timeout: 30_000 }, () => {
  it('prints the mutated pod as YAML, the same as the golden file, exit 0', () => {
    const out = inject(['-f', fixture('pods/session-runner.yaml'), '--secret', fixture('secrets/complete.yaml')], {
      env: { AGENT_IMAGE: 'ghcr.io/ambient-code/ambient-session-storage:test' },
    });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const pod = parse(out.stdout);
    const golden = parse(readFileSync(fixture('golden/session-runner.native.yaml'), 'utf8')).pod;
    const status = JSON.parse(pod.metadata.annotations['ambient-code.io/session-storage-status']);
    expect(status.version).toMatch(/^\d+\.\d+\.\d+/);
    golden.metadata.annotations['ambient-code.io/session-storage-status'] = pod.metadata.annotations['ambient-code.io/session-storage-status'];
    expect(pod).toEqual(golden);
  });

  it('reads JSON from stdin and writes JSON with -o json', () => {
    const pod = parse(readFileSync(fixture('pods/session-runner.yaml'), 'utf8'));
    const out = inject(['-f', '-', '--secret', fixture('secrets/complete-stringdata.yaml'), '-o', 'json'], { input: JSON.stringify(pod) });
    expect(out.code).toBe(0);
    const mutated = JSON.parse(out.stdout);
    expect(mutated.spec.initContainers.map((c: { name: string }) => c.name)).toEqual(['init-hydrate', 'state-sync']);
  });

  it('prints warnings on stderr and still succeeds when the secret is absent', () => {
    const out = inject(['-f', fixture('pods/session-runner.yaml')]);
    expect(out.code).toBe(0);
    expect(out.stderr).toBe('warning: S3 not configured: session state is ephemeral\n');
    expect(parse(out.stdout).spec.volumes).toEqual([{ name: 'workspace', emptyDir: { sizeLimit: '10Gi' } }]);
  });

  it('prints the denial on stderr and exits 1', () => {
    const out = inject(['-f', fixture('pods/session-runner.yaml'), '--secret', fixture('secrets/incomplete.yaml')]);
    expect(out).toEqual({ code: 1, stdout: '', stderr: 'denied: incomplete S3 configuration: missing S3_BUCKET, S3_SECRET_KEY\n' });
  });

  it('follows ON_INCOMPLETE=ephemeral', () => {
    const out = inject(['-f', fixture('pods/session-runner.yaml'), '--secret', fixture('secrets/incomplete.yaml')], {
      env: { ON_INCOMPLETE: 'ephemeral' },
    });
    expect(out.code).toBe(0);
    expect(out.stderr).toBe('warning: incomplete S3 configuration: missing S3_BUCKET, S3_SECRET_KEY: session state is ephemeral\n');
  });

  it('mutates the pod template of a Deployment', () => {
    const pod = parse(readFileSync(fixture('pods/session-runner.yaml'), 'utf8'));
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'runner', namespace: 'project-a' },
      spec: { selector: { matchLabels: pod.metadata.labels }, template: { metadata: { labels: pod.metadata.labels }, spec: pod.spec } },
    };
    const out = inject(['-f', '-', '--secret', fixture('secrets/complete.yaml'), '-o', 'json'], { input: JSON.stringify(deployment) });
    expect(out.code).toBe(0);
    const template = JSON.parse(out.stdout).spec.template;
    expect(template.spec.initContainers.map((c: { name: string }) => c.name)).toEqual(['init-hydrate', 'state-sync']);
  });

  it.each([
    ['a missing file', ['-f', '/nonexistent/pod.yaml'], undefined, 'error: cannot read /nonexistent/pod.yaml: ENOENT\n'],
    ['broken YAML on stdin', ['-f', '-'], 'kind: Pod\n  spec: [', /^error: stdin: not valid YAML or JSON: .*\n$/],
    ['a document that is not an object', ['-f', '-'], '- a\n- b\n', 'error: stdin: expected Kubernetes manifests, got a list\n'],
    ['an empty input', ['-f', '-'], '---\n', 'error: stdin: no manifest in the input\n'],
    ['--secret with --secret-from-cluster', ['-f', fixture('pods/session-runner.yaml'), '--secret', fixture('secrets/complete.yaml'), '--secret-from-cluster'], undefined, 'error: --secret and --secret-from-cluster are exclusive: the secret comes from a file or from the cluster\n'],
    ['an unusable kubeconfig', ['-f', fixture('pods/session-runner.yaml'), '--secret-from-cluster', '--kubeconfig', '/nonexistent/kubeconfig'], undefined, /^error: cannot load the kubeconfig: ENOENT.*\n$/],
    ['no -f', [], undefined, "error: required option '-f, --filename <file>' not specified\n"],
    ['an unknown option', ['-f', fixture('pods/session-runner.yaml'), '--bogus'], undefined, "error: unknown option '--bogus'\n"],
    ['a secret with another name', ['-f', fixture('pods/session-runner.yaml'), '--secret', fixture('pods/plain-pod.yaml')], undefined, /^error: .*plain-pod.yaml: expected a Secret manifest \(kind: Secret\)\n$/],
    ['a secret of another namespace', ['-f', fixture('pods/session-generate-name.yaml'), '--secret', fixture('secrets/complete.yaml')], undefined, 'error: the secret is in namespace "project-a" but the pod is in "project-b": a pod only sees its own namespace\'s secret\n'],
    ['an unknown output format', ['-f', fixture('pods/session-runner.yaml'), '-o', 'toml'], undefined, 'error: unknown output format "toml": use yaml or json\n'],
  ])('exits 2 with one line, no stack trace, on %s', (_name, args, input, message) => {
    const out = inject(args, { input });
    expect(out.code).toBe(2);
    expect(out.stdout).toBe('');
    if (typeof message === 'string') expect(out.stderr).toBe(message);
    else expect(out.stderr).toMatch(message);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('exits 2 on invalid webhook settings', () => {
    const out = inject(['-f', fixture('pods/session-runner.yaml')], { env: { SIDECAR_MODE: 'sidecar' } });
    expect(out.code).toBe(2);
    expect(out.stderr).toBe('error: invalid webhook configuration: SIDECAR_MODE: Invalid option: expected one of "native"|"legacy"\n');
  });

  it.each([['--namespace'], ['-n']])('%s overrides the pod namespace for the secret lookup', (flag) => {
    const out = inject(['-f', fixture('pods/session-generate-name.yaml'), '--secret', fixture('secrets/complete.yaml'), flag, 'project-a']);
    expect(out.code).toBe(0);
    expect(out.stderr).toBe('warning: runner has no non-root runAsUser: agent runs as uid 1001, may miss its private files\n');
  });

  it.each([
    ['spec.containers a string', (pod: any) => (pod.spec.containers = 'x'), 'spec.containers: Invalid input: expected array, received string'],
    ['spec.volumes [null]', (pod: any) => (pod.spec.volumes = [null]), 'spec.volumes.0: Invalid input: expected object, received null'],
    ['a numeric subPath', (pod: any) => (pod.spec.containers[0].volumeMounts[1].subPath = 7), 'spec.containers.0.volumeMounts.1.subPath: Invalid input: expected string, received number'],
    ['a numeric annotation', (pod: any) => (pod.metadata.annotations = { a: 1 }), 'metadata.annotations.a: Invalid input: expected string, received number'],
    ['metadata an array', (pod: any) => (pod.metadata = []), 'metadata: Invalid input: expected object, received array'],
  ])('exits 2 with one line naming the field, no stack trace, on a pod with %s', (_name, change, problem) => {
    const pod = parse(readFileSync(fixture('pods/session-runner.yaml'), 'utf8'));
    change(pod);
    const out = inject(['-f', '-', '--secret', fixture('secrets/complete.yaml')], { input: JSON.stringify(pod) });
    expect(out).toEqual({ code: 2, stdout: '', stderr: `error: stdin: not a pod the webhook can read: ${problem}\n` });
  });

  it('exits 2 on a Deployment whose template is null', () => {
    const out = inject(['-f', '-'], { input: 'apiVersion: apps/v1\nkind: Deployment\nspec: {template: null}\n' });
    expect(out.code).toBe(2);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('prints no credential from an endpoint that carries one', () => {
    const directory = mkdtempSync(join(tmpdir(), 'inject-secret-'));
    try {
      const secret = join(directory, 'secret.yaml');
      for (const [endpoint, env] of [
        ['s3://AKIAINJECTKEY:inj3ct-s3cr3t@s3.example.com', {}],
        ['AKIAINJECTKEY:inj3ct-s3cr3t@s3.example.com:9000', { ON_INCOMPLETE: 'ephemeral' }],
      ] as const) {
        writeFileSync(
          secret,
          `apiVersion: v1\nkind: Secret\nmetadata: {name: ambient-non-vertex-integrations}\nstringData:\n  S3_ENDPOINT: "${endpoint}"\n  S3_BUCKET: sessions\n  S3_ACCESS_KEY: a\n  S3_SECRET_KEY: b\n`,
        );
        const out = inject(['-f', fixture('pods/session-runner.yaml'), '--secret', secret], { env });
        expect(out.stderr).toMatch(/S3_ENDPOINT must be an http or https URL \(got "(s3:\/\/)?\*\*\*@s3\.example\.com(:9000)?"\)/);
        expect(out.stdout + out.stderr).not.toContain('inj3ct-s3cr3t');
        expect(out.stdout + out.stderr).not.toContain('AKIAINJECTKEY');
      }
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

// Like `istioctl kube-inject -f app.yaml | kubectl apply -f -`: a whole stream goes in,
// every pod and pod template comes out injected, everything else unchanged and in order.
describe('session-storage inject on a manifest stream', { timeout: 30_000 }, () => {
  const runner = () => parse(readFileSync(fixture('pods/session-runner.yaml'), 'utf8'));
  const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'project-a' }, data: { a: '1' } };
  const deployment = () => {
    const pod = runner();
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'runner', namespace: 'project-a' },
      spec: { selector: { matchLabels: pod.metadata.labels }, template: { metadata: { labels: pod.metadata.labels }, spec: pod.spec } },
    };
  };
  const stream = (...documents: object[]) => documents.map((d) => stringify(d)).join('---\n');
  const containerNames = (spec: { initContainers?: { name: string }[] }) => (spec.initContainers ?? []).map((c) => c.name);

  it('injects each pod and pod template and passes the other objects through, as a YAML stream', () => {
    const out = inject(['-f', '-', '--secret', fixture('secrets/complete.yaml')], { input: `---\n${stream(configMap, runner(), deployment())}` });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const documents = parseAllDocuments(out.stdout).map((d) => d.toJS());
    expect(documents.map((d) => d.kind)).toEqual(['ConfigMap', 'Pod', 'Deployment']);
    expect(documents[0]).toEqual(configMap);
    expect(containerNames(documents[1].spec)).toEqual(['init-hydrate', 'state-sync']);
    expect(containerNames(documents[2].spec.template.spec)).toEqual(['init-hydrate', 'state-sync']);
  });

  it('writes several manifests as a v1 List with -o json', () => {
    const out = inject(['-f', '-', '--secret', fixture('secrets/complete.yaml'), '-o', 'json'], { input: stream(configMap, runner()) });
    expect(out.code).toBe(0);
    const list = JSON.parse(out.stdout);
    expect(list.kind).toBe('List');
    expect(list.items.map((i: { kind: string }) => i.kind)).toEqual(['ConfigMap', 'Pod']);
  });

  it('injects the pods inside a List (kubectl get -o yaml output)', () => {
    const input = stringify({ apiVersion: 'v1', kind: 'List', items: [configMap, runner()] });
    const out = inject(['-f', '-', '--secret', fixture('secrets/complete.yaml')], { input });
    expect(out.code).toBe(0);
    const list = parse(out.stdout);
    expect(list.items[0]).toEqual(configMap);
    expect(containerNames(list.items[1].spec)).toEqual(['init-hydrate', 'state-sync']);
  });

  it('prints nothing and exits 1 when one pod of the stream is denied, naming it', () => {
    const bad = parse(readFileSync(fixture('pods/bad-session-name.yaml'), 'utf8'));
    const out = inject(['-f', '-', '--secret', fixture('secrets/complete.yaml'), '-n', 'project-a'], { input: stream(runner(), bad) });
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(new RegExp(`^denied: Pod/${bad.metadata.name}: invalid session name "My_Session.v2"`, 'm'));
  });

  it('passes a stream without pods through unchanged, with a warning', () => {
    const out = inject(['-f', '-'], { input: stream(configMap) });
    expect(out.code).toBe(0);
    expect(out.stderr).toBe('warning: no Pod or pod template in the input: nothing injected\n');
    expect(parse(out.stdout)).toEqual(configMap);
  });
});
