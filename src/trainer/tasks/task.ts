/**
 * The task a run trains for, as the algorithms see it. The pipeline creates it from the config and
 * hands it to every stage in StageContext, so no algorithm imports a particular task: the demo's
 * sentiment oracle (tasks/sentimentTask.ts) is one implementation.
 */
export interface Task {
  readonly name: string;
  /** The task's ground-truth score of a text (prompt + completion); higher is better. */
  score(text: string): number;
}
