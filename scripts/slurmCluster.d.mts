// Types for the parts of scripts/slurmCluster.mjs that the unit tests import.
export declare const JOB_COMPLETION_LOG: string;
export declare const STATE_SAVE_DIR: string;
export declare function setAsideStaleCompletionLog(options?: {
  stateDir?: string;
  logFile?: string;
  now?: Date;
}): string | undefined;
