import { describe, expect, it } from 'vitest';
import { MetricsError } from '../../../controller/metrics/errors.js';
import { formatListenAddress, parseListenAddress } from '../../../controller/metrics/listen-address.js';

describe('parseListenAddress', () => {
  it.each([
    [':9464', { host: undefined, port: 9464 }],
    ['0.0.0.0:9464', { host: '0.0.0.0', port: 9464 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['localhost:8080', { host: 'localhost', port: 8080 }],
    ['metrics.crs-system.svc:9464', { host: 'metrics.crs-system.svc', port: 9464 }],
    ['[::1]:9464', { host: '::1', port: 9464 }],
    ['[::]:65535', { host: '::', port: 65535 }],
  ])('%s', (input, expected) => {
    expect(parseListenAddress(input)).toEqual(expected);
  });

  it.each([
    ['', /is empty/],
    ['   ', /is empty/],
    [' :9464', /surrounding spaces/],
    ['9464', /has no port/],
    ['localhost', /has no port/],
    [':', /port "", which is not a number/],
    [':http', /port "http", which is not a number/],
    [':-1', /port "-1", which is not a number/],
    [':65536', /port 65536, above 65535/],
    ['::1:9464', /IPv6 address without brackets/],
    ['[::1:9464', /without a closing "]"/],
    ['[::1]9464', /no ":port" after the bracketed/],
    ['[127.0.0.1]:9464', /not an IPv6 address/],
    ['bad_host!:9464', /"bad_host!", which is neither an IP address nor a host name/],
  ])('rejects %j with a message naming the flag and the reason', (input, reason) => {
    let caught: unknown;
    try {
      parseListenAddress(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(MetricsError);
    expect((caught as MetricsError).code).toBe('InvalidAddress');
    expect((caught as MetricsError).message).toMatch(/^--metrics-address: /);
    expect((caught as MetricsError).message).toMatch(reason);
    expect((caught as MetricsError).message).toMatch(/expected host:port, :port or \[ipv6\]:port/);
  });

  it('names the field it was given', () => {
    expect(() => parseListenAddress('nope', 'METRICS_ADDRESS')).toThrow(/^METRICS_ADDRESS: "nope" has no port/);
  });

  it('formats back to the same forms', () => {
    for (const text of [':9464', '127.0.0.1:80', '[::1]:9464', 'localhost:1']) {
      expect(formatListenAddress(parseListenAddress(text))).toBe(text);
    }
  });
});
