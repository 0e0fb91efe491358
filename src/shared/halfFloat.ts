/**
 * IEEE 754 half precision (F16: 1 sign, 5 exponent, 10 mantissa bits) and bfloat16 (BF16: the top 16 bits of an
 * F32) as 32-bit floats. Both widen exactly: every F16 and BF16 value, subnormals, ±Infinity and NaN included, is an
 * F32 value. Node 20 has no Float16Array, so tensors carry the raw bit patterns in a Uint16Array.
 */

const f16ExponentMask = 0x1f;
const f16MantissaBits = 10;
const f16MantissaMask = 0x3ff;
const f16ExponentBias = 15;
const f32ExponentBias = 127;
const f32MantissaBits = 23;
const f32InfinityExponent = 0xff;
/** The top mantissa bit: set in a quiet NaN. */
const f32QuietBit = 1 << (f32MantissaBits - 1);
/** Subnormal F16 values are mantissa × 2^-24. */
const f16SubnormalScale = 2 ** -24;

/** The F32 bit pattern of one F16 bit pattern. */
function float16ToFloat32Bits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >>> f16MantissaBits) & f16ExponentMask;
  const mantissa = half & f16MantissaMask;
  if (exponent === f16ExponentMask) {
    // Infinity (mantissa 0) or NaN: the payload kept in the top mantissa bits, and a signalling NaN quietened, as
    // IEEE 754 conversion (and the processor's F16 → F32 instruction) does.
    const payload = mantissa << (f32MantissaBits - f16MantissaBits);
    const quiet = mantissa === 0 ? 0 : f32QuietBit;
    return (sign | (f32InfinityExponent << f32MantissaBits) | payload | quiet) >>> 0;
  }
  if (exponent === 0) {
    if (mantissa === 0) return sign >>> 0;
    // Subnormal: a normal F32, computed exactly (mantissa × 2^-24 fits an F32's precision).
    const magnitude = new Float32Array([mantissa * f16SubnormalScale]);
    return (sign | new Uint32Array(magnitude.buffer)[0]) >>> 0;
  }
  const rebased = exponent - f16ExponentBias + f32ExponentBias;
  return (sign | (rebased << f32MantissaBits) | (mantissa << (f32MantissaBits - f16MantissaBits))) >>> 0;
}

/** F16 bit patterns → Float32Array, value for value. */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16ToFloat32Bits(bits[i]);
  return new Float32Array(out.buffer);
}

/** BF16 bit patterns → Float32Array, value for value (a BF16 is the upper half of an F32). */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
  return new Float32Array(out.buffer);
}
