/**
 * Learning-rate schedules with Hugging Face's names and shapes (transformers' `get_scheduler`):
 * linear warmup from 0 to the peak over `warmupSteps`, then `cosine` decay to 0 (half a cosine, as
 * `get_cosine_schedule_with_warmup`), `linear` decay to 0, or `constant`.
 */
export type SchedulerType = 'cosine' | 'linear' | 'constant';

export function learningRateAt(
  step: number,
  peak: number,
  totalSteps: number,
  warmupSteps: number,
  type: SchedulerType,
): number {
  if (warmupSteps > 0 && step < warmupSteps) return (peak * step) / warmupSteps;
  if (type === 'constant') return peak;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  return type === 'linear' ? peak * (1 - progress) : peak * 0.5 * (1 + Math.cos(Math.PI * progress));
}
