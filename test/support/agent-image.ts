// The image the webhook injects, as its Deployment gives it: AGENT_IMAGE's value, or the
// pod-template annotation its fieldRef names (what the kubelet would resolve).
export interface DeploymentLike {
  spec?: {
    template?: {
      metadata?: { annotations?: Record<string, string> };
      spec?: { containers?: Array<{ image?: string; env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }> }> };
    };
  };
}

export function agentImageOf(deployment: DeploymentLike | undefined): string | undefined {
  const template = deployment?.spec?.template;
  const env = template?.spec?.containers?.[0]?.env?.find((entry) => entry.name === 'AGENT_IMAGE');
  if (env?.value !== undefined) return env.value;
  const annotation = /^metadata\.annotations\['(.+)'\]$/.exec(env?.valueFrom?.fieldRef?.fieldPath ?? '')?.[1];
  return annotation === undefined ? undefined : template?.metadata?.annotations?.[annotation];
}
