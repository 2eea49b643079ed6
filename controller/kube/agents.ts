// client-node 1.4 makes a NEW https.Agent for every request (KubeConfig.createAgent, called from
// applySecurityAuthentication and applyToFetchOptions), so every apiserver call parses the CA, the
// client certificate and key into a fresh TLS context and pays a full handshake on a new connection.
// With 1000 resources that was most of the agent's CPU and, through OpenSSL's allocations, much of
// its native memory. reuseAgents makes the KubeConfig hand out one keep-alive agent per distinct set
// of TLS options instead (the options come from the kubeconfig, so in practice one or two agents).
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

type CreateAgent = (cluster: { server?: string; proxyUrl?: string } | null, options: AgentOptions) => unknown;

/** What makes two agents differ: where they connect and how they authenticate the TLS session. */
function agentKey(cluster: { server?: string; proxyUrl?: string } | null, o: AgentOptions): string {
  const text = (v: unknown): string => (v === undefined ? '' : Buffer.isBuffer(v) ? v.toString('base64') : String(v));
  return [cluster?.server, cluster?.proxyUrl, o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername, o.timeout].map(text).join('\0');
}

/**
 * Makes `kc` reuse its agents (keep-alive) instead of making one per request. A proxied cluster
 * keeps client-node's own agents (their classes carry the proxy). Returns `kc`.
 */
export function reuseAgents(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createAgent: CreateAgent };
  if (typeof target.createAgent !== 'function') throw new Error('@kubernetes/client-node: KubeConfig.createAgent is gone; update controller/kube/agents.ts');
  const original = target.createAgent.bind(kc);
  const agents = new Map<string, unknown>();
  target.createAgent = (cluster, options) => {
    if (cluster?.proxyUrl || !cluster?.server?.startsWith('https:')) return original(cluster, options);
    const key = agentKey(cluster, options);
    let agent = agents.get(key);
    if (!agent) {
      agent = new HttpsAgent({ ...options, keepAlive: true });
      agents.set(key, agent);
    }
    return agent;
  };
  return kc;
}
