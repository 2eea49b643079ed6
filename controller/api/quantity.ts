// Kubernetes quantities ("512Mi", "500m", "1.5G", "2e3") turned into the integers Docker wants:
// bytes for HostConfig.Memory and billionths of a CPU for HostConfig.NanoCpus. Exact arithmetic
// (bigint rationals), rounding up as Kubernetes' Quantity.Value() does.

export class QuantityError extends Error {
  readonly code = 'InvalidQuantity';
  constructor(
    readonly text: string,
    reason: string,
  ) {
    super(`"${text}" is not a usable Kubernetes quantity: ${reason}`);
  }
}

/** An exact non-negative or negative rational number: numerator / denominator, denominator > 0. */
export interface Rational {
  numerator: bigint;
  denominator: bigint;
}

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;

const BINARY_EXPONENT: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL_EXPONENT: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

/** Parses a quantity exactly; throws QuantityError on anything Kubernetes would not accept. */
export function parseQuantity(text: string): Rational {
  const match = QUANTITY.exec(text);
  if (match === null) throw new QuantityError(text, 'expected a number with an optional suffix such as Mi, G or m');
  const [, sign = '', number = '', suffix = ''] = match;
  const [whole = '', fraction = ''] = number.split('.');
  let numerator = BigInt(`${whole}${fraction}` || '0');
  let denominator = 10n ** BigInt(fraction.length);
  let exponent10 = 0;
  if (suffix in BINARY_EXPONENT) {
    numerator *= 2n ** BigInt(BINARY_EXPONENT[suffix] ?? 0);
  } else if (suffix in DECIMAL_EXPONENT) {
    exponent10 = DECIMAL_EXPONENT[suffix] ?? 0;
  } else if (suffix !== '') {
    exponent10 = Number(suffix.slice(1));
    // Kubernetes itself refuses exponents this far out; bigint powers of them would be huge.
    if (!Number.isSafeInteger(exponent10) || Math.abs(exponent10) > 100) {
      throw new QuantityError(text, 'the exponent is out of range');
    }
  }
  if (exponent10 > 0) numerator *= 10n ** BigInt(exponent10);
  if (exponent10 < 0) denominator *= 10n ** BigInt(-exponent10);
  return { numerator: sign === '-' ? -numerator : numerator, denominator };
}

/** ceil(quantity * scale), exactly. */
function ceilScaled(text: string, scale: bigint): bigint {
  const { numerator, denominator } = parseQuantity(text);
  const scaled = numerator * scale;
  const quotient = scaled / denominator; // truncates toward zero
  return scaled % denominator > 0n ? quotient + 1n : quotient;
}

/** Bytes, rounded up, e.g. "512Mi" -> 536870912. */
export function memoryBytes(text: string): number {
  return toSafeNumber(text, ceilScaled(text, 1n));
}

/** Billionths of a CPU, rounded up, e.g. "500m" -> 500000000 (Docker's NanoCpus). */
export function nanoCpus(text: string): number {
  return toSafeNumber(text, ceilScaled(text, 1_000_000_000n));
}

function toSafeNumber(text: string, value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new QuantityError(text, 'it is too large');
  }
  return Number(value);
}
