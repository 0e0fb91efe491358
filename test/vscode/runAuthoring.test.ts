/**
 * Authoring and managing runs as a user does it, in the packaged extension in a real VS Code
 * (code-server + Chromium): New Run from the palette, hover docs from the schema, a diagnostic and
 * its quick fix, a run started from its CodeLens and watched in the Runs view, status bar and
 * progress notification, stopped and resumed from the view's context menu; and, with Workspace Trust
 * on and the folder untrusted, Start Run and sampling for the Rank view refused with an explanation while the
 * runs stay visible.
 * Needs `npm run package` and `node scripts/ensureTestTools.mjs` first.
 */
import * as assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { repoRoot, runCommand, runCommandAndPick, screenshot, type CodeServer } from './codeServer';
import { Workbench } from './workbench';

const workbench = new Workbench('rlhf-lens-authoring-');
const temp = workbench.temp;
const workspace = join(temp, 'workspace');
const untrustedWorkspace = join(temp, 'untrusted');

/** Serves `untrustedWorkspace` with Workspace Trust on, from a profile that trusts no folder. */
let untrusted: CodeServer;

// About 14 ms a step on 2 cores: time to stop it midway (the UI takes seconds to show it), and
// under a minute to the end.
const tinyConfig = {
  name: 'ui-tiny',
  model: { n_layer: 1, n_head: 2, n_embd: 32, block_size: 32 },
  tokenizer: { vocab_size: 300 },
  stages: [
    {
      type: 'sft',
      dataset: { source: 'demo', num_examples: 400 },
      max_steps: 3000,
      warmup_steps: 2,
      per_device_train_batch_size: 8,
      eval_steps: 1000,
      save_steps: 3000,
    },
  ],
};

before(async () => {
  await workbench.start({
    workspace,
    prepare: () => {
      for (const folder of [workspace, untrustedWorkspace])
        cpSync(join(repoRoot, 'test', 'fixtures', 'workspace'), folder, { recursive: true });
      writeFileSync(join(workspace, 'ui-tiny.rlhf.json'), `${JSON.stringify(tinyConfig, null, 2)}\n`);
      copyFileSync(
        join(repoRoot, 'test', 'fixtures', 'broken-configs', 'ppo-minibatches-not-dividing-batch.rlhf.json'),
        join(workspace, 'ui-broken.rlhf.json'),
      );
      writeFileSync(join(untrustedWorkspace, 'ui-tiny.rlhf.json'), `${JSON.stringify(tinyConfig, null, 2)}\n`);
    },
  });
  untrusted = await workbench.startServer({
    workspace: untrustedWorkspace,
    userDataDir: 'user-data-untrusted',
    workspaceTrust: true,
  });
});

after(() => workbench.stop());

async function openFile(page: Page, name: string): Promise<void> {
  await page.keyboard.press('Control+P');
  await page.locator('.quick-input-widget .quick-input-box input').fill(name);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first().waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
  await page.locator('.tab', { hasText: name }).waitFor({ timeout: 15_000 });
}

async function showRunsView(page: Page): Promise<void> {
  const container = page.locator('.activitybar .action-item [aria-label*="RLHF"]').first();
  await container.waitFor({ timeout: 30_000 });
  await container.click();
  await page.locator('.part.sidebar .composite.title', { hasText: /RLHF/i }).waitFor({ timeout: 15_000 });
}

/**
 * Runs a palette command that goes on to ask something (a quick pick or an input box), so the
 * quick input stays open: codeServer.ts's runCommand waits for it to close.
 */
async function startAskingCommand(page: Page, title: string): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('.quick-input-box input');
  for (let attempt = 0; ; attempt++) {
    await page.keyboard.press('F1');
    await input.fill(`>${title}`);
    if (
      await widget
        .locator('.monaco-list-row.focused', { hasText: title })
        .first()
        .waitFor({ timeout: 3_000 })
        .then(
          () => true,
          () => false,
        )
    )
      break;
    if (attempt === 10) throw new Error(`the command palette has no "${title}"`);
    await page.keyboard.press('Escape');
  }
  await input.press('Enter');
}

/** On failure, what the workbench showed. */
async function onFailure<T>(page: Page, name: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    await screenshot(page, `authoring-failure-${name}`).catch(() => undefined);
    throw error;
  }
}

/** Right-clicks a Runs view row and picks a context-menu entry. */
async function contextMenu(page: Page, rowText: string | RegExp, entry: string): Promise<void> {
  const item = page.locator('.context-view .monaco-menu .action-item', { hasText: entry }).first();
  // A menu lists what the row allowed when it opened: a run that wrote "stopped" but whose trainer
  // has not exited yet still counts as training here (no Resume). Reopen until the entry is there.
  const deadline = Date.now() + 30_000;
  for (;;) {
    await page.locator('.part.sidebar .monaco-list-row', { hasText: rowText }).first().click({ button: 'right' });
    if (
      await item.waitFor({ timeout: 3_000 }).then(
        () => true,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline)
      throw new Error(`the context menu of the run row "${String(rowText)}" has no "${entry}"`);
    await page.keyboard.press('Escape');
    await page.waitForTimeout(500);
  }
  await item.click();
  // A click that lands while the menu is still animating in only focuses the entry: Enter runs it.
  const menu = page.locator('.context-view .monaco-menu');
  if (
    !(await menu.waitFor({ state: 'hidden', timeout: 3_000 }).then(
      () => true,
      () => false,
    ))
  ) {
    await item.hover();
    await page.keyboard.press('Enter');
    await menu.waitFor({ state: 'hidden', timeout: 5_000 });
  }
}

test(
  'RLHF: New Run asks for a template and a name, writes ' + 'the config, and the schema documents every field on hover',
  async () => {
    const page = await workbench.openPage();
    try {
      await onFailure(page, 'new-run', async () => {
        await startAskingCommand(page, 'RLHF: New Run');
        // Other templates mention PPO in their detail line: the row whose label is PPO.
        const ppoRow = page.locator('.quick-input-widget .monaco-list-row', { hasText: /^PPO/ }).first();
        await ppoRow.waitFor({ timeout: 15_000 });
        await screenshot(page, 'authoring-new-run-templates');
        await ppoRow.click();
        const input = page.locator('.quick-input-widget .quick-input-box input');
        await input.waitFor({ timeout: 10_000 });
        await input.fill('ui-ppo');
        await input.press('Enter');
        await page.locator('.tab', { hasText: 'ui-ppo.rlhf.json' }).waitFor({ timeout: 15_000 });
        await page.locator('.codelens-decoration', { hasText: 'Start run' }).waitFor({ timeout: 30_000 });
        const written = JSON.parse(readFileSync(join(workspace, 'ui-ppo.rlhf.json'), 'utf8'));
        assert.deepEqual(
          written.stages.map((stage: { type: string }) => stage.type),
          ['sft', 'preferences', 'reward', 'ppo'],
        );
        // Hover a PPO setting: its effect, TRL's name and the default. Go to its line first: the editor
        // renders only the lines in view.
        const estimatorLine =
          readFileSync(join(workspace, 'ui-ppo.rlhf.json'), 'utf8')
            .split('\n')
            .findIndex((line) => line.includes('"kl_estimator"')) + 1;
        await page.locator('.monaco-editor .view-lines').first().click();
        await page.keyboard.press('Control+G');
        await page.locator('.quick-input-widget .quick-input-box input').fill(`:${estimatorLine}`);
        await page.keyboard.press('Enter');
        await page.locator('.view-line span', { hasText: '"kl_estimator"' }).first().hover();
        const hover = page.locator('.monaco-hover', { hasText: 'TRL' });
        await hover.waitFor({ timeout: 20_000 });
        assert.match(await hover.innerText(), /Per-token KL estimate[\s\S]*TRL: kl_estimator[\s\S]*Default: "k1"/);
        await screenshot(page, 'authoring-new-run-hover');
      });
    } finally {
      await page.close();
    }
  },
);

test('a bad value is underlined with the reason, and its quick fix repairs it', async () => {
  const page = await workbench.openPage();
  try {
    await onFailure(page, 'quick-fix', async () => {
      await openFile(page, 'ui-broken.rlhf.json');
      // F8 jumps to the next problem (below the fold here) and shows it inline, as a user reads it;
      // until the checks have run there is none to jump to.
      const marker = page.locator('.marker-widget', { hasText: 'must divide batch_size' });
      for (let attempt = 0; !(await marker.isVisible()); attempt++) {
        if (attempt === 30) throw new Error('F8 found no problem in ui-broken.rlhf.json');
        await page.locator('.monaco-editor .view-lines').first().click();
        await page.keyboard.press('F8');
        await marker.waitFor({ timeout: 1_000 }).catch(() => undefined);
      }
      await page.locator('.squiggly-error').first().waitFor({ timeout: 15_000 });
      assert.match(await marker.innerText(), /num_mini_batches \(3\) must divide batch_size \(8\)/);
      await screenshot(page, 'authoring-diagnostic');
      await page.keyboard.press('Escape');
      // Ctrl+. asks the extension for code actions at the cursor (F8 put it on the problem). On a loaded machine the
      // first answer can come after the menu gave up ("No code actions available"): ask again, as a user would.
      const fix = page.locator('.action-widget .monaco-list-row', { hasText: 'Set num_mini_batches to 2' });
      for (let attempt = 1; ; attempt++) {
        await page.keyboard.press('Control+.');
        if (
          await fix.waitFor({ timeout: 5_000 }).then(
            () => true,
            () => false,
          )
        )
          break;
        if (attempt === 6) throw new Error('Ctrl+. offered no "Set num_mini_batches to 2" in 6 tries');
        await page.keyboard.press('Escape');
      }
      await screenshot(page, 'authoring-quick-fix');
      await fix.click();
      await page.locator('.view-line', { hasText: '"num_mini_batches": 2' }).waitFor({ timeout: 10_000 });
      await page.locator('.squiggly-error').first().waitFor({ state: 'detached', timeout: 15_000 });
    });
  } finally {
    await page.close();
  }
});

test(
  'Start run from the CodeLens: the Runs view, ' +
    'status bar and notification follow it; Stop and Resume from the view',
  async () => {
    const page = await workbench.openPage();
    try {
      await onFailure(page, 'run', async () => {
        // The Runs view listing the fixture's runs shows the extension is up before the config opens.
        await showRunsView(page);
        await page.locator('.part.sidebar .monaco-list-row', { hasText: 'demo-ppo' }).waitFor({ timeout: 30_000 });
        await openFile(page, 'ui-tiny.rlhf.json');
        await page.locator('.codelens-decoration a', { hasText: 'Start run' }).click({ timeout: 30_000 });
        // The progress notification: watched while the run goes on, checked below.
        let notified = '';
        const notification = page.locator('.notification-toast', { hasText: 'RLHF ui-tiny' }).first();
        const notificationSeen = notification.waitFor({ timeout: 30_000 }).then(
          async () => (notified = await notification.innerText()),
          () => undefined,
        );
        const status = page.locator('.part.statusbar .statusbar-item', {
          hasText: /RLHF ui-tiny · sft \d+\/3000 .*· onnxruntime · cpu/,
        });
        await status.waitFor({ timeout: 60_000 });
        const row = page.locator('.part.sidebar .monaco-list-row', {
          hasText: /ui-tiny · sft.*sft · \d+\/3000 · loss\/train/,
        });
        await row.waitFor({ timeout: 30_000 });
        await screenshot(page, 'authoring-running');

        await contextMenu(page, 'ui-tiny · sft', 'Stop Run');
        const stopped = page
          .locator('.part.sidebar .monaco-list-row', { hasText: 'ui-tiny · sft' })
          .locator('.codicon-debug-pause');
        await stopped.waitFor({ timeout: 60_000 });
        await status.waitFor({ state: 'hidden', timeout: 30_000 });
        await screenshot(page, 'authoring-stopped');
        await notificationSeen;
        assert.match(notified, /RLHF ui-tiny/, 'a progress notification showed while the run trained');

        const completed = page
          .locator('.part.sidebar .monaco-list-row', { hasText: /ui-tiny · sft.*sft · 3000\/3000/ })
          .locator('.codicon-pass');
        // A click that lands while the Runs view re-renders (its run's files change under it) can close the menu
        // without running the entry: the resumed run shows in the status bar (or has already finished) within
        // seconds, else the user picks Resume again.
        for (let attempt = 1; ; attempt++) {
          await contextMenu(page, 'ui-tiny · sft', 'Resume Run');
          const resumed = await Promise.any([
            status.waitFor({ timeout: 30_000 }),
            completed.waitFor({ timeout: 30_000 }),
          ]).then(
            () => true,
            () => false,
          );
          if (resumed) break;
          if (attempt === 3) throw new Error('Resume Run from the context menu never restarted the run (3 tries)');
        }
        await completed.waitFor({ timeout: 120_000 });
        await screenshot(page, 'authoring-resumed');
        const runs = readdirSync(join(workspace, '.rlhf', 'runs')).filter((id) => id.startsWith('ui-tiny-sft-'));
        assert.equal(runs.length, 1, 'resume continues the same run directory');
        const runJson = JSON.parse(readFileSync(join(workspace, '.rlhf', 'runs', runs[0], 'run.json'), 'utf8'));
        assert.equal(runJson.status, 'completed');
        assert.equal(runJson.resumed_at.length, 1);

        // Delete asks first; confirmed, the run's folder and its row go. The row is right-clicked once its
        // trainer has exited and the view has refreshed for it: a refresh between the right-click and the
        // menu's click hands the command no row, and it asks which run instead.
        await status.waitFor({ state: 'hidden', timeout: 30_000 });
        await page.waitForTimeout(1_500); // the Runs view refreshes at most twice a second
        await contextMenu(page, 'ui-tiny · sft', 'Delete Run');
        const dialog = page.locator('.monaco-dialog-box', { hasText: `Delete run ${runs[0]}?` });
        await dialog.waitFor({ timeout: 15_000 });
        await screenshot(page, 'authoring-delete-confirmation');
        await dialog.locator('.monaco-button', { hasText: 'Delete' }).first().click();
        await page
          .locator('.part.sidebar .monaco-list-row', { hasText: 'ui-tiny · sft' })
          .waitFor({ state: 'detached', timeout: 15_000 });
        assert.equal(existsSync(join(workspace, '.rlhf', 'runs', runs[0])), false);
      });
    } finally {
      await page.close();
    }
  },
);

test(
  'in an untrusted workspace Start Run and Rank sampling are refused with an explanation, ' +
    'and the runs can still be viewed',
  async () => {
    const before = readdirSync(join(untrustedWorkspace, '.rlhf', 'runs')).sort();
    const page = await workbench.openPage({ server: untrusted, folder: untrustedWorkspace });
    try {
      await page
        .locator('.part.statusbar .statusbar-item', { hasText: 'Restricted Mode' })
        .waitFor({ timeout: 30_000 });
      await showRunsView(page);
      await page.locator('.part.sidebar .monaco-list-row', { hasText: 'demo-ppo' }).waitFor({ timeout: 30_000 });
      await openFile(page, 'ui-tiny.rlhf.json');
      await runCommand(page, 'RLHF: Start Run');
      const refusal = page.locator('.notification-toast', { hasText: 'trusted workspace' });
      await refusal.waitFor({ timeout: 30_000 });
      assert.match(await refusal.innerText(), /starts training only in a trusted workspace/);
      await page.waitForTimeout(1_000); // let the toast finish fading in for the screenshot
      await screenshot(page, 'authoring-untrusted');
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      assert.deepEqual(readdirSync(join(untrustedWorkspace, '.rlhf', 'runs')).sort(), before, 'no run was created');

      // Sampling completions to rank starts a trainer too: refused the same way, before any prompt.
      await runCommandAndPick(page, 'RLHF: Rank Completions', 'Sample from a checkpoint');
      const rankRefusal = page.locator('.notification-toast', { hasText: 'samples completions' });
      await rankRefusal.waitFor({ timeout: 30_000 });
      assert.match(await rankRefusal.innerText(), /samples completions only in a trusted workspace/);
      assert.equal(
        await page.locator('.quick-input-widget .quick-input-box input').isVisible(),
        false,
        'no prompt for a checkpoint or prompts was shown',
      );
      await page.waitForTimeout(1_000); // the toast fades in
      await screenshot(page, 'authoring-untrusted-rank');
    } finally {
      await page.close();
    }
  },
);
