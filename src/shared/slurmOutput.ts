/**
 * A Slurm job's output file from its `--output` pattern, as sbatch fills it in: `%A` the array's job id (a single
 * job's own id), `%a` the element's index, `%j` the element's own job id, `%%` a "%". Shared by `submit`, which
 * prints the file, and the Runs view, which opens it.
 */
export function slurmOutputFile(
  pattern: string,
  ids: {
    readonly jobId: string;
    /** Undefined: `%a` is left in the name (an array's files, one per element, or a single job without one). */
    readonly arrayIndex?: number;
    /** An array element's own job id (`%j`); default `jobId`. */
    readonly elementJobId?: string;
  },
): string {
  return pattern.replace(/%([%Aaj])/g, (whole, letter: string) => {
    if (letter === '%') return '%';
    if (letter === 'A') return ids.jobId;
    if (letter === 'a') return ids.arrayIndex === undefined ? whole : String(ids.arrayIndex);
    return ids.elementJobId ?? ids.jobId;
  });
}
