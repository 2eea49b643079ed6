import type { Registry } from 'prom-client';

export interface Sample {
  labels: Record<string, string | number>;
  value: number;
}

/** The samples of one metric (histograms: every _bucket/_sum/_count sample), read through prom-client's public API. */
export async function samples(registry: Registry, name: string): Promise<Sample[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`${name} is not registered`);
  const data = await metric.get();
  return data.values.map((v) => ({
    labels: { ...(v.labels as Record<string, string | number>), ...('metricName' in v && v.metricName ? { __name__: String(v.metricName) } : {}) },
    value: v.value,
  }));
}

/** The value of the one sample of `name` whose labels include `labels`; undefined if none, throws if several. */
export async function valueOf(registry: Registry, name: string, labels: Record<string, string | number> = {}): Promise<number | undefined> {
  const matching = (await samples(registry, name)).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matching.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${matching.length} samples`);
  return matching[0]?.value;
}
