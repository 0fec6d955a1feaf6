// RFC 1123 labels, as Kubernetes checks namespace and volume names: what a session's S3
// prefix is made of, and every name the webhook, the agent and the tools check the same way.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters. */
export function isDnsLabel(value: string): boolean {
  return DNS_LABEL.test(value);
}
