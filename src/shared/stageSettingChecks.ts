/**
 * The run config's checks of each stage's own settings, by its type: values that must agree with each
 * other (warmup within max_steps, minibatches dividing the batch), options that contradict each other or
 * apply only with another one on, and the files a stage names.
 */
import { divisorAtMost, type ConfigCheck, type Path } from './configProblems';
import type { DpoStageConfig, PpoStageConfig, PreferencesStageConfig, SftStageConfig, StageConfig } from './runConfig';

function checkSftStage(check: ConfigCheck, stage: SftStageConfig, index: number): void {
  const at: Path = ['stages', index];
  check.checkDataset([...at, 'dataset'], stage.dataset);
  if (stage.warmup_steps >= stage.max_steps) {
    const warmup = Math.floor(stage.max_steps / 10);
    check.error([...at, 'warmup_steps'], `(${stage.warmup_steps}) must be less than max_steps (${stage.max_steps})`, {
      title: `Set warmup_steps to ${warmup}`,
      path: [...at, 'warmup_steps'],
      value: warmup,
    });
  }
  if (stage.init_from !== 'scratch' && (check.written(['model']) || check.written(['tokenizer'])) && index === 0) {
    check.warning(
      [...at, 'init_from'],
      'starts from a checkpoint, whose model shape and tokenizer are used: the config\'s "model" and ' +
        '"tokenizer" are ignored',
    );
  }
}

function checkPreferencesStage(check: ConfigCheck, stage: PreferencesStageConfig, at: Path): void {
  check.checkDataset([...at, 'prompts'], stage.prompts);
  check.checkResponseLength(at, stage.max_new_tokens);
  if (stage.annotator === 'file' && stage.file === undefined)
    check.error([...at, 'annotator'], '"file" needs a "file": the preference file whose judgments to use');
  if (stage.annotator === 'file' && stage.file !== undefined)
    check.fileExists([...at, 'file'], stage.file, 'the preference file');
  if (stage.annotator === 'simulated' && stage.file !== undefined) {
    check.warning([...at, 'file'], 'is ignored: the annotator is "simulated"; set "annotator": "file" to use it', {
      title: 'Set annotator to "file"',
      path: [...at, 'annotator'],
      value: 'file',
    });
  }
}

/** PPO's batch arithmetic: minibatches divide the batch, at least one step, and a step left after critic warmup. */
function checkPpoSteps(check: ConfigCheck, stage: PpoStageConfig, at: Path): void {
  if (stage.batch_size % stage.num_mini_batches !== 0) {
    const fitting = divisorAtMost(stage.batch_size, stage.num_mini_batches);
    check.error(
      [...at, 'num_mini_batches'],
      `(${stage.num_mini_batches}) must divide batch_size (${stage.batch_size}) so every minibatch has ` +
        `the same size; try ${fitting}`,
      { title: `Set num_mini_batches to ${fitting}`, path: [...at, 'num_mini_batches'], value: fitting },
    );
  }
  if (stage.total_episodes < stage.batch_size) {
    check.error(
      [...at, 'total_episodes'],
      `(${stage.total_episodes}) is less than batch_size (${stage.batch_size}): not even one PPO step`,
      {
        title: `Set total_episodes to ${stage.batch_size}`,
        path: [...at, 'total_episodes'],
        value: stage.batch_size,
      },
    );
  }
  const steps = Math.floor(stage.total_episodes / stage.batch_size);
  if (stage.critic_warmup_steps >= steps && steps > 0)
    check.error(
      [...at, 'critic_warmup_steps'],
      `(${stage.critic_warmup_steps}) covers all ${steps} steps: the policy would never be updated`,
    );
}

/** PPO's options that contradict each other, or apply only with another one on. */
function checkPpoOptions(check: ConfigCheck, stage: PpoStageConfig, at: Path): void {
  if (stage.temperature === 0)
    check.error(
      [...at, 'temperature'],
      'must be > 0 for PPO: log-probabilities are computed at the sampling temperature',
      { title: 'Set temperature to 1', path: [...at, 'temperature'], value: 1 },
    );
  if (stage.use_score_norm && !stage.use_score_scaling) {
    check.error([...at, 'use_score_norm'], 'has no effect without use_score_scaling (normalising is part of scaling)', {
      title: 'Set use_score_scaling to true',
      path: [...at, 'use_score_scaling'],
      value: true,
    });
  }
  if (stage.adap_kl_ctrl && stage.init_kl_coef === 0)
    check.error(
      [...at, 'init_kl_coef'],
      'is 0 with adap_kl_ctrl: the adaptive controller multiplies β, so it would stay 0',
      { title: 'Set init_kl_coef to 0.05', path: [...at, 'init_kl_coef'], value: 0.05 },
    );
  for (const key of ['target', 'horizon'] as const) {
    if (!stage.adap_kl_ctrl && check.written([...at, key]))
      check.warning([...at, key], 'only applies with adap_kl_ctrl, which is off', {
        title: 'Set adap_kl_ctrl to true',
        path: [...at, 'adap_kl_ctrl'],
        value: true,
      });
  }
  if (!stage.early_stopping && check.written([...at, 'target_kl']))
    check.warning([...at, 'target_kl'], 'only applies with early_stopping, which is off', {
      title: 'Set early_stopping to true',
      path: [...at, 'early_stopping'],
      value: true,
    });
  if (stage.missing_eos_penalty !== undefined && stage.stop_token === 'none') {
    check.error(
      [...at, 'missing_eos_penalty'],
      'contradicts "stop_token": "none": no response ends at EOS, so every score would be penalised',
      { title: 'Set stop_token to "eos"', path: [...at, 'stop_token'], value: 'eos' },
    );
  }
}

function checkPpoStage(check: ConfigCheck, stage: PpoStageConfig, at: Path): void {
  check.checkDataset([...at, 'prompts'], stage.prompts);
  check.checkResponseLength(at, stage.max_new_tokens);
  checkPpoSteps(check, stage, at);
  checkPpoOptions(check, stage, at);
  if (stage.ptx_dataset !== undefined) {
    check.checkDataset([...at, 'ptx_dataset'], stage.ptx_dataset);
    if (stage.ptx_coef === 0) check.warning([...at, 'ptx_dataset'], 'is unused: ptx_coef is 0');
  }
}

function checkDpoStage(check: ConfigCheck, stage: DpoStageConfig, at: Path): void {
  if (stage.label_smoothing > 0 && stage.loss_type !== 'sigmoid') {
    check.error(
      [...at, 'label_smoothing'],
      `applies only to "loss_type": "sigmoid" (conservative DPO), not "${stage.loss_type}"`,
      { title: 'Set label_smoothing to 0', path: [...at, 'label_smoothing'], value: 0 },
    );
  }
  if (stage.max_steps !== undefined && check.written([...at, 'num_train_epochs']))
    check.warning([...at, 'num_train_epochs'], 'is ignored: max_steps is set and overrides it');
  if (stage.max_steps !== undefined && stage.warmup_steps >= stage.max_steps) {
    const warmup = Math.floor(stage.max_steps / 10);
    check.error([...at, 'warmup_steps'], `(${stage.warmup_steps}) must be less than max_steps (${stage.max_steps})`, {
      title: `Set warmup_steps to ${warmup}`,
      path: [...at, 'warmup_steps'],
      value: warmup,
    });
  }
  check.checkResponseLength(at, stage.max_new_tokens);
}

/** The checks of one stage's own settings, by its type (a reward stage has none beyond its schema). */
export function checkStageSettings(check: ConfigCheck, stage: StageConfig, index: number): void {
  const at: Path = ['stages', index];
  switch (stage.type) {
    case 'sft':
      checkSftStage(check, stage, index);
      break;
    case 'preferences':
      checkPreferencesStage(check, stage, at);
      break;
    case 'reward':
      break;
    case 'ppo':
      checkPpoStage(check, stage, at);
      break;
    case 'dpo':
      checkDpoStage(check, stage, at);
      break;
  }
}
