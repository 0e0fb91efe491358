/**
 * The Runs view's Slurm rows as the code-server tests read and click them: a job's row by its id ("slurm 12 · …",
 * "slurm 12_0 · …" for a sweep's element), its state text polled until it matches, and a row's context menu.
 */
import type { Locator, Page } from 'playwright-core';
import { screenshot } from './codeServer';

export const sideBar = (page: Page): Locator => page.locator('.part.sidebar');

/** Shows the RLHF container and waits for its Runs view. */
export async function showRunsView(page: Page): Promise<void> {
  await page.locator('.activitybar .action-item [aria-label*="RLHF"]').first().click();
  await sideBar(page).locator('.pane-header', { hasText: /^Runs/i }).waitFor({ timeout: 15_000 });
}

export const jobRow = (page: Page, jobSpec: string): Locator =>
  sideBar(page)
    .locator('.monaco-list-row', { hasText: `slurm ${jobSpec} ·` })
    .first();

/**
 * Waits until the job's row says `expected` (the view asks the controller every 5 s, so a state shows within a few
 * polls); returns its text. On a timeout: a screenshot `<failureShot>-<job>` and what the row said.
 */
export async function waitForJobRow(
  page: Page,
  jobSpec: string,
  expected: RegExp,
  options: { timeout: number; failureShot: string },
): Promise<string> {
  const deadline = Date.now() + options.timeout;
  for (;;) {
    const text =
      (await jobRow(page, jobSpec)
        .locator('.label-description')
        .textContent({ timeout: 1_000 })
        .catch(() => null)) ?? '';
    if (expected.test(text)) return text;
    if (Date.now() > deadline) {
      await screenshot(page, `${options.failureShot}-${jobSpec}`);
      throw new Error(`job ${jobSpec} shows "${text}", not ${expected}`);
    }
    await page.waitForTimeout(500);
  }
}

/** Right-clicks a row and picks a menu entry (with Enter when a click lands while the menu animates in). */
export async function rowMenu(page: Page, row: Locator, entry: string): Promise<void> {
  const item = page.locator('.context-view .monaco-menu .action-item', { hasText: entry }).first();
  await row.click({ button: 'right' });
  await item.waitFor({ timeout: 10_000 });
  await item.click();
  const menu = page.locator('.context-view .monaco-menu');
  const closed = await menu.waitFor({ state: 'hidden', timeout: 3_000 }).then(
    () => true,
    () => false,
  );
  if (closed) return;
  await item.hover();
  await page.keyboard.press('Enter');
  await menu.waitFor({ state: 'hidden', timeout: 5_000 });
}
