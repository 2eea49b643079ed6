import { describe, expect, it } from 'vitest';
import { QuantityError, memoryBytes, nanoCpus, parseQuantity } from '../../../controller/api/quantity.js';

describe('Kubernetes quantities', () => {
  it.each([
    ['512Mi', 536_870_912],
    ['1Gi', 1_073_741_824],
    ['1.5Gi', 1_610_612_736],
    ['1G', 1_000_000_000],
    ['1.1G', 1_100_000_000],
    ['128974848', 128_974_848],
    ['129e6', 129_000_000],
    ['123Ki', 125_952],
    ['0.1', 1], // rounds up, like Quantity.Value()
    ['100m', 1],
  ])('memoryBytes(%s) = %d', (text, bytes) => {
    expect(memoryBytes(text)).toBe(bytes);
  });

  it.each([
    ['500m', 500_000_000],
    ['2', 2_000_000_000],
    ['0.25', 250_000_000],
    ['1500u', 1_500_000],
    ['1n', 1],
    ['.5', 500_000_000],
  ])('nanoCpus(%s) = %d', (text, nanos) => {
    expect(nanoCpus(text)).toBe(nanos);
  });

  it('parses exactly, as a rational', () => {
    expect(parseQuantity('1.1G')).toEqual({ numerator: 11_000_000_000n, denominator: 10n });
    expect(parseQuantity('-3m')).toEqual({ numerator: -3n, denominator: 1000n });
  });

  it.each(['', 'lots', '1.2.3', '5 Mi', 'Mi', '1KiB', '1e1000'])('refuses %j with a typed error', (text) => {
    expect(() => parseQuantity(text)).toThrow(QuantityError);
    try {
      parseQuantity(text);
    } catch (error) {
      expect((error as QuantityError).code).toBe('InvalidQuantity');
      expect((error as QuantityError).message).toContain(`"${text}"`);
    }
  });

  it('refuses a number too large to hold exactly', () => {
    expect(() => memoryBytes('9Ei')).toThrow(/too large/);
  });
});
