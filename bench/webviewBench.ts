/**
 * `npm run bench:webview`: how fast the dashboard shows a big PPO step. A synthetic step of 1,024
 * samples × 256 tokens goes through the host's path (Arrow IPC bytes → decodeTraceTable →
 * packPpoTrace, timed in Node), then into the built dashboard bundle in headless Chromium with the
 * real HTML shell and CSP. Timed in the page: from posting the `dashboard/trace` message to the first
 * paint after the heatmap's first screen is in the DOM (the target is < 200 ms), and the frame times
 * while scrolling the virtualised rows. Prints medians and writes bench-results/webview.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { encodeTrace } from '../src/shared/traceFormat';
import {
  fixtureRun,
  packThroughArrow,
  reviveScript,
  sendToDashboard,
  syntheticRows,
} from '../test/webview/dashboardFixture';
import { launchBrowser, openWebview } from '../test/webview/webviewPage';

const samples = Number(process.env.BENCH_SAMPLES ?? 1024);
const tokens = Number(process.env.BENCH_TOKENS ?? 256);
const repetitions = 9;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(p * values.length))];

async function main(): Promise<void> {
  const rows = syntheticRows(1, samples, tokens, 7);
  const bytes = encodeTrace('ppo', rows);
  const hostTimes: number[] = [];
  let trace = packThroughArrow(1, rows);
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    trace = packThroughArrow(1, rows);
    hostTimes.push(performance.now() - started);
  }
  console.log(
    `step: ${samples} samples × ${tokens} tokens = ${trace.numTokens} tokens, ` +
      `${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB of Arrow`,
  );

  const browser = await launchBrowser();
  const view = await openWebview(browser, 'dashboard', { width: 1280, height: 800 });
  try {
    await sendToDashboard(view, { type: 'dashboard/run', run: fixtureRun });
    await sendToDashboard(view, { type: 'dashboard/steps', steps: [1], traceKind: 'ppo' });
    await view.page.click('#tab-rollouts');
    // The packed step is rebuilt in the page once; each repetition posts it (a structured clone, as
    // VS Code delivers it) under a new step number so nothing is reused.
    await view.page.evaluate(reviveScript);
    // Capture the trace the page received (already typed arrays) for the timed repetitions.
    await view.page.evaluate(
      `window.addEventListener('message', (e) => { if (e.data && e.data.type ` +
        `=== 'dashboard/trace') window.__lastTrace = e.data.trace; })`,
    );
    await sendToDashboard(view, { type: 'dashboard/trace', trace });
    const firstScreen: number[] = [];
    const inDom: number[] = [];
    for (let i = 0; i < repetitions; i++) {
      const step = 100 + i;
      const result = (await view.page.evaluate(`new Promise((resolve) => {
        const trace = { ...window.__lastTrace, step: ${step} };
        const started = performance.now();
        window.postMessage({ type: 'dashboard/trace', trace }, '*');
        const poll = () => {
          const record = window.__rlhfFirstScreen;
          if (record && record.step === ${step} && record.paintedAt) {
            resolve({ painted: record.paintedAt - started, rendered: record.renderedAt - started, rows: record.rows });
          }
          else setTimeout(poll, 1);
        };
        poll();
      })`)) as { painted: number; rendered: number; rows: number };
      if (i === 0) console.log(`rows in the DOM after the first screen: ${result.rows} of ${samples}`);
      firstScreen.push(result.painted);
      inDom.push(result.rendered);
    }

    await view.page.screenshot({
      path: path.join(__dirname, '..', 'test-results', 'screenshots', 'bench-webview-first-screen.png'),
    });
    // Scrolling: move the virtual list 240 px per frame for 120 frames and record frame intervals.
    const frames = (await view.page.evaluate(`new Promise((resolve) => {
      const viewport = document.getElementById('samples');
      const intervals = [];
      let last = performance.now();
      let n = 0;
      const tick = () => {
        const now = performance.now();
        intervals.push(now - last);
        last = now;
        viewport.scrollTop += 240;
        if (++n < 120) requestAnimationFrame(tick);
        else {
          const rendered = viewport.querySelectorAll('.sample-row').length;
          resolve({ intervals, scrollTop: viewport.scrollTop, rendered });
        }
      };
      requestAnimationFrame(tick);
    })`)) as { intervals: number[]; scrollTop: number; rendered: number };
    const intervals = frames.intervals.slice(1);
    const result = {
      samples,
      tokens,
      hostDecodeAndPackMs: median(hostTimes),
      firstScreenMs: {
        median: median(firstScreen),
        min: Math.min(...firstScreen),
        max: Math.max(...firstScreen),
        all: firstScreen,
      },
      domReadyMs: median(inDom),
      scroll: {
        frames: intervals.length,
        medianFrameMs: median(intervals),
        p95FrameMs: percentile(intervals, 0.95),
        maxFrameMs: Math.max(...intervals),
        scrolledPx: frames.scrollTop,
        rowsInDom: frames.rendered,
      },
      errors: view.errors,
      cspViolations: await view.cspViolations(),
    };
    console.log('');
    console.log('| measure | median (ms) |');
    console.log('| --- | --- |');
    console.log(`| host: Arrow decode + pack (Node) | ${result.hostDecodeAndPackMs.toFixed(1)} |`);
    console.log(`| webview: message → rows in the DOM | ${result.domReadyMs.toFixed(1)} |`);
    console.log(
      `| webview: message → first screen painted | ${result.firstScreenMs.median.toFixed(1)} (min ` +
        `${result.firstScreenMs.min.toFixed(1)}, max ${result.firstScreenMs.max.toFixed(1)}) |`,
    );
    console.log(
      `| webview: scrolling, frame interval | ${result.scroll.medianFrameMs.toFixed(1)} (p95 ` +
        `${result.scroll.p95FrameMs.toFixed(1)}, ${result.scroll.rowsInDom} rows in the DOM) |`,
    );
    if (result.errors.length > 0 || result.cspViolations.length > 0)
      console.log('page errors:', result.errors, result.cspViolations);
    const out = path.join(__dirname, '..', 'bench-results');
    mkdirSync(out, { recursive: true });
    writeFileSync(
      path.join(out, 'webview.json'),
      `${JSON.stringify({ date: new Date().toISOString(), ...result }, null, 2)}\n`,
    );
    console.log(
      `\nfirst screen under 200 ms: ${result.firstScreenMs.median < 200 ? 'yes' : 'NO'}; wrote ` +
        `bench-results/webview.json`,
    );
  } finally {
    await view.close();
    await browser.close();
  }
}

void main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
