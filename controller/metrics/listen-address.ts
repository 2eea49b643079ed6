// Parses the metrics listen address the way Kubernetes components write it: "host:port", ":port"
// (all interfaces), "[ipv6]:port". Pure, so every bad form has a unit test and a clear message.

import { isIP } from 'node:net';
import { MetricsError } from './errors.js';

export interface ListenAddress {
  /** undefined = all interfaces (Node's default for listen()). */
  host: string | undefined;
  /** 0 = any free port. */
  port: number;
}

const DEFAULT_METRICS_ADDRESS = ':9464';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `field` names the flag or setting in error messages, e.g. "--metrics-address". */
export function parseListenAddress(value: string, field = '--metrics-address'): ListenAddress {
  const fail = (reason: string): never => {
    throw new MetricsError(
      'InvalidAddress',
      `${field}: ${JSON.stringify(value)} ${reason} (expected host:port, :port or [ipv6]:port, e.g. ${DEFAULT_METRICS_ADDRESS})`,
    );
  };
  if (typeof value !== 'string' || value.trim() === '') return fail('is empty');
  if (value !== value.trim()) return fail('has surrounding spaces');

  let hostPart: string;
  let portPart: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) return fail('has "[" without a closing "]"');
    hostPart = value.slice(1, close);
    if (value[close + 1] !== ':') return fail('has no ":port" after the bracketed IPv6 address');
    portPart = value.slice(close + 2);
    if (isIP(hostPart) !== 6) return fail(`has "${hostPart}" in brackets, which is not an IPv6 address`);
  } else {
    const colon = value.lastIndexOf(':');
    if (colon < 0) return fail('has no port');
    hostPart = value.slice(0, colon);
    portPart = value.slice(colon + 1);
    if (hostPart.includes(':')) return fail('has an IPv6 address without brackets');
    if (hostPart !== '' && isIP(hostPart) === 0 && !HOSTNAME.test(hostPart)) {
      return fail(`has "${hostPart}", which is neither an IP address nor a host name`);
    }
  }

  if (!/^\d{1,5}$/.test(portPart)) return fail(`has port "${portPart}", which is not a number`);
  const port = Number(portPart);
  if (port > 65535) return fail(`has port ${port}, above 65535`);
  return { host: hostPart === '' ? undefined : hostPart, port };
}

export function formatListenAddress(address: ListenAddress): string {
  const host = address.host ?? '';
  return `${isIP(host) === 6 ? `[${host}]` : host}:${address.port}`;
}
