/**
 * Rotary position embedding frequencies, computed here from the typed description (not inside a graph): baked
 * into the ONNX model as an initializer, held as a tensor by the tfjs model. θ_i = theta^(−2i/d) for i < d/2,
 * rescaled as transformers' modeling_rope_utils does for `linear` (positions divided by the factor) and `llama3`
 * (Llama 3.1: long wavelengths divided by the factor, short ones kept, a smooth ramp between).
 */
import type { RopeSettings } from './hfArchitecture';

/** The d/2 inverse frequencies a head of width `headDim` rotates its pairs by, per position. */
export function ropeInverseFrequencies(rope: RopeSettings, headDim: number): Float32Array {
  const half = headDim / 2;
  // transformers computes theta^(2i/d) in float32 from an int64 arange; float64 here then rounds once.
  const plain = Array.from({ length: half }, (_, i) => 1 / Math.pow(rope.theta, (2 * i) / headDim));
  const { scaling } = rope;
  switch (scaling.type) {
    case 'default':
      return Float32Array.from(plain);
    case 'linear':
      return Float32Array.from(plain, (frequency) => frequency / scaling.factor);
    case 'llama3': {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
      const longestKept = originalMaxPositions / highFreqFactor;
      const shortestDivided = originalMaxPositions / lowFreqFactor;
      return Float32Array.from(plain, (frequency) => {
        const wavelength = (2 * Math.PI) / frequency;
        if (wavelength < longestKept) return frequency;
        if (wavelength > shortestDivided) return frequency / factor;
        const smooth = (originalMaxPositions / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return (1 - smooth) * (frequency / factor) + smooth * frequency;
      });
    }
  }
}
